//! The per-request lifecycle end to end: request id and trace context decisions, what goes
//! upstream, classification, the finished record, privacy, and hostile requests.

use gatetrace_core::config::Config;
use gatetrace_core::exchange::{Exchange, HeaderLookup, RequestHead, TracestateAction};
use gatetrace_core::ids::Instance;
use gatetrace_core::record::{HostKind, MAX_LINE_BYTES, Record, SessionEvent, TokenResult};
use gatetrace_core::trace::parse_traceparent;

const START: u64 = 1_700_000_000_000_000_000;
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

type Headers = Vec<(String, Vec<u8>)>;

fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn head<'a>(method: &'a str, target: &'a str) -> RequestHead<'a> {
    RequestHead {
        method: method.as_bytes(),
        path_and_query: target.as_bytes(),
        authority: Some(b"gw.example:8443"),
        client_addr: Some(b"10.1.2.3:5555"),
    }
}

/// Begins `method target` at [`START`] with no extra entropy.
fn begin(
    config: &Config,
    instance: &mut Instance,
    method: &str,
    target: &str,
    request: &mut impl HeaderLookup,
) -> Exchange {
    Exchange::begin(config, instance, &head(method, target), request, START, &[])
}

/// Runs one request through the core and returns the record.
fn run(
    config: &Config,
    method: &str,
    target: &str,
    request: &mut Headers,
    response: &mut Headers,
    status: Option<u16>,
) -> Record {
    let mut instance = Instance::new(&[1, 2, 3]);
    let mut exchange = Exchange::begin(
        config,
        &mut instance,
        &head(method, target),
        request,
        START,
        b"entropy",
    );
    exchange.response_headers(config, status, response);
    exchange.finish(config, status, START + 1_500_000, HostKind::Envoy, 0)
}

#[test]
fn a_plain_request_gets_new_ids_and_a_new_sampled_trace() {
    let config = Config::default();
    let mut instance = Instance::new(&[9]);
    let mut request = headers(&[]);
    let exchange = begin(&config, &mut instance, "GET", "/", &mut request);
    let upstream = exchange.upstream(&config);
    assert_eq!(upstream.request_id_header, "x-request-id");
    assert_eq!(upstream.request_id.len(), 32);
    assert!(upstream.set_request_id);
    assert!(!upstream.echo_request_id);
    assert!(upstream.buffer_response && !upstream.is_stream);
    assert_eq!(upstream.tracestate, TracestateAction::Keep);
    let tp =
        parse_traceparent(upstream.traceparent.as_bytes()).expect("valid outgoing traceparent");
    assert_eq!(tp.version, 0);
    assert!(tp.sampled());
    assert_eq!(tp.flags & 0x02, 0, "never the random flag");
    assert_eq!(tp.parent_id, exchange.span().span_id);
    let record = exchange.finish(&config, Some(200), START + 42, HostKind::Traefik, 3);
    assert_eq!(record.v, 1);
    assert_eq!(record.duration_ns, 42);
    assert_eq!(record.status, Some(200));
    assert_eq!(record.parent_span_id, None);
    assert!(record.sampled);
    assert_eq!(record.dropped, 3);
    assert_eq!(record.host, None, "the host is off by default (recordHost)");
    assert_eq!(record.client_addr, None, "client address is off by default");
    assert_eq!(record.service, "gateway");
    assert_eq!(record.token, None);
    assert!(record.counters.is_empty());
    Record::from_ndjson_line(&record.to_ndjson_line()).expect("the record decodes");
}

