//! The exchange on MCP routes (issue 12): where the operation is read (trusted headers or the
//! body), when the body is read, which responses are buffered, the implied status, and the
//! outcome in the record. Tables, one rule each.

use gatetrace_core::config::Config;
use gatetrace_core::exchange::{Exchange, HeaderLookup, RequestHead};
use gatetrace_core::ids::Instance;
use gatetrace_core::mcp::policy::UnknownStatus;
use gatetrace_core::mcp::{BodySkipped, FactSource, MessageKind, OutcomeKind, StatusSource};
use gatetrace_core::record::{HostKind, Record, TokenResult};

const START: u64 = 1_700_000_000_000_000_000;
const NEW: &str = "2026-07-28";
const OLD: &str = "2025-06-18";
const SECRET: &str = "hunter2-param-secret";

type Headers = Vec<(String, Vec<u8>)>;
/// `(request headers, HTTP method or POST, body wanted, body skipped)`.
type BodyCase = (
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
    Option<usize>,
    Option<BodySkipped>,
);
/// `(response headers, status, source, unknown reason, token result)`.
type StatusCase = (
    &'static [(&'static str, &'static str)],
    Option<u16>,
    Option<StatusSource>,
    Option<UnknownStatus>,
    Option<TokenResult>,
);

fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn begin(config: &Config, method: &str, path: &str, request: &mut impl HeaderLookup) -> Exchange {
    let head = RequestHead {
        method: method.as_bytes(),
        path_and_query: path.as_bytes(),
        authority: None,
        client_addr: None,
    };
    Exchange::begin(config, &mut Instance::new(&[7]), &head, request, START, &[])
}

fn length(body: &str) -> String {
    body.len().to_string()
}

/// A POST of `body` with its length and `extra` headers.
fn post(config: &Config, body: &str, extra: &[(&str, &str)]) -> Exchange {
    let len = length(body);
    let mut pairs = vec![
        ("accept", "application/json, text/event-stream"),
        ("content-type", "application/json"),
        ("content-length", len.as_str()),
    ];
    pairs.extend_from_slice(extra);
    let mut exchange = begin(config, "POST", "/mcp", &mut headers(&pairs));
    if let Some(n) = exchange.request_body_wanted() {
        assert_eq!(n, body.len());
        exchange.request_body(body.as_bytes());
    }
    exchange
}

fn finish(
    mut exchange: Exchange,
    config: &Config,
    response: &[(&str, &str)],
    status: Option<u16>,
) -> Record {
    exchange.response_headers(config, status, &mut headers(response));
    exchange.finish(config, status, START + 1, HostKind::Traefik, 0)
}

const INITIALIZE: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#;
const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#;
const TOOLS_CALL: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"hunter2-param-secret"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

