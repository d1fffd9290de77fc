//! Writing a record as one NDJSON line, the hot path of both plugins: exactly the bytes
//! `serde_json` would write (same field order, same escapes), stopping early once a line cannot
//! fit the cap; the shrink ladder, applied as the encoder writes, drops and cuts until it fits.
//!
//! Hand-written on purpose, and measured: with `serde_json::to_writer` in its place the
//! Traefik plugin ran 26 438 instead of 22 614 wasm instructions per request (+17 %) and grew
//! 1.8 KB (harness bench of `plugin/http-wasm/bench/results.md`, spool mounted). The tests
//! below hold it byte-equal to `serde_json` for every field, escape, enum value and rung.

use crate::hex::HEX_DIGITS;

use super::{HostKind, MAX_LINE_BYTES, Record, RecordRef, SessionEvent, TokenResult};
use crate::mcp::facts::McpFacts;
use crate::mcp::{BodySkipped, FactSource, IdKind, MessageKind, OutcomeKind};

impl Record {
    /// The record as one NDJSON line (JSON + `\n`), at most [`MAX_LINE_BYTES`] long.
    #[must_use]
    pub fn to_ndjson_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_ndjson_line(&mut out);
        out
    }

    /// Appends the record as one NDJSON line to `out`; see [`RecordRef::write_ndjson_line`].
    pub fn write_ndjson_line(&self, out: &mut Vec<u8>) {
        self.borrowed().write_ndjson_line(out);
    }
}

impl RecordRef<'_> {
    /// Appends the record as one NDJSON line to `out` (reusing its allocation). When the line
    /// would be longer than [`MAX_LINE_BYTES`], optional fields are dropped and long strings
    /// cut, in that order, until it fits; a longer line is never written.
    pub fn write_ndjson_line(&self, out: &mut Vec<u8>) {
        let start = out.len();
        // The whole record first, outside the loop: the one call nearly every line takes.
        if append_line(self, Shrink::Whole, out) {
            return;
        }
        for shrink in Shrink::RUNGS {
            if append_line(self, shrink, out) {
                return;
            }
        }
        // Unreachable in practice: on the last rung every string is at most 32 characters
        // (≤ 192 encoded bytes each), far below the cap. Keep the promise regardless.
        out.truncate(start);
    }
}

/// The field this encoder writes last, when the count is not zero.
const DROPPED_FIELD: &[u8] = b",\"dropped\":";

/// Adds `drops` to the `dropped` count of a line this encoder wrote, editing only its tail
/// (`dropped` is the last field, and `,"dropped":` cannot occur inside an encoded string,
/// whose quotes are escaped), so a plugin can report drops without decoding the record.
/// `None` when `line` does not end like an encoded record or would outgrow
/// [`MAX_LINE_BYTES`].
#[must_use]
pub fn add_dropped(line: &[u8], drops: u64) -> Option<Vec<u8>> {
    let body = line.strip_suffix(b"}\n")?;
    if !line.starts_with(b"{") {
        return None;
    }
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let (head, count) = body.split_at(body.len() - digits);
    let (kept, earlier) = match head.strip_suffix(DROPPED_FIELD) {
        Some(kept) if digits > 0 => (kept, core::str::from_utf8(count).ok()?.parse().ok()?),
        _ => (body, 0u64),
    };
    let total = earlier.saturating_add(drops);
    let mut out = Vec::with_capacity(kept.len() + 40);
    out.extend_from_slice(kept);
    if total != 0 {
        out.extend_from_slice(DROPPED_FIELD);
        out.extend_from_slice(total.to_string().as_bytes());
    }
    out.extend_from_slice(b"}\n");
    (out.len() <= MAX_LINE_BYTES).then_some(out)
}

/// The shrink ladder: how much of a record a line leaves out, each rung adding to the one
/// before. The encoder applies it while writing, so shrinking copies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Shrink {
    Whole,
    NoUserAgent,
    NoClientAddr,
    NoHost,
    /// Every string cut to 128 characters, at most 16 counters.
    Cut128,
    /// Every string cut to 32 characters, at most 4 counters.
    Cut32,
}

impl Shrink {
    /// The rungs below the whole record, in order.
    const RUNGS: [Self; 5] = [
        Self::NoUserAgent,
        Self::NoClientAddr,
        Self::NoHost,
        Self::Cut128,
        Self::Cut32,
    ];

