//! End-to-end: real Traefik 3.7 on loopback runs the built plugin as a local plugin in front of
//! real loopback backends; the tests read what the backend received, what the client got and
//! what the plugin appended to the spool.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::{Backend, Client, get};
use common::traefik::Traefik;
use common::{parse_records, serial};
use gatetrace_core::record::{Record, SessionEvent};
use gatetrace_core::trace::parse_traceparent;
use testkit::http::{Answer, Http};

/// Two routers, each with its own gatetrace middleware (different `service`, header and
/// echo settings). Scalars are strings, as Traefik's file provider passes them.
const DYNAMIC: &str = r#"
http:
  routers:
    main:
      rule: "PathPrefix(`/`)"
      entryPoints: [web]
      service: backend
      middlewares: [gatetrace-api]
    other:
      rule: "PathPrefix(`/other`)"
      entryPoints: [web]
      service: backend
      middlewares: [gatetrace-other]
  middlewares:
    gatetrace-api:
      plugin:
        gatetrace:
          service: api
          echoRequestId: "true"
          spool:
            dir: "{spool}"
            windowSecs: "10"
    gatetrace-other:
      plugin:
        gatetrace:
          service: other
          requestIdHeader: X-Correlation-Id
          requestIdPolicy: replace
          spool:
            dir: "{spool}"
  services:
    backend:
      loadBalancer:
        servers:
          - url: "{backend}"
"#;

fn start() -> (Backend, Traefik) {
    let backend = Backend::start();
    let traefik = Traefik::start(DYNAMIC, backend.port);
    traefik.wait_route("/ready");
    traefik.wait_route("/other/ready");
    (backend, traefik)
}

/// A GET through Traefik with the tests' one HTTP client (the raw one in `common::http` is for
/// hostile header bytes and for watching a stream's chunks arrive).
fn fetch(http: &Http, port: u16, target: &str, headers: &[(&str, &str)]) -> Answer {
    http.call("GET", &format!("http://127.0.0.1:{port}{target}"), headers)
        .unwrap_or_else(|| panic!("no answer from Traefik for {target}"))
}

fn is_hex_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Waits for the record with `request_id` and returns it.
fn record_for(traefik: &Traefik, request_id: &str) -> Record {
    let mut found = None;
    testkit::wait_until(
        &format!("record {request_id}"),
        Duration::from_secs(20),
        || {
            found = parse_records(&traefik.spool_lines())
                .into_iter()
                .find(|r| r.request_id == request_id);
            found.is_some()
        },
    );
    found.unwrap()
}

#[test]
#[ignore = "e2e: needs traefik + cargo xtask wasm"]
fn ids_and_trace_context_reach_the_backend_and_incoming_context_continues() {
    let _serial = serial();
    let (backend, traefik) = start();
    let http = Http::new();

    // No incoming id or trace: both are made, set upstream, the id echoed on the response.
    let response = fetch(&http, traefik.port, "/fresh", &[]);
    assert_eq!(response.status, 200);
    let seen = backend
        .seen_with("/fresh")
        .pop()
        .expect("backend saw /fresh");
    let id = seen.header("x-request-id").expect("x-request-id upstream");
    assert!(is_hex_id(&id), "generated id {id:?}");
    assert_eq!(
        response.header("x-request-id").as_deref(),
        Some(id.as_str())
    );
    let tp = seen.header("traceparent").expect("traceparent upstream");
    let parent = parse_traceparent(tp.as_bytes()).expect("valid traceparent");
    let record = record_for(&traefik, &id);
    assert_eq!(record.trace_id, parent.trace_id.to_hex());
    assert_eq!(record.span_id, parent.parent_id.to_hex());
    assert_eq!(record.parent_span_id, None);
    assert_eq!(record.status, Some(200));
    assert_eq!(record.service, "api");
    assert_eq!(record.method, "GET");
    assert_eq!(record.endpoint, "/fresh");

    // A trusted incoming id and an incoming traceparent are continued.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let incoming = format!("00-{trace}-{caller_span}-01");
    let response = fetch(
        &http,
        traefik.port,
        "/continued",
        &[
            ("X-Request-Id", "client-req-42"),
            ("traceparent", incoming.as_str()),
            ("tracestate", "vendor=abc"),
        ],
    );
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("x-request-id").as_deref(),
        Some("client-req-42")
    );
    let seen = backend.seen_with("/continued").pop().unwrap();
    assert_eq!(
        seen.header("x-request-id").as_deref(),
        Some("client-req-42")
    );
    assert_eq!(seen.header("tracestate").as_deref(), Some("vendor=abc"));
    let out = parse_traceparent(seen.header("traceparent").unwrap().as_bytes()).unwrap();
    assert_eq!(out.trace_id.to_hex(), trace, "same trace id");
    assert_ne!(out.parent_id.to_hex(), caller_span, "a new span id");
    assert!(out.sampled());
    let record = record_for(&traefik, "client-req-42");
    assert_eq!(record.trace_id, trace);
    assert_eq!(record.span_id, out.parent_id.to_hex());
    assert_eq!(record.parent_span_id.as_deref(), Some(caller_span));
}

