//! The benchmark result format every suite writes (one JSON file per suite, issue 15): figures
//! sampled once per interleaved round, grouped into tables, and curves plotted as SVG.

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

/// What one suite measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteResult {
    /// Short id (`traefik`, `collector`): the suite table's key.
    pub suite: String,
    /// Section title in `BENCHMARKS.md`.
    pub title: String,
    /// Lines shown under the title: set-up, what each scenario is, caveats.
    #[serde(default)]
    pub notes: Vec<String>,
    #[serde(default)]
    pub figures: Vec<Figure>,
    #[serde(default)]
    pub curves: Vec<Curve>,
}

/// One measured quantity: a sample per interleaved round (one for deterministic figures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    /// The table it belongs to.
    pub group: String,
    pub name: String,
    /// `ratio`, `req/s`, `ms`, `µs`, `MiB`, `instructions`, ...
    pub unit: String,
    pub samples: Vec<f64>,
    /// Free text such as `>= 0.90`; a leading comparison is checked against the median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// True for absolute speeds and times, which only hold for the machine that measured them.
    #[serde(default)]
    pub machine_dependent: bool,
}

/// How one cost grows with one input: plotted to `bench/curves/<name>.svg`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curve {
    /// File name stem: lowercase letters, digits and `-`, unique across suites.
    pub name: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// `[x, y]` pairs in the order they are drawn.
    pub points: Vec<[f64; 2]>,
}

impl SuiteResult {
    /// Parses and checks a suite's JSON: every figure has finite samples, every curve a
    /// file-safe name and finite points.
    pub fn parse(json: &str) -> Result<Self> {
        let result: Self = serde_json::from_str(json).context("not a benchmark result")?;
        result.check()?;
        Ok(result)
    }

    /// The checks [`SuiteResult::parse`] makes, for results built in code too.
    pub fn check(&self) -> Result<()> {
        if self.suite.is_empty() || !is_file_safe(&self.suite) {
            bail!(
                "suite id {:?} must be lowercase letters, digits and '-'",
                self.suite
            );
        }
        for figure in &self.figures {
            if figure.samples.is_empty() {
                bail!("figure {:?} has no samples", figure.name);
            }
            if let Some(bad) = figure.samples.iter().find(|v| !v.is_finite()) {
                bail!(
                    "figure {:?} has a sample that is not a number: {bad}",
                    figure.name
                );
            }
        }
        for curve in &self.curves {
            if !is_file_safe(&curve.name) {
                bail!(
                    "curve name {:?} must be lowercase letters, digits and '-' (it names a file)",
                    curve.name
                );
            }
            if curve.points.is_empty() {
                bail!("curve {:?} has no points", curve.name);
            }
            if curve.points.iter().flatten().any(|v| !v.is_finite()) {
                bail!("curve {:?} has a point that is not a number", curve.name);
            }
        }
        Ok(())
    }

    /// Pretty JSON, as suites write it.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }
}

fn is_file_safe(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
      "suite": "collector",
      "title": "Collector",
      "notes": ["one core pinned with taskset -c 0"],
      "figures": [
        { "group": "Ingest (one core)", "name": "POST /v1/records vs serde_json parse",
          "unit": "ratio", "samples": [0.81, 0.79, 0.83], "goal": ">= 0.76",
          "machine_dependent": false },
        { "group": "Memory", "name": "RSS at 10 k series", "unit": "MiB", "samples": [48] }
      ],
      "curves": [
        { "name": "collector-rss-vs-series", "title": "RSS vs live series",
          "x_label": "live series", "y_label": "RSS (MiB)",
          "points": [[1000, 21.5], [10000, 48.0], [100000, 310.2]] }
      ]
    }"#;

    #[test]
    fn parses_the_briefs_example_with_defaults() {
        let result = SuiteResult::parse(EXAMPLE).unwrap();
        assert_eq!(result.suite, "collector");
        assert_eq!(result.figures.len(), 2);
        assert_eq!(result.figures[0].samples, [0.81, 0.79, 0.83]);
        assert_eq!(result.figures[0].goal.as_deref(), Some(">= 0.76"));
        assert_eq!(result.figures[1].goal, None);
        assert!(!result.figures[1].machine_dependent);
        assert_eq!(result.curves[0].points[2], [100000.0, 310.2]);
        // What a suite writes reads back the same.
        assert_eq!(
            SuiteResult::parse(&result.to_json().unwrap()).unwrap(),
            result
        );
    }

    #[test]
    fn bad_input_is_refused_naming_the_problem() {
        let err = |json: &str| format!("{:#}", SuiteResult::parse(json).unwrap_err());
        assert!(err("{").contains("not a benchmark result"));
        assert!(err(r#"{"suite": "x", "title": "X", "figurs": []}"#).contains("figurs"));
        assert!(err(r#"{"title": "X"}"#).contains("suite"));
        let no_samples = r#"{"suite": "x", "title": "X", "figures": [
            {"group": "g", "name": "speed", "unit": "ms", "samples": []}]}"#;
        assert!(err(no_samples).contains(r#"figure "speed" has no samples"#));
        let bad_curve = r#"{"suite": "x", "title": "X", "curves": [
            {"name": "../evil", "title": "t", "x_label": "x", "y_label": "y", "points": [[1, 2]]}]}"#;
        assert!(err(bad_curve).contains("names a file"));
        let bad_id = r#"{"suite": "Big Suite", "title": "X"}"#;
        assert!(err(bad_id).contains("suite id"));
    }
}