    /// Most characters of one string and most counters written on this rung.
    fn caps(self) -> (usize, usize) {
        match self {
            Self::Cut32 => (32, 4),
            Self::Cut128 => (128, 16),
            _ => (usize::MAX, usize::MAX),
        }
    }
}

/// Appends `record`, shrunk as `shrink` says, as JSON plus `\n` to `out`; returns false (with
/// `out` cut back to its old length) when the line would exceed [`MAX_LINE_BYTES`].
fn append_line(record: &RecordRef<'_>, shrink: Shrink, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let (max_chars, max_counters) = shrink.caps();
    let mut enc = Encoder {
        out,
        limit: start + MAX_LINE_BYTES - 1,
        over: false,
        max_chars,
    };
    enc.record(record, shrink, max_counters);
    let fits = !enc.over && out.len() < start + MAX_LINE_BYTES;
    if fits {
        out.push(b'\n');
    } else {
        out.truncate(start);
    }
    fits
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    /// Largest `out.len()` allowed (the newline excluded).
    limit: usize,
    over: bool,
    /// Strings are cut to this many characters (see [`Shrink`]).
    max_chars: usize,
}

impl Encoder<'_> {
    fn record(&mut self, r: &RecordRef<'_>, shrink: Shrink, max_counters: usize) {
        self.raw(b"{\"v\":");
        self.number(u64::from(r.v));
        self.key_str(b",\"request_id\":", r.request_id);
        self.key_str(b",\"trace_id\":", r.trace_id);
        self.key_str(b",\"span_id\":", r.span_id);
        if let Some(parent) = r.parent_span_id {
            self.key_str(b",\"parent_span_id\":", parent);
        }
        self.raw(if r.sampled {
            b",\"sampled\":true"
        } else {
            b",\"sampled\":false"
        });
        self.raw(b",\"start_unix_ns\":");
        self.number(r.start_unix_ns);
        self.raw(b",\"duration_ns\":");
        self.number(r.duration_ns);
        self.raw(if r.streamed {
            b",\"streamed\":true"
        } else {
            b",\"streamed\":false"
        });
        self.key_str(b",\"method\":", r.method);
        self.key_str(b",\"endpoint\":", r.endpoint);
        if let Some(status) = r.status {
            self.raw(b",\"status\":");
            self.number(u64::from(status));
        }
        if let Some(source) = r.status_source {
            self.key_const(b",\"status_source\":", source.as_str());
        }
        if let Some(reason) = r.status_unknown {
            self.key_const(b",\"status_unknown\":", reason.as_str());
        }
        self.key_str(b",\"service\":", r.service);
        if let Some(host) = r.host
            && shrink < Shrink::NoHost
        {
            self.key_str(b",\"host\":", host);
        }
        if let Some(addr) = r.client_addr
            && shrink < Shrink::NoClientAddr
        {
            self.key_str(b",\"client_addr\":", addr);
        }
        if let Some(agent) = r.user_agent
            && shrink < Shrink::NoUserAgent
        {
            self.key_str(b",\"user_agent\":", agent);
        }
        if let Some(bytes) = r.request_bytes {
            self.raw(b",\"request_bytes\":");
            self.number(bytes);
        }
        if let Some(bytes) = r.response_bytes {
            self.raw(b",\"response_bytes\":");
            self.number(bytes);
        }
        if let Some(session) = r.session {
            self.key_str(b",\"session\":{\"id\":", session.id);
            self.raw(match session.event {
                SessionEvent::Start => b",\"event\":\"start\"}",
                SessionEvent::Seen => b",\"event\":\"seen\"}",
                SessionEvent::End => b",\"event\":\"end\"}",
            });
        }
        if let Some(token) = r.token {
            self.raw(match token {
                TokenResult::Success => b",\"token\":\"success\"",
                TokenResult::Failure => b",\"token\":\"failure\"",
                TokenResult::Missing => b",\"token\":\"missing\"",
                TokenResult::Forbidden => b",\"token\":\"forbidden\"",
            });
        }
        if let Some(mcp) = r.mcp {
            self.mcp(mcp);
        }
        if !r.counters.is_empty() {
            self.raw(b",\"counters\":[");
            for (i, &name) in r.counters.iter().take(max_counters).enumerate() {
                if i > 0 {
                    self.raw(b",");
                }
                self.string(name);
            }
            self.raw(b"]");
        }
        self.raw(match r.host_kind {
            HostKind::Traefik => b",\"host_kind\":\"traefik\"",
            HostKind::Envoy => b",\"host_kind\":\"envoy\"",
            HostKind::Kong => b",\"host_kind\":\"kong\"",
            HostKind::ProxyWasm => b",\"host_kind\":\"proxy_wasm\"",
            HostKind::Node => b",\"host_kind\":\"node\"",
            HostKind::Edge => b",\"host_kind\":\"edge\"",
        });
        if r.dropped != 0 {
            self.raw(DROPPED_FIELD);
            self.number(r.dropped);
        }
        self.raw(b"}");
    }

    /// The MCP object, fields in the order of [`McpFacts`], each absent when unknown. Its
    /// strings are bounded where they are made (names 128 bytes, ids 64), so no rung cuts them.
    fn mcp(&mut self, m: &McpFacts) {
        self.raw(b",\"mcp\":{");
        let unbounded = core::mem::replace(&mut self.max_chars, usize::MAX);
        let mut first = true;
        for (name, value) in [
            (&b"source"[..], m.source.map(FactSource::as_str)),
            (b"kind", m.kind.map(MessageKind::as_str)),
            (b"method", m.method.as_deref()),
            (b"tool", m.tool.as_deref()),
            (b"prompt", m.prompt.as_deref()),
            (b"resource_hash", m.resource_hash.as_deref()),
            (b"request_id_kind", m.request_id_kind.map(IdKind::as_str)),
            (b"request_id", m.request_id.as_deref()),
            (b"protocol_version", m.protocol_version.as_deref()),
            (b"body_skipped", m.body_skipped.map(BodySkipped::as_str)),
            (b"outcome", m.outcome.map(OutcomeKind::as_str)),
        ] {
            if let Some(value) = value {
                self.object_key(&mut first, name);
                self.string(value);
            }
        }
        if let Some(code) = m.error_code {
            self.object_key(&mut first, b"error_code");
            if code < 0 {
                self.raw(b"-");
            }
            self.number(code.unsigned_abs());
        }
        if let Some(reason) = m.outcome_reason {
            self.object_key(&mut first, b"outcome_reason");
            self.string(reason.as_str());
        }
        self.max_chars = unbounded;
        self.raw(b"}");
    }

    /// `"name":` inside an object, with the comma unless it is the `first` key.
    fn object_key(&mut self, first: &mut bool, name: &[u8]) {
        self.raw(if *first { b"\"" } else { b",\"" });
        *first = false;
        self.raw(name);
        self.raw(b"\":");
    }

    /// A key and a constant value that needs no escaping (an enum's serialized name).
    fn key_const(&mut self, key: &[u8], value: &str) {
        self.raw(key);
        self.raw(b"\"");
        self.raw(value.as_bytes());
        self.raw(b"\"");
    }

    fn room(&self, bytes: usize) -> bool {
        !self.over && self.out.len() + bytes <= self.limit
    }

    fn raw(&mut self, bytes: &[u8]) {
        if self.room(bytes.len()) {
            self.out.extend_from_slice(bytes);
        } else {
            self.over = true;
        }
    }

    fn key_str(&mut self, key: &[u8], value: &str) {
        self.raw(key);
        self.string(value);
    }

    fn number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.raw(&digits[i..]);
    }

    /// A JSON string with serde_json's escapes: `\"`, `\\`, `\b \f \n \r \t`, other control
    /// characters as `\u00xx`; everything else (non-ASCII included) as is.
    fn string(&mut self, text: &str) {
        // Bytes bound characters, so only a longer text can need the (rare) cut.
        let text = if text.len() > self.max_chars {
            text.char_indices()
                .nth(self.max_chars)
                .map_or(text, |(cut, _)| &text[..cut])
        } else {
            text
        };
        // Escaping only ever grows the text: a string longer than the room cannot fit.
        if !self.room(text.len() + 2) {
            self.over = true;
            return;
        }
        self.out.push(b'"');
        let bytes = text.as_bytes();
        let mut plain_from = 0;
        let mut i = 0;
        while i < bytes.len() {
            // Skip eight plain bytes at a time: most strings (ids, routes) need no escape.
            if let Some(chunk) = bytes.get(i..i + 8) {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                if !needs_escape(u64::from_le_bytes(word)) {
                    i += 8;
                    continue;
                }
            }
            let b = bytes[i];
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0x00..=0x1f => b"",
                _ => {
                    i += 1;
                    continue;
                }
            };
            self.out.extend_from_slice(&bytes[plain_from..i]);
            plain_from = i + 1;
            i += 1;
            if escape.is_empty() {
                self.out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX_DIGITS[usize::from(b >> 4)],
                    HEX_DIGITS[usize::from(b & 0xf)],
                ]);
            } else {
                self.out.extend_from_slice(escape);
            }
        }
        self.out.extend_from_slice(&bytes[plain_from..]);
        self.out.push(b'"');
        if self.out.len() > self.limit {
            self.over = true;
        }
    }
}