/// What the client sent and measured: expected status, wall-clock start ns, elapsed ns.
type Sent = (u16, u64, u64);

#[test]
#[ignore = "e2e: needs traefik + cargo xtask wasm"]
fn two_thousand_requests_over_32_connections_give_two_thousand_records() {
    const CONNECTIONS: usize = 32;
    const REQUESTS: usize = 2_000;
    let _serial = serial();
    let (_backend, traefik) = start();
    let before: HashSet<String> = parse_records(&traefik.spool_lines())
        .into_iter()
        .map(|r| r.request_id)
        .collect();

    let seen: Arc<Mutex<HashMap<String, Sent>>> = Arc::default();
    let port = traefik.port;
    std::thread::scope(|s| {
        for c in 0..CONNECTIONS {
            let seen = seen.clone();
            s.spawn(move || {
                // One keep-alive connection per thread.
                let http = Http::new();
                for i in (c..REQUESTS).step_by(CONNECTIONS) {
                    let status = [200u16, 404, 500][i % 3];
                    let target = format!("/status/{status}?n={i}");
                    let start = testkit::now_unix_ns();
                    let t0 = Instant::now();
                    let response = fetch(&http, port, &target, &[]);
                    let elapsed = t0.elapsed().as_nanos() as u64;
                    assert_eq!(response.status, status);
                    let id = response.header("x-request-id").expect("echoed id");
                    let old = seen.lock().unwrap().insert(id, (status, start, elapsed));
                    assert!(old.is_none(), "request id returned twice");
                }
            });
        }
    });
    let seen = Arc::into_inner(seen).unwrap().into_inner().unwrap();
    assert_eq!(seen.len(), REQUESTS);

    let mut records = Vec::new();
    testkit::wait_until("2000 new records", Duration::from_secs(30), || {
        records = parse_records(&traefik.spool_lines())
            .into_iter()
            .filter(|r| !before.contains(&r.request_id))
            .collect();
        records.len() >= REQUESTS
    });
    assert_eq!(records.len(), REQUESTS, "exactly one record per request");
    let unique: HashSet<&str> = records.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(unique.len(), REQUESTS, "unique request ids");
    // 32 concurrent requests ran on many plugin instances (each claimed a salt once), so the
    // uniqueness above held across instances started together.
    // Claim files are `claims-<day>`; a run crossing midnight claims in two of them.
    let claims: u64 = std::fs::read_dir(&traefik.spool)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("claims-"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        claims / gatetrace_core::spool::CLAIM_BYTES as u64 >= 2,
        "one instance only ({claims} claim bytes)"
    );
    for record in &records {
        let (status, start, elapsed) = seen
            .get(&record.request_id)
            .unwrap_or_else(|| panic!("record for an unknown request {record:?}"));
        assert!(is_hex_id(&record.request_id));
        assert_eq!(record.status, Some(*status), "{record:?}");
        // Numeric segments are ids: the endpoint label stays bounded.
        assert_eq!(record.endpoint, "/status/{id}");
        assert!(!record.streamed);
        assert!(record.duration_ns > 0, "{record:?}");
        assert!(
            record.duration_ns <= *elapsed,
            "plugin duration {} > client-measured {}",
            record.duration_ns,
            elapsed
        );
        // The plugin's start lies within the client's request window (1 ms clock slack).
        assert!(
            record.start_unix_ns + 1_000_000 >= *start && record.start_unix_ns <= start + elapsed,
            "{record:?} outside [{start}, {}]",
            start + elapsed
        );
    }
}