#[test]
fn an_incoming_trace_is_continued_with_a_new_span() {
    let config = Config::from_json(br#"{"sampleRatio": 0}"#).expect("config");
    let mut instance = Instance::new(&[9]);
    let mut request = headers(&[
        ("traceparent", TRACEPARENT),
        ("tracestate", "congo=t61rcWkgMzE"),
    ]);
    let exchange = begin(&config, &mut instance, "GET", "/", &mut request);
    let upstream = exchange.upstream(&config);
    assert!(
        upstream
            .traceparent
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    );
    assert!(
        upstream.traceparent.ends_with("-01"),
        "parent-based: sampled despite ratio 0"
    );
    assert!(!upstream.traceparent.contains("00f067aa0ba902b7"));
    assert_eq!(upstream.tracestate, TracestateAction::Keep);
    let record = exchange.finish(&config, Some(200), START, HostKind::Envoy, 0);
    assert_eq!(record.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(record.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
    assert_ne!(record.span_id, "00f067aa0ba902b7");
    assert!(record.sampled);
}

#[test]
fn tracestate_is_joined_or_dropped() {
    let config = Config::default();
    let mut instance = Instance::new(&[9]);
    let mut two = headers(&[
        ("traceparent", TRACEPARENT),
        ("tracestate", "a=1"),
        ("tracestate", "b=2"),
    ]);
    let exchange = begin(&config, &mut instance, "GET", "/", &mut two);
    assert_eq!(
        exchange.upstream(&config).tracestate,
        TracestateAction::Set("a=1,b=2")
    );

    let mut invalid_parent = headers(&[("traceparent", "00-zz"), ("tracestate", "a=1")]);
    let exchange = begin(&config, &mut instance, "GET", "/", &mut invalid_parent);
    assert_eq!(
        exchange.upstream(&config).tracestate,
        TracestateAction::Remove
    );
    let record = exchange.finish(&config, Some(200), START, HostKind::Envoy, 0);
    assert_eq!(
        record.parent_span_id, None,
        "invalid traceparent starts a new trace"
    );

    let mut two_parents = headers(&[("traceparent", TRACEPARENT), ("traceparent", TRACEPARENT)]);
    let exchange = begin(&config, &mut instance, "GET", "/", &mut two_parents);
    assert!(
        !exchange
            .upstream(&config)
            .traceparent
            .contains("4bf92f3577b34da6a3ce929d0e0e4736")
    );
}

#[test]
fn incoming_request_ids_follow_the_policy() {
    let config = Config::default();
    let mut instance = Instance::new(&[9]);
    let mut good = headers(&[("X-Request-Id", "req-123.abc")]);
    let exchange = begin(&config, &mut instance, "GET", "/", &mut good);
    assert_eq!(exchange.request_id(), "req-123.abc");
    assert!(!exchange.upstream(&config).set_request_id);

    let hostile = [
        "x".repeat(10 * 1024),
        "caf\u{e9}".to_string(),
        "a\"b".to_string(),
        "{\"a\":1}".to_string(),
        "a\nb".to_string(),
        "a\u{7}b".to_string(),
    ];
    for value in hostile {
        let mut request = vec![("x-request-id".to_string(), value.clone().into_bytes())];
        let exchange = begin(&config, &mut instance, "GET", "/", &mut request);
        assert_ne!(exchange.request_id(), value);
        assert_eq!(exchange.request_id().len(), 32);
        assert!(exchange.upstream(&config).set_request_id);
    }

    let replace = Config::from_json(br#"{"requestIdPolicy": "replace", "echoRequestId": true}"#)
        .expect("config");
    let mut request = headers(&[("x-request-id", "req-123")]);
    let exchange = begin(&replace, &mut instance, "GET", "/", &mut request);
    assert_ne!(exchange.request_id(), "req-123");
    assert!(exchange.upstream(&replace).echo_request_id);

    let mut duplicated = headers(&[("x-request-id", "a"), ("x-request-id", "b")]);
    let exchange = begin(&config, &mut instance, "GET", "/", &mut duplicated);
    assert_eq!(
        exchange.request_id().len(),
        32,
        "two ids: neither is trusted"
    );
}

#[test]
fn secrets_never_reach_the_record() {
    let config = Config::from_json(br#"{"recordUserAgent": true, "recordClientAddr": true}"#)
        .expect("config");
    let mut request = headers(&[
        ("authorization", "Bearer SECRET-TOKEN-123"),
        ("cookie", "session=SECRET-COOKIE"),
        ("user-agent", "test-agent/1.0"),
    ]);
    let mut response = headers(&[("set-cookie", "SECRET-SET-COOKIE")]);
    let record = run(
        &config,
        "GET",
        "/mcp?access_token=SECRET-QUERY&x=1",
        &mut request,
        &mut response,
        Some(200),
    );
    let line = String::from_utf8(record.to_ndjson_line()).expect("utf-8");
    for secret in ["SECRET", "access_token", "?"] {
        assert!(!line.contains(secret), "{secret} leaked into {line}");
    }
    assert_eq!(record.endpoint, "/mcp");
    assert_eq!(record.token, Some(TokenResult::Success));
    assert_eq!(record.user_agent.as_deref(), Some("test-agent/1.0"));
    assert_eq!(record.client_addr.as_deref(), Some("10.1.2.3:5555"));
}

#[test]
fn token_results_through_the_exchange() {
    let config = Config::default();
    let none = &mut headers(&[]);
    let bearer = || headers(&[("authorization", "Bearer t")]);
    let record = run(&config, "POST", "/mcp", &mut headers(&[]), none, Some(401));
    assert_eq!(record.token, Some(TokenResult::Missing));
    let record = run(&config, "POST", "/mcp", &mut headers(&[]), none, Some(200));
    assert_eq!(
        record.token,
        Some(TokenResult::Missing),
        "/mcp requires a token by default"
    );
    let record = run(&config, "POST", "/mcp", &mut bearer(), none, Some(401));
    assert_eq!(record.token, Some(TokenResult::Failure));
    let mut invalid = headers(&[("www-authenticate", r#"Bearer error="invalid_token""#)]);
    let record = run(&config, "POST", "/mcp", &mut bearer(), &mut invalid, None);
    assert_eq!(record.token, Some(TokenResult::Failure));
    let mut scope = headers(&[("www-authenticate", r#"Bearer error="insufficient_scope""#)]);
    let record = run(
        &config,
        "POST",
        "/mcp",
        &mut bearer(),
        &mut scope,
        Some(403),
    );
    assert_eq!(record.token, Some(TokenResult::Forbidden));
    let record = run(
        &config,
        "GET",
        "/.well-known/oauth-protected-resource",
        &mut headers(&[]),
        none,
        Some(200),
    );
    assert_eq!(record.token, None);
    let off = Config::from_json(br#"{"tokenRules": [{"route": "/mcp/*", "mode": "off"}]}"#)
        .expect("config");
    let record = run(&off, "POST", "/mcp", &mut bearer(), none, Some(401));
    assert_eq!(record.token, None);
}

#[test]
fn counters_sessions_and_streams() {
    let config = Config::default();
    let none = &mut headers(&[]);
    let record = run(
        &config,
        "POST",
        "/register",
        &mut headers(&[]),
        none,
        Some(201),
    );
    assert_eq!(record.counters, vec!["client_registrations".to_string()]);
    let record = run(
        &config,
        "POST",
        "/register",
        &mut headers(&[]),
        none,
        Some(400),
    );
    assert!(record.counters.is_empty());
    let record = run(
        &config,
        "GET",
        "/register",
        &mut headers(&[]),
        none,
        Some(201),
    );
    assert!(record.counters.is_empty());

    let mut started = headers(&[
        ("mcp-session-id", "sess-1"),
        ("content-type", "application/json"),
    ]);
    let record = run(
        &config,
        "POST",
        "/mcp",
        &mut headers(&[]),
        &mut started,
        Some(200),
    );
    let session = record.session.expect("session");
    assert_eq!(session.event, SessionEvent::Start);
    assert_eq!(session.id.len(), 32, "hashed by default");
    assert!(!record.streamed);
    let mut request = headers(&[("mcp-session-id", "sess-1")]);
    let ended = run(&config, "DELETE", "/mcp", &mut request, none, Some(204))
        .session
        .expect("session");
    assert_eq!(
        ended,
        gatetrace_core::record::Session {
            id: session.id,
            event: SessionEvent::End
        }
    );

    let mut instance = Instance::new(&[1]);
    let mut sse = headers(&[("accept", "application/json, text/event-stream")]);
    let mut exchange = begin(&config, &mut instance, "POST", "/mcp", &mut sse);
    let upstream = exchange.upstream(&config);
    assert!(upstream.is_stream && !upstream.buffer_response);
    exchange.response_headers(
        &config,
        None,
        &mut headers(&[("content-type", "text/event-stream")]),
    );
    let record = exchange.finish(&config, None, START + 2_000_000_000, HostKind::Traefik, 0);
    assert!(record.streamed);
    // Unbuffered: the SSE content type implies 200 (issue 12).
    assert_eq!(record.status, Some(200));
    assert_eq!(
        record.status_source,
        Some(gatetrace_core::mcp::StatusSource::Implied)
    );
    assert_eq!(record.duration_ns, 2_000_000_000);

    let forced = Config::from_json(br#"{"bufferRoutes": ["/mcp"]}"#).expect("config");
    let exchange = begin(&forced, &mut instance, "POST", "/mcp", &mut sse);
    assert!(exchange.upstream(&forced).buffer_response);
    let mut upgrade = headers(&[("upgrade", "websocket")]);
    let exchange = begin(&config, &mut instance, "GET", "/ws", &mut upgrade);
    assert!(!exchange.upstream(&config).buffer_response);
    let record = exchange.finish(&config, Some(101), START, HostKind::Envoy, 0);
    assert!(record.streamed);
}

#[test]
fn same_request_same_record_on_both_hosts() {
    let config = Config::from_json(br#"{"recordResponseSize": true}"#).expect("config");
    let mut request = headers(&[
        ("traceparent", TRACEPARENT),
        ("authorization", "Bearer t"),
        ("content-length", "12"),
        ("mcp-session-id", "abc"),
    ]);
    let mut response = headers(&[
        ("content-length", "34"),
        ("content-type", "application/json"),
    ]);
    let a = run(
        &config,
        "POST",
        "/mcp?x=1",
        &mut request.clone(),
        &mut response.clone(),
        Some(200),
    );
    let b = run(
        &config,
        "POST",
        "/mcp?x=1",
        &mut request,
        &mut response,
        Some(200),
    );
    assert_eq!(a, b);
    assert_eq!(a.request_bytes, Some(12));
    assert_eq!(a.response_bytes, Some(34));
}

/// Counts header lookups, to show the core asks only for the headers it needs.
struct CountingHeaders {
    asked: Vec<String>,
}

impl HeaderLookup for CountingHeaders {
    fn each_value(&mut self, name: &str, _visit: &mut dyn FnMut(&[u8])) {
        self.asked.push(name.to_string());
    }
}

#[test]
fn only_the_listed_headers_are_asked_for() {
    let config = Config::default();
    let mut instance = Instance::new(&[1]);
    let mut lookup = CountingHeaders { asked: Vec::new() };
    let mut exchange = begin(&config, &mut instance, "GET", "/", &mut lookup);
    // No status observed: every header that could imply one is asked for.
    exchange.response_headers(&config, None, &mut lookup);
    for name in &lookup.asked {
        let listed = gatetrace_core::exchange::REQUEST_HEADERS.contains(&name.as_str())
            || gatetrace_core::exchange::RESPONSE_HEADERS.contains(&name.as_str())
            || *name == config.request_id_header;
        assert!(listed, "{name} is not in the published header lists");
        assert!(!["cookie", "set-cookie"].contains(&name.as_str()));
    }
    assert!(
        !lookup.asked.iter().any(|n| n == "user-agent"),
        "user-agent only when recorded"
    );
}

#[test]
fn a_plain_request_with_an_observed_status_asks_for_no_response_header() {
    let config = Config::default();
    let mut instance = Instance::new(&[1]);
    for status in [200, 204, 301, 500, 503] {
        let mut request = headers(&[("host", "gw.example"), ("accept", "*/*")]);
        let mut exchange = begin(&config, &mut instance, "GET", "/users/7", &mut request);
        let mut response = CountingHeaders { asked: Vec::new() };
        exchange.response_headers(&config, Some(status), &mut response);
        assert_eq!(response.asked, [] as [String; 0], "status {status}");
        let record = exchange.finish(&config, Some(status), START, HostKind::Traefik, 0);
        assert_eq!((record.host, record.response_bytes), (None, None));
    }
    // A 4xx may carry a Bearer challenge the token result reads; nothing else is asked.
    let mut exchange = begin(&config, &mut instance, "GET", "/", &mut headers(&[]));
    let mut response = CountingHeaders { asked: Vec::new() };
    exchange.response_headers(&config, Some(401), &mut response);
    assert_eq!(response.asked, ["www-authenticate"]);
    // Each opt-in or fact adds exactly the header it needs.
    let sized = Config::from_json(br#"{"recordResponseSize": true}"#).expect("config");
    let mut exchange = begin(&sized, &mut instance, "GET", "/", &mut headers(&[]));
    let mut response = CountingHeaders { asked: Vec::new() };
    exchange.response_headers(&sized, Some(200), &mut response);
    assert_eq!(response.asked, ["content-length"]);
    let mut sse = headers(&[("accept", "text/event-stream")]);
    let mut exchange = begin(&config, &mut instance, "GET", "/events", &mut sse);
    let mut response = CountingHeaders { asked: Vec::new() };
    exchange.response_headers(&config, Some(200), &mut response);
    assert_eq!(response.asked, ["content-type"], "the stream flag");
    let mut exchange = begin(&config, &mut instance, "POST", "/mcp", &mut headers(&[]));
    let mut response = CountingHeaders { asked: Vec::new() };
    exchange.response_headers(&config, Some(200), &mut response);
    assert_eq!(
        response.asked,
        ["content-type", "mcp-session-id"],
        "MCP routes: the outcome's framing and the session start"
    );
}

#[test]
fn host_and_response_size_are_recorded_when_asked_for() {
    let config = Config::from_json(br#"{"recordHost": true, "recordResponseSize": "true"}"#)
        .expect("config");
    let mut response = headers(&[("content-length", "34"), ("content-type", "text/plain")]);
    let record = run(
        &config,
        "GET",
        "/",
        &mut headers(&[]),
        &mut response,
        Some(200),
    );
    assert_eq!(record.host.as_deref(), Some("gw.example:8443"));
    assert_eq!(record.response_bytes, Some(34));
    let record = run(
        &Config::default(),
        "GET",
        "/",
        &mut headers(&[]),
        &mut response,
        Some(200),
    );
    assert_eq!(
        (record.host, record.response_bytes),
        (None, None),
        "off by default"
    );
}

#[test]
fn hostile_requests_never_break_the_exchange() {
    let config = Config::from_json(br#"{"recordUserAgent": true, "recordClientAddr": true}"#)
        .expect("config");
    let mut instance = Instance::new(&[1]);
    let big = vec![b'\xff'; 1 << 20];
    let mut many: Vec<(Vec<u8>, Vec<u8>)> = (0..10_000)
        .map(|i| (format!("x-h-{i}").into_bytes(), vec![b'v'; 10]))
        .collect();
    for name in [
        "traceparent",
        "tracestate",
        "authorization",
        "mcp-session-id",
        "accept",
        "x-request-id",
        "user-agent",
        "content-length",
        "content-type",
    ] {
        many.push((name.as_bytes().to_vec(), big.clone()));
        many.push((name.as_bytes().to_vec(), b"\0\r\n\"\\{}".to_vec()));
    }
    let mut path = b"/a/".to_vec();
    path.extend(std::iter::repeat_n(b'\x80', 1 << 20));
    let weird_head = RequestHead {
        method: b"G\xffT",
        path_and_query: &path,
        authority: Some(&big),
        client_addr: Some(b"\0\n"),
    };
    let mut exchange = Exchange::begin(&config, &mut instance, &weird_head, &mut many, START, &big);
    let upstream = exchange.upstream(&config);
    assert_eq!(upstream.request_id.len(), 32);
    assert!(parse_traceparent(upstream.traceparent.as_bytes()).is_some());
    assert_eq!(upstream.tracestate, TracestateAction::Remove);
    exchange.response_headers(&config, Some(999), &mut many);
    let record = exchange.finish(&config, Some(999), START - 1, HostKind::Kong, u64::MAX);
    assert_eq!(record.method, "_OTHER");
    assert_eq!(record.host, None);
    assert_eq!(record.client_addr, None);
    assert_eq!(record.duration_ns, 0);
    assert!(record.endpoint.len() <= 128 && record.endpoint.is_ascii());
    let line = record.to_ndjson_line();
    assert!(line.len() <= MAX_LINE_BYTES);
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
}

#[test]
fn a_stream_request_answered_with_json_is_not_a_stream() {
    let config = Config::default();
    let mut instance = Instance::new(&[1]);
    let mut sse = headers(&[("accept", "application/json, text/event-stream")]);
    let mut exchange = begin(&config, &mut instance, "POST", "/mcp", &mut sse);
    exchange.response_headers(
        &config,
        None,
        &mut headers(&[("content-type", "application/json")]),
    );
    let record = exchange.finish(&config, None, START, HostKind::Traefik, 0);
    assert!(!record.streamed);
    assert_eq!(record.status, None, "unbuffered: the status stays unknown");

    let mut upgrade = headers(&[("upgrade", "websocket")]);
    let mut exchange = begin(&config, &mut instance, "GET", "/ws", &mut upgrade);
    exchange.response_headers(&config, None, &mut headers(&[]));
    assert!(
        exchange
            .finish(&config, None, START, HostKind::Traefik, 0)
            .streamed
    );
}
