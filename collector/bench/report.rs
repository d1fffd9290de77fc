//! The suite's JSON (the format `cargo xtask bench` reads, issue 15): figures with one sample
//! per interleaved round, curves, notes; and the goal checks that become notes.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Suite {
    pub suite: &'static str,
    pub title: &'static str,
    pub notes: Vec<String>,
    pub figures: Vec<Figure>,
    pub curves: Vec<Curve>,
}

#[derive(Debug, Serialize)]
pub struct Figure {
    pub group: &'static str,
    pub name: String,
    pub unit: &'static str,
    pub samples: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    pub machine_dependent: bool,
}

#[derive(Debug, Serialize)]
pub struct Curve {
    pub name: &'static str,
    pub title: &'static str,
    pub x_label: &'static str,
    pub y_label: &'static str,
    pub points: Vec<[f64; 2]>,
}

/// A goal a figure's median is checked against.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    fn text(self) -> String {
        match self {
            Self::AtLeast(v) => format!(">= {v}"),
            Self::AtMost(v) => format!("<= {v}"),
        }
    }

    fn met(self, value: f64) -> bool {
        match self {
            Self::AtLeast(v) => value >= v,
            Self::AtMost(v) => value <= v,
        }
    }
}

/// The median of `values` (the upper one of an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

impl Suite {
    /// Adds a figure; one with a goal also adds a note saying whether its median meets it.
    pub fn figure(
        &mut self,
        group: &'static str,
        name: impl Into<String>,
        unit: &'static str,
        samples: Vec<f64>,
        goal: Option<Goal>,
        machine_dependent: bool,
    ) {
        let name = name.into();
        if let Some(goal) = goal {
            let value = median(&samples);
            let verdict = if goal.met(value) { "met" } else { "MISSED" };
            self.notes.push(format!(
                "goal {verdict}: {name}: median {value:.3} {unit} (goal {})",
                goal.text()
            ));
        }
        self.figures.push(Figure {
            group,
            name,
            unit,
            samples,
            goal: goal.map(Goal::text),
            machine_dependent,
        });
    }
}
