//! Record decoding shared by both sources: one NDJSON line is one record (decoded by the core,
//! the one definition of the format, then held to the label bounds); a bad line is rejected
//! with a counted reason and never spoils the lines around it.

use gatetrace_core::record::{DecodeError, Record, has_control};
use gatetrace_core::spool::joined_record_start;
use serde::Serialize;

use crate::batch::{Reject, RejectCounts};

/// Longest accepted `service` label value.
const MAX_SERVICE: usize = 128;
/// Longest accepted `endpoint` label value.
const MAX_ENDPOINT: usize = 256;
/// Errors listed per answer at most (all are counted).
pub const MAX_LISTED_ERRORS: usize = 20;

/// Decodes (with the core's decoder, the one definition of the format) and bounds the label
/// values of one line (without its newline; a trailing `\r` is allowed).
///
/// # Errors
/// The reason the line is rejected.
pub fn parse_line(line: &[u8]) -> Result<Record, Reject> {
    let record = Record::from_ndjson_line(line).map_err(|e| match e {
        DecodeError::TooLong { .. } => Reject::LineTooLong,
        DecodeError::Version { .. } => Reject::SchemaVersion,
        DecodeError::Json(_) => Reject::InvalidJson,
        DecodeError::InvalidField { field, .. } => match field {
            "trace_id" | "span_id" | "parent_span_id" => Reject::InvalidIds,
            "status" => Reject::InvalidStatus,
            _ => Reject::InvalidLabel,
        },
    })?;
    // Stricter than the format: a status label is a real HTTP status.
    if record.status.is_some_and(|s| !(100..=599).contains(&s)) {
        return Err(Reject::InvalidStatus);
    }
    // The core already holds the endpoint non-empty and free of control characters.
    if !is_label(&record.service, MAX_SERVICE) || record.endpoint.len() > MAX_ENDPOINT {
        return Err(Reject::InvalidLabel);
    }
    Ok(record)
}

fn is_label(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max && !has_control(value)
}

/// One rejected line as listed in the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    /// 1-based line number in the (decompressed) body.
    pub line: usize,
    pub reason: &'static str,
}

/// The records and rejections decoded from a block of lines.
#[derive(Debug, Default)]
pub struct DecodedLines {
    pub records: Vec<Record>,
    /// Rejections by [`Reject::index`].
    pub rejected: RejectCounts,
    /// The first [`MAX_LISTED_ERRORS`] rejections.
    pub errors: Vec<LineError>,
}

impl DecodedLines {
    /// Room for the records of a block of `bytes` bytes.
    #[must_use]
    pub fn for_block(bytes: usize) -> Self {
        Self {
            records: Vec::with_capacity(bytes / 400 + 1),
            ..Self::default()
        }
    }

    /// Lines rejected in total.
    #[must_use]
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Decodes line number `number` (1-based; its newline and a trailing `\r` are ignored);
    /// a blank line is skipped.
    pub fn push_line(&mut self, number: usize, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match parse_line(line) {
            Ok(record) => self.records.push(record),
            Err(reason) => self.reject(number, reason),
        }
    }

    /// As [`DecodedLines::push_line`] for a spool line: a record joined to another writer's
    /// fragment ([`joined_record_start`]) is kept, the fragment rejected as invalid JSON.
    pub fn push_spool_line(&mut self, number: usize, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let reason = match parse_line(line) {
            Ok(record) => return self.records.push(record),
            Err(reason) => reason,
        };
        let Some(start) = joined_record_start(line) else {
            return self.reject(number, reason);
        };
        self.reject(number, Reject::InvalidJson);
        match parse_line(&line[start..]) {
            Ok(record) => self.records.push(record),
            Err(reason) => self.reject(number, reason),
        }
    }

    /// Counts line number `number` as rejected for `reason`.
    pub fn reject(&mut self, number: usize, reason: Reject) {
        self.rejected[reason.index()] += 1;
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(LineError {
                line: number,
                reason: reason.as_str(),
            });
        }
    }
}

/// Decodes every newline-separated line of `block`; empty lines are skipped, a final line
/// without newline is decoded too. Newlines are found with `memchr` (a byte-by-byte split
/// took a tenth of the decode time).
#[must_use]
pub fn parse_block(block: &[u8]) -> DecodedLines {
    let mut decoded = DecodedLines::for_block(block.len());
    let mut start = 0;
    let mut number = 1;
    for newline in memchr::memchr_iter(b'\n', block) {
        decoded.push_line(number, &block[start..newline]);
        start = newline + 1;
        number += 1;
    }
    decoded.push_line(number, &block[start..]);
    decoded
}

