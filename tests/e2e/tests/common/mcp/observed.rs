//! What the gateway side reports, read back for the assertions: the plugin's spool records (as
//! JSON, so fields the core adds are read without this test depending on their Rust types),
//! the collector's `/metrics` samples, every text the gateway side wrote (for the secret
//! scan), and the checks that are all evaluated before the test fails.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Every record in the spool so far (segment order), each a JSON object.
pub fn records(spool: &Path) -> Vec<Value> {
    let mut segments: Vec<_> = std::fs::read_dir(spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| gatetrace_core::spool::parse_segment_name(n).is_some())
        })
        .collect();
    segments.sort();
    segments
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|line| {
                    serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("malformed spool line ({e}): {line}"))
                })
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// Every spool line as text (for the secret scan).
pub fn spool_text(spool: &Path) -> String {
    records(spool)
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One sample of the exposition format: name, labels, value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of a Prometheus/OpenMetrics text exposition. Hand-written: the workspace's
/// `prometheus-client` only writes the format, and a sample line is all this test reads
/// (exemplars after ` # ` are dropped; escaped quotes in label values are kept escaped).
pub fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let line = line.split(" # ").next().unwrap();
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
            None => (series, BTreeMap::new()),
        };
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value: value.parse().unwrap_or(f64::NAN),
        });
    }
    out
}

fn parse_labels(mut rest: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut end = 0;
        let bytes = after.as_bytes();
        while end < bytes.len() && !(bytes[end] == b'"' && (end == 0 || bytes[end - 1] != b'\\')) {
            end += 1;
        }
        labels.insert(
            name.trim_start_matches(',').trim().to_owned(),
            after[..end].to_owned(),
        );
        rest = after.get(end + 1..).unwrap_or("");
    }
    labels
}

/// Sum of `name`'s samples grouped by `label` (only samples whose labels contain `filter`).
pub fn sum_by(
    samples: &[Sample],
    name: &str,
    label: &str,
    filter: &[(&str, &str)],
) -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == name) {
        if filter
            .iter()
            .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        {
            let key = s.labels.get(label).cloned().unwrap_or_default();
            *sums.entry(key).or_insert(0) += s.value as u64;
        }
    }
    sums
}

/// Where a `secret` occurs in `text`: the place and the whole line, or `None`.
pub fn secret_in(place: &str, text: &str, secrets: &[&str]) -> Option<String> {
    secrets.iter().find_map(|secret| {
        let at = text.find(secret)?;
        let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let to = text[at..].find('\n').map_or(text.len(), |i| at + i);
        Some(format!(
            "{secret:?} leaked into {place}: {}",
            &text[from..to]
        ))
    })
}

/// The gateway-side checks, all evaluated before the test fails, so that one run names every
/// one that does not hold.
#[derive(Debug, Default)]
pub struct Verdicts(Vec<String>);

impl Verdicts {
    pub fn check(&mut self, holds: bool, what: impl FnOnce() -> String) {
        if !holds {
            self.0.push(what());
        }
    }

    #[expect(
        clippy::needless_pass_by_value,
        reason = "callers pass maps computed inline"
    )]
    pub fn equal<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            self.0.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }

    pub fn none(&mut self, failure: Option<String>) {
        self.0.extend(failure);
    }

    /// Panics listing every failed check.
    pub fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} check(s) failed:\n- {}",
            self.0.len(),
            self.0.join("\n- ")
        );
    }
}
