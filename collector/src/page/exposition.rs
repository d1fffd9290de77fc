//! Reads back the collector's own `/metrics` text into samples (name, labels, value), so the
//! page shows exactly what Prometheus scrapes. Hand-written: it only reads the OpenMetrics text
//! `metrics/` writes (samples, quoted labels, optional exemplar), which needs no crate.

use std::borrow::Cow;

/// One sample line: `name{label="value",…} value [# exemplar]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample<'a> {
    pub name: &'a str,
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
}

impl Sample<'_> {
    /// The value of label `name` (empty when absent, as in PromQL).
    pub fn label(&self, name: &str) -> &str {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_ref())
    }
}

/// Every sample of `text`; comment lines (`# HELP`, `# TYPE`, `# EOF`) and lines that are not
/// well-formed samples are skipped.
pub(crate) fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(parse_line)
}

fn parse_line(line: &str) -> Option<Sample<'_>> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            rest = rest.strip_prefix(',').unwrap_or(rest);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after) = rest.split_once("=\"")?;
            let (value, after) = quoted(after)?;
            labels.push((label, value));
            rest = after;
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// A label value up to its closing quote (escapes `\\`, `\"`, `\n` undone), and what follows.
/// Borrowed unless the value holds an escape.
fn quoted(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let mut owned: Option<String> = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let value = owned.map_or(Cow::Borrowed(&text[..i]), Cow::Owned);
                return Some((value, &text[i + 1..]));
            }
            '\\' => {
                let value = owned.get_or_insert_with(|| text[..i].to_owned());
                match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                }
            }
            c => {
                if let Some(value) = &mut owned {
                    value.push(c);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_labels_escapes_and_exemplars_are_read() {
        let text = "# HELP x_total Things.\n# TYPE x counter\n\
            x_total{service=\"a\",endpoint=\"/q\\\"uote\\\\d\"} 3\n\
            up 1\n\
            h_bucket{le=\"+Inf\",path=\"new\\nline\"} 7 # {trace_id=\"ab\"} 0.5 1.0\n\
            broken{service=\"a} 1\n\
            # EOF\n";
        let all: Vec<Sample> = samples(text).collect();
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[0].name, "x_total");
        assert_eq!(all[0].label("service"), "a");
        assert_eq!(all[0].label("endpoint"), "/q\"uote\\d");
        assert_eq!(all[0].label("absent"), "");
        assert_eq!(all[0].value, 3.0);
        assert_eq!((all[1].name, all[1].value), ("up", 1.0));
        assert!(all[1].labels.is_empty());
        assert_eq!(all[2].label("le"), "+Inf");
        assert_eq!(all[2].label("path"), "new\nline");
        assert_eq!(all[2].value, 7.0);
    }
}
