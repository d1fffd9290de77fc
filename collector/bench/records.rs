//! The records the suite feeds the collector: a realistic ingest mix, one record per live
//! series, and spans with every HTTP attribute; and NDJSON bodies of them.

use gatetrace_core::record::{HostKind, Record, Session, SessionEvent, TokenResult};

/// Records per `POST /v1/records` body (≈ 500 KiB, under the default 1 MiB body limit).
pub const BATCH: u64 = 1000;

const ENDPOINTS: [&str; 8] = [
    "/mcp",
    "/register",
    "/register/{client_id}",
    "/token",
    "/authorize",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-protected-resource",
    "/revoke",
];

/// A realistic ingest record (≈ 520 bytes of NDJSON): 1 in 7 sampled, sessions, token results,
/// user agents; a few hundred series over 3 services, 3 methods, 8 routes, 6 statuses.
pub fn ingest(n: u64) -> Record {
    let status = [200, 200, 200, 201, 202, 401, 404, 500][(n % 8) as usize];
    Record {
        v: 1,
        request_id: format!("{:032x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        trace_id: format!("{:032x}", u128::from(n) << 64 | u128::from(n + 1)),
        span_id: format!("{:016x}", n + 1),
        parent_span_id: n.is_multiple_of(2).then(|| format!("{:016x}", n + 7)),
        sampled: n.is_multiple_of(7),
        start_unix_ns: 1_760_000_000_000_000_000 + n * 1_000_000,
        duration_ns: (n * 7919) % 2_000_000_000,
        streamed: n.is_multiple_of(50),
        method: ["POST", "GET", "DELETE"][(n % 3) as usize].into(),
        endpoint: ENDPOINTS[(n % 8) as usize].into(),
        status: (!n.is_multiple_of(50)).then_some(status),
        status_source: None,
        status_unknown: None,
        service: ["mcp-a", "mcp-b", "auth"][(n % 3) as usize].into(),
        host: Some("mcp.example.com".into()),
        client_addr: Some(format!("10.0.{}.{}", n % 250, n % 200)),
        user_agent: Some("claude-code/1.0.81 (node 22; linux x64)".into()),
        request_bytes: Some(300 + n % 900),
        response_bytes: Some(1200 + n % 4000),
        session: n.is_multiple_of(5).then(|| Session {
            id: format!("{:016x}", n % 5000),
            event: if n.is_multiple_of(97) {
                SessionEvent::End
            } else {
                SessionEvent::Seen
            },
        }),
        token: Some([TokenResult::Success, TokenResult::Failure][(n % 2) as usize]),
        mcp: None,
        counters: Vec::new(),
        host_kind: HostKind::Traefik,
        dropped: 0,
    }
}

/// The route of live series `i`: series `i` is `requests_total` and the latency histogram of
/// (service `svc-{i % 10}`, `GET`, this route), status 200.
pub fn series_route(i: u64) -> String {
    format!("/api/v1/items-{i}")
}

/// A record of live series `series` (see [`series_route`]), no session; `sampled` decides
/// whether its histogram bucket keeps an exemplar.
pub fn of_series(series: u64, n: u64, sampled: bool) -> Record {
    Record {
        service: format!("svc-{}", series % 10),
        endpoint: series_route(series),
        method: "GET".into(),
        status: Some(200),
        streamed: false,
        sampled,
        duration_ns: 1_000_000 + (n * 7919) % 400_000_000,
        session: None,
        ..ingest(n)
    }
}

/// A record whose span has every HTTP attribute (11, plus `error.type` on the 2 % that are
/// 5xx; with the resource's `service.name`, today's 13 keys); every second one has a parent.
/// Never inlined, so callgrind can subtract the cost of building records from a run's.
#[inline(never)]
pub fn span(n: u64) -> Record {
    Record {
        v: 1,
        request_id: format!("01JDBENCH{n:016}"),
        trace_id: format!(
            "{:032x}",
            0x4bf9_2f35_77b3_4da6_0000_0000_0000_0000_u128 + u128::from(n)
        ),
        span_id: format!("{:016x}", 0x00f0_67aa_0000_0000_u64 + n),
        parent_span_id: n.is_multiple_of(2).then(|| "b7ad6b7169203331".to_owned()),
        sampled: true,
        start_unix_ns: 1_764_000_000_000_000_000 + n * 1000,
        duration_ns: 2_500_000,
        streamed: false,
        method: "POST".into(),
        endpoint: "/mcp".into(),
        status: Some(if n.is_multiple_of(50) { 503 } else { 200 }),
        status_source: None,
        status_unknown: None,
        service: "mcp-api".into(),
        host: Some("mcp.example.com:8443".into()),
        client_addr: Some("10.1.2.3".into()),
        user_agent: Some("bench-client/1.0".into()),
        request_bytes: Some(512),
        response_bytes: Some(2048),
        session: None,
        token: None,
        mcp: None,
        counters: Vec::new(),
        host_kind: HostKind::Traefik,
        dropped: 0,
    }
}

/// NDJSON lines of `records`.
pub fn ndjson(records: impl Iterator<Item = Record>) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        record.write_ndjson_line(&mut out);
    }
    out
}
