//! The record's JSON encoder for the hot path: writes exactly the bytes `serde_json` would
//! (same field order, same escapes) without serde's machinery, and stops early once a line
//! cannot fit the cap.

use crate::record::{HostKind, MAX_LINE_BYTES, RecordRef, SessionEvent, TokenResult};

/// Appends `record` as JSON plus `\n` to `out`; returns false (with `out` cut back to its
/// old length) when the line would exceed [`MAX_LINE_BYTES`].
pub(crate) fn append_line(record: &RecordRef<'_>, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let mut enc = Encoder {
        out,
        limit: start + MAX_LINE_BYTES - 1,
        over: false,
    };
    enc.record(record);
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
}

impl Encoder<'_> {
    fn record(&mut self, r: &RecordRef<'_>) {
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
        self.key_str(b",\"service\":", r.service);
        if let Some(host) = r.host {
            self.key_str(b",\"host\":", host);
        }
        if let Some(addr) = r.client_addr {
            self.key_str(b",\"client_addr\":", addr);
        }
        if let Some(agent) = r.user_agent {
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
        if !r.counters.is_empty() {
            self.raw(b",\"counters\":[");
            for (i, &name) in r.counters.iter().enumerate() {
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
        });
        if r.dropped != 0 {
            self.raw(b",\"dropped\":");
            self.number(r.dropped);
        }
        self.raw(b"}");
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
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
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
    use crate::record::{Record, SCHEMA_MAJOR, Session};

    fn full() -> Record {
        Record {
            v: SCHEMA_MAJOR,
            request_id: "id \"quoted\" \\ \u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f} caf\u{e9} \u{1f600}"
                .to_string(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_string(),
            span_id: "00f067aa0ba902b7".to_string(),
            parent_span_id: Some("1111111111111111".to_string()),
            sampled: true,
            start_unix_ns: u64::MAX,
            duration_ns: 0,
            streamed: true,
            method: "POST".to_string(),
            endpoint: "/register/{client_id}".to_string(),
            status: Some(201),
            service: "gateway".to_string(),
            host: Some("h".to_string()),
            client_addr: Some("10.0.0.1".to_string()),
            user_agent: Some("ua".to_string()),
            request_bytes: Some(1),
            response_bytes: Some(1_000_000),
            session: Some(Session {
                id: "s".to_string(),
                event: SessionEvent::End,
            }),
            token: Some(TokenResult::Forbidden),
            counters: vec!["a".to_string(), "b".to_string()],
            host_kind: HostKind::ProxyWasm,
            dropped: 7,
        }
    }

    fn minimal() -> Record {
        Record {
            parent_span_id: None,
            sampled: false,
            streamed: false,
            status: None,
            host: None,
            client_addr: None,
            user_agent: None,
            request_bytes: None,
            response_bytes: None,
            session: None,
            token: None,
            counters: Vec::new(),
            host_kind: HostKind::Kong,
            dropped: 0,
            ..full()
        }
    }

    #[test]
    fn bytes_equal_serde_json() {
        for record in [full(), minimal()] {
            let mut ours = Vec::new();
            assert!(append_line(&record.borrowed(), &mut ours));
            let mut theirs = serde_json::to_vec(&record).expect("serde");
            theirs.push(b'\n');
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
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
        ];
        for i in 0..4 {
            let mut record = full();
            if let Some(session) = &mut record.session {
                session.event = events[i % 3];
            }
            record.token = Some(tokens[i]);
            record.host_kind = kinds[i];
            let mut ours = Vec::new();
            assert!(append_line(&record.borrowed(), &mut ours));
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
                assert!(append_line(&record.borrowed(), &mut ours));
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
    fn stops_at_the_cap_and_restores_the_buffer() {
        let mut record = minimal();
        record.endpoint = "x".repeat(MAX_LINE_BYTES);
        let mut out = b"keep".to_vec();
        assert!(!append_line(&record.borrowed(), &mut out));
        assert_eq!(out, b"keep");
        record.endpoint = "\u{1}".repeat(1000);
        assert!(
            !append_line(&record.borrowed(), &mut out),
            "escapes count towards the cap"
        );
        assert_eq!(out, b"keep");
    }
}