#[cfg(test)]
pub(crate) mod tests {
    use gatetrace_core::record::MAX_LINE_BYTES;

    use super::*;

    /// A valid record line for tests, with a few fields to vary.
    pub(crate) fn line(trace: u64, status: Option<u16>, sampled: bool) -> String {
        let status = status.map_or(String::new(), |s| format!(",\"status\":{s}"));
        format!(
            "{{\"v\":1,\"request_id\":\"r{trace}\",\"trace_id\":\"{trace:032x}\",\"span_id\":\"{trace:016x}\",\
             \"sampled\":{sampled},\"start_unix_ns\":1700000000000000000,\"duration_ns\":20000000,\
             \"method\":\"POST\",\"endpoint\":\"/mcp\"{status},\"service\":\"mcp\",\"host_kind\":\"traefik\"}}"
        )
    }

    #[test]
    fn valid_lines_decode_and_methods_are_bounded() {
        let record = parse_line(line(1, Some(200), true).as_bytes()).unwrap();
        assert_eq!(record.status, Some(200));
        let other = line(2, None, false).replace("\"POST\"", "\"_OTHER\"");
        assert_eq!(parse_line(other.as_bytes()).unwrap().method, "_OTHER");
        let odd = line(2, None, false).replace("\"POST\"", "\"BREW\"");
        assert_eq!(
            parse_line(odd.as_bytes()).unwrap_err(),
            Reject::InvalidLabel
        );
    }

    #[test]
    fn each_bad_line_has_its_reason() {
        let good = line(3, Some(200), true);
        let cases = [
            ("{not json".to_owned(), Reject::InvalidJson),
            (good.replace("\"v\":1", "\"v\":2"), Reject::SchemaVersion),
            (
                good.replace(&format!("{:032x}", 3), "XYZ"),
                Reject::InvalidIds,
            ),
            (
                good.replace(&format!("{:032x}", 3), &"0".repeat(32)),
                Reject::InvalidIds,
            ),
            (
                good.replace("\"status\":200", "\"status\":999"),
                Reject::InvalidStatus,
            ),
            (good.replace("\"/mcp\"", "\"\""), Reject::InvalidLabel),
            (good.replace("\"/mcp\"", "\"/a\\nb\""), Reject::InvalidLabel),
            (
                format!("{}{}", good, " ".repeat(MAX_LINE_BYTES)),
                Reject::LineTooLong,
            ),
        ];
        for (text, reason) in cases {
            assert_eq!(parse_line(text.as_bytes()).unwrap_err(), reason, "{text}");
        }
    }

    #[test]
    fn control_characters_are_found_past_the_bytewise_pass() {
        let good = line(4, Some(200), true);
        // U+0085 (C1, lead byte 0xC2) and DEL, raw in JSON, are control characters; U+00A0
        // (also 0xC2) and é are not.
        for bad in ["mcp\u{85}", "mcp\u{7f}"] {
            let text = good.replace("\"mcp\"", &format!("\"{bad}\""));
            assert_eq!(
                parse_line(text.as_bytes()).unwrap_err(),
                Reject::InvalidLabel,
                "{bad:?}"
            );
        }
        for fine in ["mcp\u{a0}", "caf\u{e9}"] {
            let text = good.replace("\"mcp\"", &format!("\"{fine}\""));
            assert_eq!(parse_line(text.as_bytes()).unwrap().service, fine);
        }
    }

    #[test]
    fn a_block_takes_good_lines_and_lists_bad_ones() {
        let body = format!(
            "{}\n\nbad\r\n{}\n",
            line(1, Some(200), true),
            line(2, None, false)
        );
        let parsed = parse_block(body.as_bytes());
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.rejected_total(), 1);
        assert_eq!(
            parsed.errors,
            [LineError {
                line: 3,
                reason: "invalid_json"
            }]
        );
        let many = "x\n".repeat(50);
        let parsed = parse_block(many.as_bytes());
        assert_eq!(parsed.rejected_total(), 50);
        assert_eq!(parsed.errors.len(), MAX_LISTED_ERRORS);
    }
}