#[test]
fn the_body_is_read_only_when_headers_are_not_trusted_and_the_length_allows() {
    let config = Config::from_json(br#"{"mcpBodyLimit": 100}"#).expect("config");
    let cases: &[BodyCase] = &[
        // Old protocol, length within the limit: read.
        (
            &[("mcp-protocol-version", OLD), ("content-length", "42")],
            None,
            Some(42),
            None,
        ),
        // No length: not read.
        (
            &[("mcp-protocol-version", OLD)],
            None,
            None,
            Some(BodySkipped::NoLength),
        ),
        // Above the limit.
        (
            &[("content-length", "101")],
            None,
            None,
            Some(BodySkipped::TooLarge),
        ),
        // At the limit.
        (&[("content-length", "100")], None, Some(100), None),
        // Encoded.
        (
            &[("content-length", "10"), ("content-encoding", "gzip")],
            None,
            None,
            Some(BodySkipped::Encoded),
        ),
        (
            &[("content-length", "10"), ("content-encoding", "identity")],
            None,
            Some(10),
            None,
        ),
        // Trusted headers: never read.
        (
            &[
                ("content-length", "10"),
                ("mcp-protocol-version", NEW),
                ("mcp-method", "tools/list"),
            ],
            None,
            None,
            None,
        ),
        // New version without Mcp-Method: not trusted, read.
        (
            &[("content-length", "10"), ("mcp-protocol-version", NEW)],
            None,
            Some(10),
            None,
        ),
        // Not a POST: never read.
        (&[("content-length", "10")], Some("DELETE"), None, None),
        (&[("content-length", "10")], Some("GET"), None, None),
    ];
    for (i, &(pairs, method, wanted, skipped)) in cases.iter().enumerate() {
        let exchange = begin(
            &config,
            method.unwrap_or("POST"),
            "/mcp",
            &mut headers(pairs),
        );
        assert_eq!(exchange.request_body_wanted(), wanted, "case {i}");
        let record = exchange.finish(&config, Some(200), START, HostKind::Envoy, 0);
        let mcp = record.mcp.expect("MCP route");
        assert_eq!(mcp.body_skipped, skipped, "case {i}");
    }
    // Not an MCP route: nothing MCP at all.
    let exchange = begin(
        &config,
        "POST",
        "/api",
        &mut headers(&[("content-length", "10")]),
    );
    assert_eq!(exchange.request_body_wanted(), None);
    assert!(
        exchange
            .finish(&config, Some(200), START, HostKind::Envoy, 0)
            .mcp
            .is_none()
    );
}

#[test]
fn facts_come_from_the_body_or_trusted_headers_and_never_from_params() {
    let config = Config::default();
    let old = post(&config, TOOLS_CALL, &[("mcp-protocol-version", OLD)]);
    let record = finish(old, &config, &[("content-type", "text/event-stream")], None);
    let mcp = record.mcp.as_ref().expect("mcp");
    assert_eq!(mcp.source, Some(FactSource::Body));
    assert_eq!(mcp.kind, Some(MessageKind::Request));
    assert_eq!(mcp.method.as_deref(), Some("tools/call"));
    assert_eq!(mcp.tool.as_deref(), Some("get_weather"));
    assert_eq!(mcp.request_id.as_deref(), Some("2"));
    assert_eq!(mcp.protocol_version.as_deref(), Some(OLD));

    // 2026-07-28: headers trusted (base64 name), body never read, Mcp-Param-* never recorded.
    let new = post(
        &config,
        TOOLS_CALL,
        &[
            ("mcp-protocol-version", NEW),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?Z2V0X3dlYXRoZXI=?="),
            ("mcp-param-city", SECRET),
        ],
    );
    let record = finish(new, &config, &[("content-type", "text/event-stream")], None);
    let mcp = record.mcp.as_ref().expect("mcp");
    assert_eq!(mcp.source, Some(FactSource::Header));
    assert_eq!(mcp.tool.as_deref(), Some("get_weather"));
    assert_eq!(mcp.protocol_version.as_deref(), Some(NEW));
    let mut line = Vec::new();
    record.write_ndjson_line(&mut line);
    let line = String::from_utf8(line).expect("utf-8");
    assert!(!line.contains(SECRET), "{line}");

    // A body that is not JSON-RPC keeps the header facts and says why.
    let bad = post(&config, "{not json", &[("mcp-protocol-version", OLD)]);
    let record = finish(
        bad,
        &config,
        &[("content-type", "application/json")],
        Some(400),
    );
    let mcp = record.mcp.expect("mcp");
    assert_eq!(mcp.body_skipped, Some(BodySkipped::Invalid));
    assert_eq!(mcp.method, None);
}

#[test]
fn only_allow_listed_operations_are_buffered() {
    let config = Config::default();
    let json_only = Config::from_json(br#"{"mcpServerStreams": false}"#).expect("config");
    let cases: &[(&Config, &str, bool)] = &[
        (&config, INITIALIZE, true),
        (&config, TOOLS_LIST, true),
        (&config, INITIALIZED, true),
        (&config, r#"{"jsonrpc":"2.0","id":5,"result":{}}"#, true),
        (&config, TOOLS_CALL, false),
        (
            &config,
            r#"{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"x:/"}}"#,
            false,
        ),
        (
            &config,
            r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p"}}"#,
            false,
        ),
        (
            &config,
            r#"{"jsonrpc":"2.0","id":3,"method":"x/unknown"}"#,
            false,
        ),
        (
            &config,
            r#"[{"jsonrpc":"2.0","id":3,"method":"ping"}]"#,
            false,
        ),
        (&config, "{not json", false),
        (&json_only, TOOLS_CALL, true),
        (
            &json_only,
            r#"{"jsonrpc":"2.0","id":3,"method":"subscriptions/listen"}"#,
            false,
        ),
    ];
    for &(config, body, buffered) in cases {
        let exchange = post(config, body, &[]);
        assert_eq!(
            exchange.upstream(config).buffer_response,
            buffered,
            "{body}"
        );
    }
    let mut sse = headers(&[("accept", "application/json, text/event-stream")]);
    assert!(
        !begin(&config, "GET", "/mcp", &mut sse)
            .upstream(&config)
            .buffer_response
    );
    assert!(
        begin(&config, "DELETE", "/mcp", &mut sse)
            .upstream(&config)
            .buffer_response
    );
    // Trusted headers decide before any body.
    let mut new = headers(&[
        ("mcp-protocol-version", NEW),
        ("mcp-method", "tools/list"),
        ("accept", "text/event-stream"),
    ]);
    assert!(
        begin(&config, "POST", "/mcp", &mut new)
            .upstream(&config)
            .buffer_response
    );
    // A body too large to read: unknown operation, never buffered.
    let mut long = headers(&[("content-length", "70000"), ("accept", "text/event-stream")]);
    assert!(
        !begin(&config, "POST", "/mcp", &mut long)
            .upstream(&config)
            .buffer_response
    );
    // Off MCP routes the old rule: a plain request is buffered, an SSE one is not.
    assert!(
        begin(&config, "POST", "/api", &mut headers(&[]))
            .upstream(&config)
            .buffer_response
    );
    assert!(
        !begin(&config, "POST", "/api", &mut sse)
            .upstream(&config)
            .buffer_response
    );
}

#[test]
fn unobserved_statuses_are_implied_or_explained() {
    let config = Config::default();
    let cases: &[StatusCase] = &[
        (
            &[("content-type", "text/event-stream")],
            Some(200),
            Some(StatusSource::Implied),
            None,
            Some(TokenResult::Success),
        ),
        (
            &[("www-authenticate", "Bearer realm=\"x\"")],
            Some(401),
            Some(StatusSource::Implied),
            None,
            Some(TokenResult::Failure),
        ),
        (
            &[("www-authenticate", "Bearer error=\"insufficient_scope\"")],
            Some(403),
            Some(StatusSource::Implied),
            None,
            Some(TokenResult::Forbidden),
        ),
        (
            &[("www-authenticate", "Bearer error=\"invalid_request\"")],
            Some(400),
            Some(StatusSource::Implied),
            None,
            Some(TokenResult::Success),
        ),
        (
            &[("content-type", "application/json")],
            None,
            None,
            Some(UnknownStatus::NotEventStream),
            None,
        ),
        (&[], None, None, Some(UnknownStatus::NoContentType), None),
        (
            &[("upgrade", "websocket")],
            None,
            None,
            Some(UnknownStatus::UpgradeNotAsked),
            None,
        ),
    ];
    for (i, &(response, status, source, unknown, token)) in cases.iter().enumerate() {
        let exchange = post(&config, TOOLS_CALL, &[("authorization", "Bearer abc")]);
        let record = finish(exchange, &config, response, None);
        assert_eq!(
            (record.status, record.status_source, record.status_unknown),
            (status, source, unknown),
            "case {i}"
        );
        if token.is_some() {
            assert_eq!(record.token, token, "case {i}");
        }
    }
    // Observed wins.
    let record = finish(
        post(&config, TOOLS_LIST, &[]),
        &config,
        &[("content-type", "text/event-stream")],
        Some(500),
    );
    assert_eq!(
        (record.status, record.status_source),
        (Some(500), Some(StatusSource::Observed))
    );
    // The host reported an error after an SSE response went out (the client closed the
    // stream mid-copy): the client had its 200.
    let mut exchange = post(&config, TOOLS_CALL, &[]);
    exchange.set_host_error();
    let record = finish(
        exchange,
        &config,
        &[("content-type", "text/event-stream")],
        None,
    );
    assert_eq!(
        (record.status, record.status_source, record.status_unknown),
        (Some(200), Some(StatusSource::Implied), None)
    );
    // An error with nothing that fixes a status: the reason is the error.
    let mut exchange = post(&config, TOOLS_CALL, &[]);
    exchange.set_host_error();
    let record = finish(exchange, &config, &[("content-type", "text/plain")], None);
    assert_eq!(
        (record.status, record.status_unknown),
        (None, Some(UnknownStatus::Error))
    );
    // Upgrade asked for: 101.
    let mut asked = headers(&[("upgrade", "websocket")]);
    let mut exchange = begin(&config, "GET", "/ws", &mut asked);
    exchange.response_headers(&config, None, &mut headers(&[("upgrade", "websocket")]));
    let record = exchange.finish(&config, None, START, HostKind::Traefik, 0);
    assert_eq!(
        (record.status, record.status_source),
        (Some(101), Some(StatusSource::Implied))
    );
}

#[test]
fn outcomes_come_from_whole_or_chunked_response_bodies() {
    let config = Config::default();
    let sse =
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"isError\":true}}\n\n";
    let cases: &[(&str, &str, &str, OutcomeKind, Option<i64>)] = &[
        (
            TOOLS_LIST,
            "application/json",
            r#"{"jsonrpc":"2.0","id":"a","result":{"tools":[]}}"#,
            OutcomeKind::Ok,
            None,
        ),
        (
            TOOLS_LIST,
            "application/json",
            r#"{"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"x"}}"#,
            OutcomeKind::Error,
            Some(-32601),
        ),
        (
            TOOLS_CALL,
            "text/event-stream",
            sse,
            OutcomeKind::ToolError,
            None,
        ),
        (
            TOOLS_CALL,
            "text/plain",
            "hello",
            OutcomeKind::Unknown,
            None,
        ),
    ];
    for &(request, content_type, body, kind, code) in cases {
        for split in [None, Some(1), Some(body.len() / 2)] {
            let mut exchange = post(&config, request, &[]);
            assert!(exchange.response_body_wanted());
            exchange.response_headers(
                &config,
                Some(200),
                &mut headers(&[("content-type", content_type)]),
            );
            match split {
                None => exchange.response_body(&config, body.as_bytes()),
                Some(at) => {
                    exchange.response_chunk(&config, &body.as_bytes()[..at]);
                    exchange.response_chunk(&config, &body.as_bytes()[at..]);
                    exchange.response_end();
                }
            }
            let record = exchange.finish(&config, Some(200), START, HostKind::Envoy, 0);
            let mcp = record.mcp.expect("mcp");
            assert_eq!(
                (mcp.outcome, mcp.error_code),
                (Some(kind), code),
                "{body} {split:?}"
            );
        }
    }
    // A notification's answer carries no outcome; nothing is scanned.
    let exchange = post(&config, INITIALIZED, &[]);
    assert!(!exchange.response_body_wanted());
    // Without a body scan, no outcome.
    let record = finish(
        post(&config, TOOLS_CALL, &[]),
        &config,
        &[("content-type", "text/event-stream")],
        None,
    );
    assert_eq!(record.mcp.expect("mcp").outcome, None);
}
