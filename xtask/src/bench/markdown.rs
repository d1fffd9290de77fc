//! `BENCHMARKS.md`: the machine, the date and the command, then per suite its notes, one table
//! per figure group (median, min, max, rounds, goal) and its curves as small tables and plots;
//! a failed suite is shown as failed with the end of its output.

use std::fmt::Write as _;

use super::model::{Curve, Figure, SuiteResult};
use super::stats::{GoalStatus, Summary, check_goal, format_value};

/// Where the plots go, relative to the repository root (and to `BENCHMARKS.md`).
pub const CURVES_DIR: &str = "bench/curves";

/// Up to this many rounds, a figure's row lists every round's sample, in order.
const MAX_ROUNDS_SHOWN: usize = 12;

/// The run as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// UTC, to the minute.
    pub date: String,
    /// The command line, e.g. `cargo xtask bench --full`.
    pub command: String,
    /// What the mode means in rounds and durations.
    pub mode: String,
    pub machine: Machine,
}

/// The machine that measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    /// `/proc/loadavg`'s first three fields when the run started.
    pub load: String,
}

/// One suite's run: its result, or why it has none.
#[derive(Debug)]
pub struct SuiteOutcome {
    pub id: String,
    pub title: String,
    pub seconds: f64,
    pub result: Result<SuiteResult, String>,
}

/// The whole document.
pub fn document(run: &RunInfo, outcomes: &[SuiteOutcome]) -> String {
    let mut md = String::new();
    md.push_str("# Benchmarks\n\n");
    md.push_str(
        "Written by `cargo xtask bench` (do not edit by hand; rerun it). Ratios are measured \
         side by side in one run, in interleaved rounds, so load from elsewhere hits every \
         scenario alike; absolute numbers are marked *machine-dependent* and only hold for the \
         machine below.\n\n",
    );
    let machine = &run.machine;
    let _ = writeln!(md, "- date: {}", run.date);
    let _ = writeln!(md, "- command: `{}` ({})", run.command, run.mode);
    let _ = writeln!(
        md,
        "- machine: {}, {} cores, Linux {}; load average at start {}",
        machine.cpu, machine.cores, machine.kernel, machine.load
    );
    md.push_str("\n| suite | result | took |\n|---|---|---|\n");
    for outcome in outcomes {
        let status = match &outcome.result {
            Ok(_) => "ok",
            Err(_) => "**FAILED**",
        };
        let _ = writeln!(
            md,
            "| {} | {status} | {:.0} s |",
            cell(&outcome.title),
            outcome.seconds
        );
    }
    for outcome in outcomes {
        md.push('\n');
        match &outcome.result {
            Ok(result) => suite_section(&mut md, result),
            Err(error) => {
                let _ = writeln!(md, "## {} — FAILED\n", outcome.title);
                let _ = writeln!(md, "```text\n{}\n```", error.trim_end());
            }
        }
    }
    md
}

fn suite_section(md: &mut String, result: &SuiteResult) {
    let _ = writeln!(md, "## {}\n", result.title);
    for note in &result.notes {
        let _ = writeln!(md, "- {note}");
    }
    let mut groups: Vec<&str> = Vec::new();
    for figure in &result.figures {
        if !groups.contains(&figure.group.as_str()) {
            groups.push(&figure.group);
        }
    }
    for group in groups {
        let _ = writeln!(md, "\n### {group}\n");
        md.push_str(
            "| figure | median | min | max | rounds | goal | per round |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for figure in result.figures.iter().filter(|f| f.group == group) {
            figure_row(md, figure);
        }
    }
    for curve in &result.curves {
        curve_section(md, curve);
    }
}

fn figure_row(md: &mut String, figure: &Figure) {
    let Some(summary) = Summary::of(&figure.samples) else {
        return;
    };
    let unit = if figure.unit == "ratio" {
        String::new()
    } else {
        format!(" {}", figure.unit)
    };
    let machine = if figure.machine_dependent {
        " *(machine-dependent)*"
    } else {
        ""
    };
    let goal = match &figure.goal {
        None => String::new(),
        Some(goal) => match check_goal(goal, summary.median) {
            GoalStatus::Met => format!("{} — met", cell(goal)),
            GoalStatus::Missed => format!("{} — **missed**", cell(goal)),
            GoalStatus::NotChecked => cell(goal),
        },
    };
    let per_round = if (2..=MAX_ROUNDS_SHOWN).contains(&figure.samples.len()) {
        let samples: Vec<String> = figure.samples.iter().map(|v| format_value(*v)).collect();
        samples.join(" · ")
    } else {
        String::new()
    };
    let _ = writeln!(
        md,
        "| {}{machine} | **{}**{unit} | {} | {} | {} | {goal} | {per_round} |",
        cell(&figure.name),
        format_value(summary.median),
        format_value(summary.min),
        format_value(summary.max),
        summary.rounds
    );
}

