//! The collector's `/metrics` read back: the samples of a Prometheus/OpenMetrics text
//! exposition and their sums by label.

use std::collections::BTreeMap;

/// One sample of the exposition format: name, labels, value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of a Prometheus/OpenMetrics text exposition. Hand-written: the workspace's
/// `prometheus-client` only writes the format, and a sample line is all the tests read
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