/// Whether any of the eight bytes in `word` is a control character, `"` or `\\`
/// (the classic "has a byte less than n" and "has a zero byte" bit tricks).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS != 0;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
    below_space
        || has_zero(word ^ (ONES * u64::from(b'"')))
        || has_zero(word ^ (ONES * u64::from(b'\\')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::StatusSource;
    use crate::mcp::UnknownOutcome;
    use crate::mcp::policy::UnknownStatus;

    const HOSTILE: &str = "id \"quoted\" \\ \u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f} caf\u{e9} \u{1f600}";

    /// Every field present, strings needing every escape, extreme numbers.
    fn full() -> Record {
        Record {
            request_id: HOSTILE.to_string(),
            start_unix_ns: u64::MAX,
            duration_ns: 0,
            counters: vec!["a".to_string(), "b".to_string()],
            status_source: Some(StatusSource::Implied),
            status_unknown: Some(UnknownStatus::NotEventStream),
            mcp: Some(McpFacts {
                source: Some(FactSource::Body),
                kind: Some(MessageKind::Request),
                method: Some("tools/call".into()),
                tool: Some(HOSTILE.to_string()),
                prompt: Some("p".to_string()),
                resource_hash: Some("0123456789abcdef0123456789abcdef".to_string()),
                request_id_kind: Some(IdKind::Number),
                request_id: Some("-7".to_string()),
                protocol_version: Some("2025-06-18".into()),
                body_skipped: Some(BodySkipped::TooLarge),
                outcome: Some(OutcomeKind::Error),
                error_code: Some(i64::MIN),
                outcome_reason: Some(UnknownOutcome::NoResponse),
            }),
            ..Record::example_full(1)
        }
    }

    /// Only some MCP facts: the object's first key may be any of them.
    fn some_mcp() -> Record {
        Record {
            mcp: Some(McpFacts {
                tool: Some("search".to_string()),
                error_code: Some(32600),
                ..McpFacts::default()
            }),
            ..Record::example(2)
        }
    }

    /// Every optional field absent.
    fn minimal() -> Record {
        Record {
            request_id: HOSTILE.to_string(),
            status: None,
            ..Record::example(1)
        }
    }

    #[test]
    fn bytes_equal_serde_json() {
        let empty_mcp = Record {
            mcp: Some(McpFacts::default()),
            ..minimal()
        };
        for record in [full(), minimal(), some_mcp(), empty_mcp] {
            let borrowed = record.borrowed();
            let mut ours = Vec::new();
            assert!(append_line(&borrowed, Shrink::Whole, &mut ours));
            let mut theirs = serde_json::to_vec(&record).expect("serde");
            theirs.push(b'\n');
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
            let mut borrowed_by_serde = serde_json::to_vec(&borrowed).expect("serde");
            borrowed_by_serde.push(b'\n');
            assert_eq!(
                borrowed_by_serde, theirs,
                "owned and borrowed are one schema"
            );
            assert_eq!(borrowed.to_record(), record);
        }
    }

    #[test]
    fn status_and_mcp_enum_names_match_serde() {
        let name = |value: serde_json::Value| value.as_str().expect("a string").to_owned();
        for source in [StatusSource::Observed, StatusSource::Implied] {
            assert_eq!(name(serde_json::json!(source)), source.as_str());
        }
        for reason in [
            UnknownStatus::NoContentType,
            UnknownStatus::NotEventStream,
            UnknownStatus::UpgradeNotAsked,
            UnknownStatus::Error,
        ] {
            assert_eq!(name(serde_json::json!(reason)), reason.as_str());
        }
    }

    #[test]
    fn every_enum_value_matches_serde() {
        let events = [SessionEvent::Start, SessionEvent::Seen, SessionEvent::End];
        let tokens = [
            TokenResult::Success,
            TokenResult::Failure,
            TokenResult::Missing,
            TokenResult::Forbidden,
        ];
        let kinds = [
            HostKind::Traefik,
            HostKind::Envoy,
            HostKind::Kong,
            HostKind::ProxyWasm,
            HostKind::Node,
            HostKind::Edge,
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            let mut record = full();
            if let Some(session) = &mut record.session {
                session.event = events[i % 3];
            }
            record.token = Some(tokens[i % 4]);
            record.host_kind = kind;
            let mut ours = Vec::new();
            assert!(append_line(&record.borrowed(), Shrink::Whole, &mut ours));
            let mut theirs = serde_json::to_vec(&record).expect("serde");
            theirs.push(b'\n');
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn escapes_at_every_position_match_serde() {
        for special in [
            '"',
            '\\',
            '\n',
            '\u{0}',
            '\u{1f}',
            '\u{7f}',
            '\u{e9}',
            '\u{1f600}',
        ] {
            for position in 0..20 {
                let mut text: String = "abcdefghijklmnopqrst".chars().take(position).collect();
                text.push(special);
                text.push_str("0123456789");
                let mut record = minimal();
                record.endpoint.clone_from(&text);
                let mut ours = Vec::new();
                assert!(append_line(&record.borrowed(), Shrink::Whole, &mut ours));
                let mut theirs = serde_json::to_vec(&record).expect("serde");
                theirs.push(b'\n');
                assert_eq!(ours, theirs, "{text:?}");
            }
        }
        for word in [0u64, u64::MAX, 0x2020_2020_2020_2020, 0x7e7e_7e7e_7e7e_7e7e] {
            let plain = word
                .to_le_bytes()
                .iter()
                .all(|&b| b >= 0x20 && b != b'"' && b != b'\\');
            assert_eq!(needs_escape(word), !plain, "{word:x}");
        }
    }

    #[test]
    fn each_rung_writes_what_serde_writes_for_the_record_shrunk_by_hand() {
        let long = "\u{e9}".repeat(150);
        let mut record = full();
        for text in [&mut record.endpoint, &mut record.service] {
            text.clone_from(&long);
        }
        record.user_agent = Some(long);
        record.counters = vec!["c".repeat(150); 20];
        let cut = |r: &Record, chars: usize, counters: usize| {
            let mut short = r.map_strings(
                |text| text.chars().take(chars).collect::<String>(),
                Clone::clone,
            );
            short.counters.truncate(counters);
            short
        };
        let no_agent = Record {
            user_agent: None,
            ..record.clone()
        };
        let no_addr = Record {
            client_addr: None,
            ..no_agent.clone()
        };
        let no_host = Record {
            host: None,
            ..no_addr.clone()
        };
        let rungs = [
            (Shrink::Whole, record.clone()),
            (Shrink::NoUserAgent, no_agent),
            (Shrink::NoClientAddr, no_addr),
            (Shrink::NoHost, no_host.clone()),
            (Shrink::Cut128, cut(&no_host, 128, 16)),
            (Shrink::Cut32, cut(&no_host, 32, 4)),
        ];
        let mut fitted = Vec::new();
        for (shrink, by_hand) in rungs {
            let mut theirs = serde_json::to_vec(&by_hand).expect("serde");
            theirs.push(b'\n');
            let mut ours = Vec::new();
            let fits = append_line(&record.borrowed(), shrink, &mut ours);
            assert_eq!(fits, theirs.len() <= MAX_LINE_BYTES, "{shrink:?}");
            if fits {
                assert_eq!(ours, theirs, "{shrink:?}");
            }
            fitted.push(fits);
        }
        assert_eq!(fitted, [false, false, false, false, true, true]);
    }

    #[test]
    fn stops_at_the_cap_and_restores_the_buffer() {
        let mut record = minimal();
        record.endpoint = "x".repeat(MAX_LINE_BYTES);
        let mut out = b"keep".to_vec();
        assert!(!append_line(&record.borrowed(), Shrink::Whole, &mut out));
        assert_eq!(out, b"keep");
        record.endpoint = "\u{1}".repeat(1000);
        assert!(
            !append_line(&record.borrowed(), Shrink::Whole, &mut out),
            "escapes count towards the cap"
        );
        assert_eq!(out, b"keep");
    }
}
