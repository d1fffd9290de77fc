//! Headers as the JS layer passes them: one string of `name\nvalue\n…` lines (Node's
//! `req.rawHeaders` joined with `\n`; a `Headers` object's entries flattened). HTTP forbids line
//! breaks in names and values, so the pairs split back unambiguously; one string crosses the
//! wasm boundary far cheaper than an array of them.

use gatetrace_core::exchange::{HeaderEdits, HeaderLookup};

/// Header pairs from the `name\nvalue\n…` string, names matched case-insensitively.
#[derive(Debug, Clone, Copy)]
pub struct LinePairs<'a>(pub &'a str);

impl HeaderLookup for LinePairs<'_> {
    fn each_value(&mut self, name: &str, visit: &mut dyn FnMut(&[u8])) {
        let mut lines = self.0.split('\n');
        while let (Some(key), Some(value)) = (lines.next(), lines.next()) {
            if key.eq_ignore_ascii_case(name) {
                visit(value.as_bytes());
            }
        }
    }
}

/// What to do to a header, as the JS layer reads it back: a flat list of
/// `op, name, value` triples, `op` being [`SET`] or [`REMOVE`] (with an empty value).
#[derive(Debug, Default)]
pub struct EditList {
    pub request: Vec<String>,
    pub response: Vec<String>,
}

/// Replace the header with the one value.
pub const SET: &str = "set";
/// Remove the header.
pub const REMOVE: &str = "remove";

impl HeaderEdits for EditList {
    fn set_request_header(&mut self, name: &str, value: &str) {
        self.request
            .extend([SET.to_owned(), name.to_owned(), value.to_owned()]);
    }

    fn remove_request_header(&mut self, name: &str) {
        self.request
            .extend([REMOVE.to_owned(), name.to_owned(), String::new()]);
    }

    fn set_response_header(&mut self, name: &str, value: &str) {
        self.response
            .extend([SET.to_owned(), name.to_owned(), value.to_owned()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(headers: &str, name: &str) -> Vec<String> {
        let mut found = Vec::new();
        LinePairs(headers).each_value(name, &mut |v| {
            found.push(String::from_utf8_lossy(v).into_owned());
        });
        found
    }

    #[test]
    fn pairs_split_back_and_match_names_case_insensitively() {
        let raw = "Host\nexample.com\ntraceparent\na\nTraceParent\nb\nx-lone";
        assert_eq!(values(raw, "host"), ["example.com"]);
        assert_eq!(values(raw, "traceparent"), ["a", "b"]);
        assert!(
            values(raw, "x-empty").is_empty(),
            "a name without value is ignored"
        );
        assert!(values("", "host").is_empty());
    }

    #[test]
    fn edits_come_back_as_triples() {
        let mut edits = EditList::default();
        edits.set_request_header("traceparent", "00-x");
        edits.remove_request_header("tracestate");
        edits.set_response_header("x-request-id", "abc");
        assert_eq!(
            edits.request,
            ["set", "traceparent", "00-x", "remove", "tracestate", ""]
        );
        assert_eq!(edits.response, ["set", "x-request-id", "abc"]);
    }
}