#[test]
#[ignore = "e2e: needs traefik + cargo xtask wasm"]
fn sse_is_never_held_back_and_unbuffered_headers_still_classify() {
    let _serial = serial();
    let (_backend, traefik) = start();
    let accept: &[u8] = b"application/json, text/event-stream";
    for method in ["GET", "POST"] {
        let mut client = Client::connect(traefik.port);
        let t0 = Instant::now();
        let mut first_event = None;
        let response = client.request_streaming(method, "/sse", &[("Accept", accept)], |chunk| {
            if first_event.is_none() && chunk.starts_with(b"data: one") {
                first_event = Some(t0.elapsed());
            }
        });
        let total = t0.elapsed();
        assert_eq!(response.status, 200);
        let first = first_event.expect("first event received");
        assert!(
            first < Duration::from_millis(500),
            "{method}: first event after {first:?} (held back)"
        );
        assert!(
            total >= Duration::from_secs(2),
            "{method}: stream ended early"
        );
        let id = response.header("x-request-id").expect("echoed id");
        let record = record_for(&traefik, &id);
        assert!(record.streamed, "{record:?}");
        // Not buffered, so not read: the SSE content type implies the 200 the client got.
        assert_eq!(
            (record.status, record.status_source),
            (Some(200), Some(gatetrace_core::mcp::StatusSource::Implied)),
            "an unbuffered stream's status is implied, never read"
        );
        assert_eq!(record.method, method);
        // The stream's end reaches the client and the plugin's handle_response at about the
        // same moment; 50 ms of slack keeps the upper bound honest without racing it.
        assert!(
            record.duration_ns >= 1_900_000_000
                && record.duration_ns <= total.as_nanos() as u64 + 50_000_000,
            "duration {} vs client {:?}",
            record.duration_ns,
            total
        );
    }
    // Response headers are readable without buffering: an SSE-accepting request whose
    // answer starts an MCP session is recorded as a session start.
    let accept = std::str::from_utf8(accept).unwrap();
    let response = fetch(&Http::new(), traefik.port, "/mcp", &[("Accept", accept)]);
    assert_eq!(response.status, 200);
    let record = record_for(&traefik, &response.header("x-request-id").unwrap());
    assert_eq!(record.status, None);
    let session = record
        .session
        .expect("session from the unbuffered response");
    assert_eq!(session.event, SessionEvent::Start);
    assert!(
        !session.id.contains("sess-1"),
        "session id hashed by default"
    );
}

#[test]
#[ignore = "e2e: needs traefik + cargo xtask wasm"]
fn hostile_ids_are_replaced_and_secrets_never_recorded() {
    let _serial = serial();
    let (backend, traefik) = start();
    let long = vec![b'a'; 10 * 1024];
    let hostile: [&[u8]; 5] = [
        &long,
        b"caf\xc3\xa9-\xff\xfe",
        b"\"quoted\"",
        br#"x","status":200,"y":"\u0000"#,
        b"a\\b{}[]<>",
    ];
    // The raw client: these header bytes (invalid UTF-8, quotes, 10 KiB) go out as written.
    for (i, value) in hostile.iter().enumerate() {
        let target = format!("/hostile/{i}");
        let response = get(traefik.port, &target, &[("X-Request-Id", value)]);
        assert_eq!(response.status, 200, "hostile id {i} answered");
        let seen = backend.seen_with(&target).pop().expect("backend reached");
        let id = seen.header("x-request-id").unwrap();
        assert!(
            is_hex_id(&id),
            "hostile id {i} replaced upstream, got {id:?}"
        );
        assert_eq!(response.header("x-request-id"), Some(id.clone()));
        let record = record_for(&traefik, &id);
        assert_eq!(record.endpoint, "/hostile/{id}");
    }

    let response = get(
        traefik.port,
        "/secret/path?access_token=QUERYSECRET&x=1",
        &[
            ("Authorization", b"Bearer AUTHSECRET"),
            ("Cookie", b"session=COOKIESECRET"),
        ],
    );
    assert_eq!(response.status, 200);
    let id = response.header("x-request-id").unwrap();
    let record = record_for(&traefik, &id);
    assert_eq!(record.endpoint, "/secret/path");
    for line in traefik.spool_lines() {
        for secret in [
            "QUERYSECRET",
            "access_token",
            "AUTHSECRET",
            "COOKIESECRET",
            "?",
        ] {
            assert!(!line.contains(secret), "{secret} leaked into {line}");
        }
    }
    assert!(!traefik.log().contains("AUTHSECRET"));
}

