//! Record fixtures for the tests of every crate (feature `test-util`): one valid record per
//! `n`, plain or with every optional field, and NDJSON lines of them. Tests change the fields
//! they are about with struct update syntax: `Record { status: None, ..Record::example(n) }`.

use crate::record::{HostKind, Record, SCHEMA_MAJOR, Session, SessionEvent, TokenResult};

impl Record {
    /// A valid record of a plain request, distinct for every `n` ≥ 1: request id `req-{n}`,
    /// trace and span ids `n` in hex; `GET /mcp` of service `mcp` answered 200 on Traefik at
    /// 2023-11-14T22:13:20Z, 1 ms, not sampled, no optional field.
    ///
    /// # Panics
    ///
    /// When `n` is 0: all-zero trace and span ids are invalid.
    #[must_use]
    pub fn example(n: u64) -> Self {
        assert!(
            n > 0,
            "Record::example(n) needs n ≥ 1: its trace and span ids are n in hex, and all-zero ids are invalid"
        );
        Self {
            v: SCHEMA_MAJOR,
            request_id: format!("req-{n}"),
            trace_id: format!("{n:032x}"),
            span_id: format!("{n:016x}"),
            parent_span_id: None,
            sampled: false,
            start_unix_ns: 1_700_000_000_000_000_000,
            duration_ns: 1_000_000,
            streamed: false,
            method: "GET".to_string(),
            endpoint: "/mcp".to_string(),
            status: Some(200),
            status_source: None,
            status_unknown: None,
            service: "mcp".to_string(),
            host: None,
            client_addr: None,
            user_agent: None,
            request_bytes: None,
            response_bytes: None,
            session: None,
            token: None,
            mcp: None,
            counters: Vec::new(),
            host_kind: HostKind::Traefik,
            dropped: 0,
        }
    }

    /// [`Record::example`] with every optional field set: a sampled, continued trace, the
    /// `POST /register` answered 201 that starts a session, token `success`, counter
    /// `client_registrations`, host, client address, user agent, sizes and 2 dropped.
    ///
    /// # Panics
    ///
    /// When `n` is 0, as [`Record::example`].
    #[must_use]
    pub fn example_full(n: u64) -> Self {
        Self {
            parent_span_id: Some("b7ad6b7169203331".to_string()),
            sampled: true,
            method: "POST".to_string(),
            endpoint: "/register".to_string(),
            status: Some(201),
            host: Some("mcp.example.com".to_string()),
            client_addr: Some("10.0.0.1".to_string()),
            user_agent: Some("agent/1.0".to_string()),
            request_bytes: Some(10),
            response_bytes: Some(20),
            session: Some(Session {
                id: "0123456789abcdef0123456789abcdef".to_string(),
                event: SessionEvent::Start,
            }),
            token: Some(TokenResult::Success),
            counters: vec!["client_registrations".to_string()],
            dropped: 2,
            ..Self::example(n)
        }
    }

    /// A sampled record whose span carries every HTTP attribute an exporter maps: `POST /mcp`
    /// of service `mcp-api` answered 200 on Traefik, host, client address, user agent and
    /// sizes, no parent; trace id `4bf92f3577b34da6a3ce929d` + `n`, span id `00f067aa0ba9` + `n`
    /// (so distinct and valid for every small `n`, 0 included), start 1 ms apart, 2.5 ms + `n` ns
    /// long. The OTLP exporter's tests (unit and real-receiver) share it.
    #[must_use]
    pub fn example_span(n: u64) -> Self {
        Self {
            request_id: format!("req-{n}"),
            trace_id: format!(
                "{:032x}",
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0000_0000_u128 + u128::from(n)
            ),
            span_id: format!("{:016x}", 0x00f0_67aa_0ba9_0000_u64 + n),
            sampled: true,
            start_unix_ns: 1_764_000_000_123_456_789 + n * 1_000_000,
            duration_ns: 2_500_000 + n,
            method: "POST".to_string(),
            service: "mcp-api".to_string(),
            host: Some("mcp.example.com:8443".to_string()),
            client_addr: Some("10.1.2.3".to_string()),
            user_agent: Some("test-agent/1".to_string()),
            request_bytes: Some(120),
            response_bytes: Some(3400),
            ..Self::example(1)
        }
    }
}

/// `record` as one NDJSON line, newline included: what a plugin sends or spools.
#[must_use]
pub fn ndjson_line(record: &Record) -> String {
    // The encoder writes JSON, which is UTF-8.
    String::from_utf8(record.to_ndjson_line()).unwrap_or_default()
}

/// The NDJSON line of [`Record::example`]`(n)`.
///
/// # Panics
///
/// When `n` is 0, as [`Record::example`].
#[must_use]
pub fn example_line(n: u64) -> String {
    ndjson_line(&Record::example(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_valid_distinct_records() {
        for n in [1, 2, u64::MAX] {
            for record in [Record::example(n), Record::example_full(n)] {
                let line = ndjson_line(&record);
                assert_eq!(Record::from_ndjson_line(line.as_bytes()), Ok(record));
            }
        }
        assert_ne!(example_line(1), example_line(2));
        for n in [0, 1, 2] {
            let span = Record::example_span(n);
            let line = ndjson_line(&span);
            assert_eq!(Record::from_ndjson_line(line.as_bytes()), Ok(span));
        }
        assert_ne!(
            Record::example_span(0).span_id,
            Record::example_span(1).span_id
        );
        let full = Record::example_full(3);
        let every_optional = full.parent_span_id.is_some()
            && full.status.is_some()
            && full.host.is_some()
            && full.client_addr.is_some()
            && full.user_agent.is_some()
            && full.request_bytes.is_some()
            && full.response_bytes.is_some()
            && full.session.is_some()
            && full.token.is_some()
            && !full.counters.is_empty()
            && full.dropped != 0;
        assert!(every_optional);
    }

    #[test]
    #[should_panic(expected = "needs n ≥ 1")]
    fn example_zero_is_refused_by_name() {
        let _ = Record::example(0);
    }
}
