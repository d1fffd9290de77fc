//! What the gateway side reports, read back for the assertions: the plugin's spool records (as
//! JSON, so fields the core adds are read without this test depending on their Rust types),
//! every text the gateway side wrote (for the secret scan), and the checks that are all
//! evaluated before the test fails (the collector's `/metrics` samples: `common::metrics`).

use std::path::Path;

use serde_json::Value;

/// Every record in the spool so far (segment order), each a JSON object.
pub fn records(spool: &Path) -> Vec<Value> {
    testkit::spool_lines(spool)
        .iter()
        .map(|line| {
            serde_json::from_slice(line).unwrap_or_else(|e| {
                panic!(
                    "malformed spool line ({e}): {}",
                    String::from_utf8_lossy(line)
                )
            })
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