fn curve_section(md: &mut String, curve: &Curve) {
    let _ = writeln!(md, "\n### {}\n", curve.title);
    let _ = writeln!(
        md,
        "| {} | {} |\n|---|---|",
        cell(&curve.x_label),
        cell(&curve.y_label)
    );
    for [x, y] in &curve.points {
        let _ = writeln!(md, "| {} | {} |", format_value(*x), format_value(*y));
    }
    let _ = writeln!(md, "\n![{}]({CURVES_DIR}/{}.svg)", curve.title, curve.name);
}

/// Text safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunInfo {
        RunInfo {
            date: "2026-11-30 23:59 UTC".into(),
            command: "cargo xtask bench".into(),
            mode: "short: 3 rounds".into(),
            machine: Machine {
                cpu: "Test CPU".into(),
                cores: 2,
                kernel: "6.1.0".into(),
                load: "2.00 1.50 1.00".into(),
            },
        }
    }

    fn figure(group: &str, name: &str, samples: &[f64], goal: Option<&str>) -> Figure {
        Figure {
            group: group.into(),
            name: name.into(),
            unit: "ratio".into(),
            samples: samples.to_vec(),
            goal: goal.map(Into::into),
            machine_dependent: false,
        }
    }

    #[test]
    fn writes_tables_per_group_curves_and_failures() {
        let mut speed = figure("Speed", "bare req/s", &[30000.0, 31000.0], None);
        speed.unit = "req/s".into();
        speed.machine_dependent = true;
        let traefik = SuiteResult {
            suite: "traefik".into(),
            title: "Traefik".into(),
            notes: vec!["loaded machine".into()],
            figures: vec![
                figure(
                    "Ratios",
                    "plugin ÷ bare",
                    &[0.85, 0.91, 0.88],
                    Some(">= 0.90"),
                ),
                speed,
                figure("Ratios", "a | b", &[0.95], Some(">= 0.90")),
            ],
            curves: vec![Curve {
                name: "cost-vs-headers".into(),
                title: "Cost vs headers".into(),
                x_label: "headers".into(),
                y_label: "µs".into(),
                points: vec![[0.0, 1.0], [10.0, 2.5]],
            }],
        };
        let outcomes = [
            SuiteOutcome {
                id: "traefik".into(),
                title: "Traefik".into(),
                seconds: 250.4,
                result: Ok(traefik),
            },
            SuiteOutcome {
                id: "npm".into(),
                title: "npm package".into(),
                seconds: 1.0,
                result: Err("exit status 1\nnode: not found".into()),
            },
        ];
        let md = document(&run(), &outcomes);
        assert_eq!(md, document(&run(), &outcomes));
        for expected in [
            "- command: `cargo xtask bench` (short: 3 rounds)",
            "- machine: Test CPU, 2 cores, Linux 6.1.0; load average at start 2.00 1.50 1.00",
            "| Traefik | ok | 250 s |",
            "| npm package | **FAILED** | 1 s |",
            "## Traefik\n\n- loaded machine\n\n### Ratios\n",
            "| plugin ÷ bare | **0.880** | 0.850 | 0.910 | 3 | >= 0.90 — **missed** | 0.850 · 0.910 · 0.880 |",
            "| a \\| b | **0.950** | 0.950 | 0.950 | 1 | >= 0.90 — met |  |",
            "### Speed\n",
            "| bare req/s *(machine-dependent)* | **30500** req/s | 30000 | 31000 | 2 |  | 30000 · 31000 |",
            "| headers | µs |\n|---|---|\n| 0 | 1 |\n| 10 | 2.50 |",
            "![Cost vs headers](bench/curves/cost-vs-headers.svg)",
            "## npm package — FAILED\n\n```text\nexit status 1\nnode: not found\n```",
        ] {
            assert!(md.contains(expected), "missing {expected:?} in\n{md}");
        }
    }
}