#[test]
#[ignore = "e2e: needs traefik + cargo xtask wasm"]
fn two_middlewares_with_different_configs_on_two_routers() {
    let _serial = serial();
    let (backend, traefik) = start();
    let http = Http::new();
    let api = fetch(&http, traefik.port, "/two/api", &[]);
    let other = fetch(
        &http,
        traefik.port,
        "/other/two",
        &[("X-Correlation-Id", "keep-me")],
    );
    assert_eq!((api.status, other.status), (200, 200));

    let api_id = api.header("x-request-id").expect("api echoes");
    assert_eq!(record_for(&traefik, &api_id).service, "api");

    // The other middleware uses its own header, replaces incoming ids and does not echo.
    assert_eq!(other.header("x-correlation-id"), None);
    let seen = backend.seen_with("/other/two").pop().unwrap();
    let other_id = seen.header("x-correlation-id").unwrap();
    assert!(is_hex_id(&other_id), "replace policy: {other_id}");
    let record = record_for(&traefik, &other_id);
    assert_eq!(record.service, "other");
    assert_eq!(record.endpoint, "/other/two");
}

#[test]
#[ignore = "e2e: needs traefik + cargo xtask wasm"]
fn a_bad_config_makes_traefik_refuse_the_middleware_and_name_the_key() {
    let _serial = serial();
    let dynamic = r#"
http:
  routers:
    good:
      rule: "PathPrefix(`/good`)"
      entryPoints: [web]
      service: backend
    unknown:
      rule: "PathPrefix(`/unknown`)"
      entryPoints: [web]
      service: backend
      middlewares: [unknown-key]
    wrongtype:
      rule: "PathPrefix(`/wrongtype`)"
      entryPoints: [web]
      service: backend
      middlewares: [wrong-type]
  middlewares:
    unknown-key:
      plugin:
        gatetrace:
          spool: { dir: "{spool}" }
          bogusOption: "1"
    wrong-type:
      plugin:
        gatetrace:
          spool: { dir: "{spool}" }
          echoRequestId: "perhaps"
  services:
    backend:
      loadBalancer:
        servers:
          - url: "{backend}"
"#;
    let backend = Backend::start();
    let traefik = Traefik::start(dynamic, backend.port);
    traefik.wait_route("/good");
    testkit::wait_until(
        "traefik to log both config errors",
        Duration::from_secs(20),
        || {
            let log = traefik.log();
            log.contains("bogusOption") && log.contains("echoRequestId")
        },
    );
    for target in ["/unknown", "/wrongtype"] {
        let response = fetch(&Http::new(), traefik.port, target, &[]);
        assert_ne!(response.status, 200, "{target} must not be served");
        assert!(
            backend.seen_with(target).is_empty(),
            "{target} reached the backend"
        );
    }
    let log = traefik.log();
    let line = log
        .lines()
        .find(|l| l.contains("bogusOption"))
        .unwrap_or_default();
    assert!(
        line.contains("gatetrace"),
        "log line names the plugin: {line}"
    );
}
