//! The harness against guests: hand-written WAT guests for host-function edge cases (always
//! run), and the fixture guests and gatetrace's plugins built by `cargo xtask wasm` (e2e).
// size: one concern, the harness against real guests; the WAT guests and the helpers that
// drive them are shared by every test here, and split files would only repeat them.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use gatetrace_host::HostCalls;
use gatetrace_host::guest::WASI_CALLS;
use gatetrace_host::http_wasm::{
    BackendResponse, Failure, HttpExchange, HttpRequest, Refused, TraefikHost, TraefikOptions,
    traefik_config,
};
use gatetrace_host::proxy::{
    CallResponse, CallState, Profile, ProxyHost, ProxyOptions, StartFailed,
};
use gatetrace_host::wasi::{Mount, WasiOptions};
use serde_json::json;

/// Every `http_handler` import.
const HTTP_HANDLER: [&str; 19] = [
    "enable_features",
    "get_config",
    "log_enabled",
    "log",
    "get_method",
    "set_method",
    "get_uri",
    "set_uri",
    "get_protocol_version",
    "get_header_names",
    "get_header_values",
    "set_header_value",
    "add_header_value",
    "remove_header",
    "read_body",
    "write_body",
    "get_status_code",
    "set_status_code",
    "get_source_addr",
];

/// Every proxy-wasm 0.2.1 `env` import.
const PROXY_ENV: [&str; 39] = [
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_set_effective_context",
    "proxy_done",
    "proxy_get_buffer_bytes",
    "proxy_get_buffer_status",
    "proxy_set_buffer_bytes",
    "proxy_get_header_map_pairs",
    "proxy_get_header_map_size",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_add_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_send_local_response",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_status",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_define_metric",
    "proxy_record_metric",
    "proxy_increment_metric",
    "proxy_get_metric",
    "proxy_call_foreign_function",
];

fn missing(calls: &HostCalls, names: &[&str]) -> BTreeSet<String> {
    names
        .iter()
        .filter(|n| calls.get(n) == 0)
        .map(|n| (*n).to_owned())
        .collect()
}

fn messages(logs: &[gatetrace_host::LogLine]) -> String {
    logs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------- WAT guests (always run)

/// `get_uri` with a too-small buffer writes nothing and returns the full length; multi-values
/// come back NUL-terminated with their count in the high word.
const BUF_LIMIT_GUEST: &str = r#"
(module
  (import "http_handler" "get_uri" (func $get_uri (param i32 i32) (result i32)))
  (import "http_handler" "get_header_values" (func $ghv (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "log" (func $log (param i32 i32 i32)))
  (import "http_handler" "set_status_code" (func $set_status (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "x-multi")
  (func (export "handle_request") (result i64)
    (local $small i32) (local $packed i64)
    (local.set $small (call $get_uri (i32.const 100) (i32.const 3)))
    (call $log (i32.const 0) (i32.const 100) (i32.const 7))
    (drop (call $get_uri (i32.const 100) (i32.const 64)))
    (call $log (i32.const 0) (i32.const 100) (i32.const 7))
    (local.set $packed (call $ghv (i32.const 0) (i32.const 0) (i32.const 7) (i32.const 300) (i32.const 64)))
    (call $log (i32.const 0) (i32.const 300) (i32.wrap_i64 (local.get $packed)))
    (call $set_status (i32.add (i32.mul (local.get $small) (i32.const 100))
      (i32.add (i32.mul (i32.wrap_i64 (i64.shr_u (local.get $packed) (i64.const 32))) (i32.const 10))
               (i32.wrap_i64 (local.get $packed)))))
    (i64.const 0))
  (func (export "handle_response") (param i32 i32)))
"#;

#[test]
fn buf_limit_too_small_writes_nothing_and_returns_the_full_length() {
    let mut host = TraefikHost::new(BUF_LIMIT_GUEST.as_bytes(), TraefikOptions::default()).unwrap();
    let request = HttpRequest::get("/abcdef")
        .header("X-Multi", "a")
        .header("x-multi", "bb");
    let x = host.handle(&request, &BackendResponse::status(200));
    assert_eq!(x.failure, None);
    assert!(!x.next, "the guest answered itself");
    // 7 (uri length from the too-small call) * 100 + 2 values * 10 + 5 bytes ("a\0bb\0").
    assert_eq!(x.response.status, 725);
    let logged: Vec<&str> = x.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(logged, ["\0\0\0\0\0\0\0", "/abcdef", "a\0bb\0"]);
}

/// A proxy-wasm guest that dispatches from `on_log` (3 pseudo-headers, 61 bytes serialized).
const DISPATCH_ON_LOG_GUEST: &str = r#"
(module
  (import "env" "proxy_http_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "collector")
  (data (i32.const 64) "\03\00\00\00\07\00\00\00\03\00\00\00\05\00\00\00\01\00\00\00\0a\00\00\00\01\00\00\00:method\00GET\00:path\00/\00:authority\00c\00")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32)
    (drop (call $call (i32.const 0) (i32.const 9) (i32.const 64) (i32.const 61)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 512)))))
"#;

fn proxy(profile: Profile, wasm: &[u8]) -> ProxyHost {
    let mut options = ProxyOptions::new(profile);
    options.clusters.push("collector".into());
    ProxyHost::new(wasm, options).unwrap()
}

#[test]
fn kong_traps_on_dispatch_from_on_log_while_envoy_drops_the_answer() {
    let mut kong = proxy(Profile::Kong, DISPATCH_ON_LOG_GUEST.as_bytes());
    let x = kong.http(&HttpRequest::get("/"), &BackendResponse::status(200));
    let failure = x.failure.expect("Kong refuses the dispatch by trapping");
    assert!(
        failure.contains("can only send HTTP dispatch during"),
        "{failure}"
    );
    assert!(failure.contains("from on_log"), "{failure}");
    assert!(kong.dispatched().is_empty());

    let mut envoy = proxy(Profile::Envoy, DISPATCH_ON_LOG_GUEST.as_bytes());
    let x = envoy.http(&HttpRequest::get("/"), &BackendResponse::status(200));
    assert_eq!(x.failure, None);
    let call = &envoy.dispatched()[0];
    assert_eq!(
        (call.from_callback, call.context_id),
        ("on_log", x.context_id)
    );
    assert!(
        matches!(call.state, CallState::Dropped(_)),
        "{:?}",
        call.state
    );
}

// ---------------------------------------------------------------- fixture guests (e2e)

fn http_fixture(config: &serde_json::Value, wasi: WasiOptions) -> anyhow::Result<TraefikHost> {
    let options = TraefikOptions {
        config: traefik_config(config),
        wasi,
        ..TraefikOptions::default()
    };
    TraefikHost::from_file(&testkit::wasm_artifact("fixtures/http-guest.wasm"), options)
}

fn proxy_fixture(profile: Profile, config: &str) -> anyhow::Result<ProxyHost> {
    let mut options = ProxyOptions::new(profile);
    options.plugin_config = config.as_bytes().to_vec();
    options.vm_config = b"vm-config".to_vec();
    options.clusters.push("collector".into());
    ProxyHost::from_file(
        &testkit::wasm_artifact("fixtures/proxy-guest.wasm"),
        options,
    )
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn http_fixture_exercises_every_http_handler_function() {
    let spool = tempfile::tempdir().unwrap();
    let wasi = WasiOptions {
        mounts: vec![Mount::parse(&format!("{}:/spool", spool.path().display())).unwrap()],
        ..WasiOptions::traefik()
    };
    let mut host = http_fixture(&json!({"mode": "normal", "spool": "/spool"}), wasi).unwrap();
    let mut calls = host.startup_calls().clone();
    let post = HttpRequest {
        method: "POST".into(),
        body: b"hello".to_vec(),
        ..HttpRequest::get("/rewrite/x")
    }
    .header("x-set-method", "PUT")
    .header("x-remove-me", "1")
    .header("x-request-id", "abc");
    let backend = BackendResponse {
        body: b"backend".to_vec(),
        ..BackendResponse::status(201)
            .header("content-type", "application/json")
            .header("x-remove-resp", "1")
    };
    let x = host.handle(&post, &backend);
    assert_eq!(x.failure, None);
    assert!(x.buffered_response());
    let up = x.upstream.as_ref().unwrap();
    assert_eq!(
        (up.method.as_str(), up.uri.as_str()),
        ("PUT", "/rewritten/x")
    );
    assert_eq!(up.body, b"hello+fixture");
    assert_eq!(up.headers.get_all("x-fixture-multi"), vec!["a", "b"]);
    assert_eq!(up.headers.get("x-remove-me"), None);
    assert_eq!(x.response.status, 201);
    assert_eq!(x.response.headers.get("x-fixture-status"), Some("201"));
    assert_eq!(x.response.headers.get("x-remove-resp"), None);
    assert_eq!(x.response.body, b"backend|fixture");
    calls.merge(&x.host_calls);

    let local = host.handle(&HttpRequest::get("/local"), &backend);
    assert!(!local.next);
    assert_eq!(
        (local.response.status, local.response.body.as_slice()),
        (418, &b"answered by the fixture"[..])
    );
    calls.merge(&local.host_calls);

    // Unbuffered (SSE): response headers are readable, changes are ignored and said so.
    let sse = host.handle(
        &HttpRequest::get("/mcp").header("accept", "text/event-stream"),
        &BackendResponse {
            streamed: true,
            ..BackendResponse::status(200).header("content-type", "text/event-stream")
        },
    );
    assert!(!sse.buffered_response());
    assert!(
        messages(&sse.logs).contains("content-type=[\"text/event-stream\"]"),
        "{:?}",
        sse.logs
    );
    assert_eq!(sse.response.headers.get("x-too-late"), None);
    assert!(
        sse.warnings
            .iter()
            .any(|w| w.contains("Traefik ignores it")),
        "{:?}",
        sse.warnings
    );
    calls.merge(&sse.host_calls);

    assert_eq!(missing(&calls, &HTTP_HANDLER), BTreeSet::new());
    let spooled = std::fs::read_to_string(spool.path().join("fixture.ndjson")).unwrap();
    assert_eq!(spooled.lines().count(), 2, "{spooled}");
    assert!(spooled.contains("\"status\":201"), "{spooled}");
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn a_start_function_that_traps_is_reported_as_middleware_refused_with_its_logs() {
    let err = http_fixture(&json!({"mode": "trap_init"}), WasiOptions::traefik()).unwrap_err();
    let refused = err.downcast_ref::<Refused>().expect("a Refused error");
    assert!(
        refused.reason.contains("_initialize trapped"),
        "{}",
        refused.reason
    );
    let logs = messages(&refused.logs);
    assert!(logs.contains("invalid config: key \"mode\""), "{logs}");
    assert!(
        logs.contains("fixture refuses its config"),
        "the panic message on stderr: {logs}"
    );
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn guest_traps_become_500_or_a_handler_panic() {
    let mut host = http_fixture(&json!({"mode": "trap_request"}), WasiOptions::traefik()).unwrap();
    let x = host.handle(&HttpRequest::get("/"), &BackendResponse::status(200));
    assert!(
        matches!(x.failure, Some(Failure::RequestTrap(_))),
        "{:?}",
        x.failure
    );
    assert_eq!(x.response.status, 500);
    assert!(x.upstream.is_none());

    let mut host = http_fixture(&json!({"mode": "trap_response"}), WasiOptions::traefik()).unwrap();
    let x = host.handle(&HttpRequest::get("/"), &BackendResponse::status(200));
    assert!(
        matches!(x.failure, Some(Failure::ResponseTrap(_))),
        "{:?}",
        x.failure
    );
    // The trapped instance is not reused: the next request gets a fresh one.
    let again = host.handle(&HttpRequest::get("/"), &BackendResponse::status(200));
    assert_eq!(again.instance, 1);
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn get_status_code_without_buffering_is_reported_as_a_traefik_panic() {
    let mut host = http_fixture(
        &json!({"mode": "status_without_buffer"}),
        WasiOptions::traefik(),
    )
    .unwrap();
    let x = host.handle(&HttpRequest::get("/"), &BackendResponse::status(204));
    match x.failure {
        Some(Failure::WouldPanic(why)) => assert!(why.contains("get_status_code"), "{why}"),
        other => panic!("expected WouldPanic, got {other:?}"),
    }
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn pool_pins_requests_and_new_instances_rerun_init_with_traefiks_wasi_quirks() {
    let mut host = http_fixture(&json!({"mode": "normal"}), WasiOptions::traefik()).unwrap();
    let first = host.begin(&HttpRequest::get("/one"));
    let second = host.begin(&HttpRequest::get("/two"));
    assert_eq!(host.instances_created(), 2);
    let inits = host
        .startup_logs()
        .iter()
        .filter(|l| l.message.contains("fixture init"))
        .count();
    assert_eq!(inits, 2, "each new instance re-runs its start function");
    let b = host.complete(second, &BackendResponse::status(200));
    let a = host.complete(first, &BackendResponse::status(200));
    assert_eq!((a.instance, b.instance), (0, 1));
    // Pinned: each response ran on the instance that saw its request (ctx 1 on each).
    assert!(messages(&a.logs).contains("resp ctx=1"), "{:?}", a.logs);
    assert!(messages(&b.logs).contains("resp ctx=1"), "{:?}", b.logs);
    // Same random stream in every instance; fake monotonic clock starting at 1 ms.
    let rand = |logs: &str| logs.split("rand=").nth(1).unwrap().to_owned();
    assert_eq!(rand(&messages(&a.logs)), rand(&messages(&b.logs)));
    assert!(messages(&a.logs).contains("mono=1000000 "), "{:?}", a.logs);
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn proxy_fixture_exercises_every_env_function_under_envoy() {
    let mut host = proxy_fixture(Profile::Envoy, r#"{"mode":"normal","calls":"all"}"#).unwrap();
    let logs = messages(&host.take_logs());
    // log level OK, buffer status OK, get_status OK, resolve OK / NOT_FOUND, foreign NOT_FOUND,
    // proxy_done on a context not pending NOT_FOUND, unknown effective context BAD_ARGUMENT;
    // gRPC: no upstream (BAD_ARGUMENT) and unknown ids (NOT_FOUND).
    assert!(
        logs.contains("exotic statuses [0, 0, 0, 0, 1, 1, 1, 2] grpc [2, 2, 1, 1, 1]"),
        "{logs}"
    );
    assert!(logs.contains("vm start config=\"vm-config\""), "{logs}");
    let mut calls = host.take_host_calls();

    let post = HttpRequest {
        method: "POST".into(),
        body: b"in".to_vec(),
        ..HttpRequest::get("/x")
    }
    .header("x-remove-me", "1");
    let backend = BackendResponse {
        body: b"out".to_vec(),
        ..BackendResponse::status(200)
    };
    let x = host.http(&post, &backend);
    assert_eq!(x.failure, None);
    assert_eq!(
        x.callbacks.first().map(String::as_str),
        Some("on_context_create")
    );
    let up = x.upstream.unwrap();
    assert_eq!(up.body, b"in+fixture");
    assert_eq!(
        (up.headers.get("x-fixture"), up.headers.get("x-remove-me")),
        (Some("1"), None)
    );
    assert_eq!(x.response.body, b"out|fixture");
    assert_eq!(x.response.headers.get("x-fixture-resp"), Some("200"));
    calls.merge(&x.host_calls);

    let local = host.http(&HttpRequest::get("/local"), &backend);
    assert!(local.local_response);
    assert_eq!(
        (local.response.status, local.response.headers.get("x-local")),
        (403, Some("1"))
    );
    assert!(local.upstream.is_none());
    calls.merge(&local.host_calls);

    let pairs = host.http(&HttpRequest::get("/set-pairs"), &backend);
    assert_eq!(pairs.upstream.unwrap().uri, "/replaced");
    calls.merge(&pairs.host_calls);

    let closed = host.http(&HttpRequest::get("/close"), &backend);
    assert_eq!(closed.response.status, 0, "stream reset");
    calls.merge(&closed.host_calls);

    // A request that waits for a call: the answer goes to its own context and resumes it.
    let ctx = host.begin_http(&HttpRequest::get("/dispatch"));
    let call = host.pending_calls().pop().unwrap();
    assert_eq!(
        (call.context_id, call.from_callback),
        (ctx, "on_request_headers")
    );
    host.respond_call(
        call.id,
        &CallResponse {
            body: b"hi".to_vec(),
            ..CallResponse::status(200)
        },
    )
    .unwrap();
    let x = host.end_http(ctx, &backend);
    assert!(x.upstream.is_some(), "resumed by proxy_continue_stream");
    assert!(
        messages(&x.logs).contains(&format!("call {} answered 200 body=\"hi\"", call.id)),
        "{:?}",
        x.logs
    );
    calls.merge(&x.host_calls);

    // Records queued in on_log leave from the root context on the tick (every 1000 ms).
    host.advance(Duration::from_millis(1000)).unwrap();
    let batch = host
        .pending_calls()
        .pop()
        .expect("a batch call from on_tick");
    assert_eq!((batch.context_id, batch.from_callback), (1, "on_tick"));
    assert_eq!(String::from_utf8_lossy(&batch.body).lines().count(), 5);
    host.time_out_call(batch.id).unwrap();
    assert!(messages(&host.take_logs()).contains(&format!("call {} failed", batch.id)));
    calls.merge(&host.take_host_calls());

    assert_eq!(missing(&calls, &PROXY_ENV), BTreeSet::new());
    assert_eq!(
        host.shared_data("fixture.requests").map(|(v, _)| v),
        Some(b"5".to_vec())
    );
    assert_eq!(host.metrics()[0].value, 5);
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn properties_are_binary_in_envoy_and_text_in_kong() {
    for (profile, expected) in [
        (Profile::Envoy, "time=1767225600000000000 "),
        (Profile::Kong, "time=1767225600.000 "),
    ] {
        let mut host = proxy_fixture(profile, r#"{"mode":"normal"}"#).unwrap();
        let x = host.http(&HttpRequest::get("/p"), &BackendResponse::status(200));
        assert!(
            messages(&x.logs).contains(expected),
            "{profile:?}: {:?}",
            x.logs
        );
    }
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn kong_refuses_dispatch_from_on_log_and_traps_on_calls_it_lacks() {
    let mut kong = proxy_fixture(Profile::Kong, r#"{"mode":"dispatch_on_log"}"#).unwrap();
    let warnings = kong.take_warnings().join("\n");
    assert!(
        warnings.contains("env.proxy_get_header_map_size, which ngx_wasm_module does not provide"),
        "{warnings}"
    );
    let x = kong.http(&HttpRequest::get("/"), &BackendResponse::status(200));
    assert_eq!(
        x.callbacks
            .iter()
            .map(|c| c.split('=').next().unwrap())
            .collect::<Vec<_>>(),
        [
            "on_context_create",
            "on_request_headers",
            "on_response_headers",
            "on_log"
        ]
    );
    assert!(
        x.failure
            .unwrap()
            .contains("Kong refuses proxy_http_call from on_log")
    );
    assert!(kong.broken().is_some());

    let err = proxy_fixture(Profile::Kong, r#"{"mode":"normal","calls":"all"}"#).unwrap_err();
    let failed = err.downcast_ref::<StartFailed>().unwrap();
    assert!(
        failed.reason.contains("Kong refuses proxy_get_log_level"),
        "{}",
        failed.reason
    );

    // Kong: on_log comes before on_done, and on_done's answer is ignored.
    let mut kong = proxy_fixture(Profile::Kong, r#"{"mode":"never_done"}"#).unwrap();
    let x = kong.http(&HttpRequest::get("/"), &BackendResponse::status(200));
    let order: Vec<_> = x
        .callbacks
        .iter()
        .map(|c| c.split('=').next().unwrap())
        .collect();
    assert_eq!(order[order.len() - 3..], ["on_log", "on_done", "on_delete"]);
    assert!(
        x.warnings.iter().any(|w| w.contains("Kong ignores it")),
        "{:?}",
        x.warnings
    );
    assert!(kong.unfinished_contexts().is_empty());
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn envoy_catches_contexts_that_are_never_freed() {
    let mut host = proxy_fixture(Profile::Envoy, r#"{"mode":"never_done"}"#).unwrap();
    for _ in 0..3 {
        let x = host.http(&HttpRequest::get("/"), &BackendResponse::status(200));
        assert_eq!(x.callbacks.last().map(String::as_str), Some("on_done=0"));
    }
    host.advance(Duration::from_secs(3)).unwrap();
    assert_eq!(host.unfinished_contexts(), vec![2, 3, 4]);

    // The same guest calling proxy_done later gets on_log and on_delete then.
    let mut host = proxy_fixture(Profile::Envoy, r#"{"mode":"late_done"}"#).unwrap();
    let x = host.http(&HttpRequest::get("/"), &BackendResponse::status(200));
    assert_eq!(host.unfinished_contexts(), vec![x.context_id]);
    host.advance(Duration::from_millis(1000)).unwrap();
    assert!(host.unfinished_contexts().is_empty());
    let logs = messages(&host.take_logs());
    assert!(
        logs.contains(&format!(
            "proxy_done for {}: effective=0 done=0",
            x.context_id
        )),
        "{logs}"
    );
    assert!(
        logs.contains(&format!("context {} deleted", x.context_id)),
        "{logs}"
    );
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn a_guest_that_traps_breaks_the_vm_and_refusing_config_fails_start() {
    let mut host = proxy_fixture(Profile::Envoy, r#"{"mode":"trap_request"}"#).unwrap();
    let x = host.http(&HttpRequest::get("/"), &BackendResponse::status(200));
    assert!(
        x.failure
            .unwrap()
            .contains("trap in proxy_on_request_headers")
    );
    assert_eq!(x.response.status, 500);
    let err = proxy_fixture(Profile::Envoy, r#"{"mode":"refuse_config"}"#).unwrap_err();
    let failed = err.downcast_ref::<StartFailed>().unwrap();
    assert!(failed.reason.contains("proxy_on_configure returned false"));
    assert!(messages(&failed.logs).contains("invalid plugin configuration"));
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn real_network_mode_posts_batches_to_a_loopback_collector() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        // Read the head, then exactly content-length bytes of body.
        while !String::from_utf8_lossy(&received).contains("\r\n\r\n") {
            let n = socket.read(&mut buf).unwrap();
            assert!(n > 0, "client closed early");
            received.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&received).into_owned();
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let head_len = text.find("\r\n\r\n").unwrap() + 4;
        while received.len() < head_len + length {
            let n = socket.read(&mut buf).unwrap();
            assert!(n > 0, "client closed early");
            received.extend_from_slice(&buf[..n]);
        }
        socket
            .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok")
            .unwrap();
        tx.send(String::from_utf8_lossy(&received).into_owned())
            .unwrap();
    });
    let mut options = ProxyOptions::new(Profile::Envoy);
    options.plugin_config = br#"{"mode":"normal"}"#.to_vec();
    options.real_clusters.insert("collector".into(), addr);
    let mut host = ProxyHost::from_file(
        &testkit::wasm_artifact("fixtures/proxy-guest.wasm"),
        options,
    )
    .unwrap();
    for _ in 0..3 {
        assert_eq!(
            host.http(&HttpRequest::get("/"), &BackendResponse::status(200))
                .failure,
            None
        );
    }
    host.advance(Duration::from_millis(1000)).unwrap();
    let request = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    server.join().unwrap();
    assert!(
        request.starts_with("POST /v1/records HTTP/1.1\r\n"),
        "{request}"
    );
    assert_eq!(request.matches("\"code\":200").count(), 3, "{request}");
    assert_eq!(host.dispatched()[0].state, CallState::Answered(202));
    assert!(messages(&host.take_logs()).contains("answered 202 body=\"ok\""));
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn guest_memory_stays_bounded_over_many_requests() {
    let mut host = proxy_fixture(Profile::Envoy, r#"{"mode":"normal"}"#).unwrap();
    let mut after_warmup = 0;
    for i in 0..5_000 {
        let x = host.http(&HttpRequest::get("/m"), &BackendResponse::status(200));
        assert_eq!(x.failure, None);
        if i % 100 == 99 {
            host.advance(Duration::from_millis(1000)).unwrap();
            for call in host.pending_calls() {
                host.respond_call(call.id, &CallResponse::status(200))
                    .unwrap();
            }
        }
        if i == 499 {
            after_warmup = host.memory_bytes();
        }
    }
    assert_eq!(
        host.memory_bytes(),
        after_warmup,
        "memory grew after warm-up"
    );
}

/// The Traefik bench's calibration guests (fixture modes `noop`, `minimal`, `calls`) do what
/// their names promise; `calls` makes exactly the plugin's `http_handler` calls, so the bench
/// compares the plugin against its own host calls without its work.
#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn bench_calibration_modes_make_the_calls_they_claim() {
    let spool = tempfile::tempdir().unwrap();
    let wasi = || WasiOptions {
        mounts: vec![Mount::parse(&format!("{}:/spool", spool.path().display())).unwrap()],
        ..WasiOptions::traefik()
    };
    // The bench's request: a plain GET answered 200.
    let request = HttpRequest::get("/bench").header("host", "gw.example");
    let backend = BackendResponse::status(200)
        .header("content-type", "text/plain")
        .header("content-length", "9");
    // The `http_handler` calls; WASI calls (counted together) are compared on their own below.
    let calls_of = |x: &HttpExchange| {
        x.host_calls
            .iter()
            .filter(|(name, _)| *name != WASI_CALLS)
            .collect::<Vec<_>>()
    };

    let mut noop = http_fixture(&json!({"mode": "noop"}), wasi()).unwrap();
    let x = noop.handle(&request, &backend);
    assert_eq!(
        (x.failure.clone(), x.next, calls_of(&x)),
        (None, true, vec![])
    );

    let mut minimal = http_fixture(&json!({"mode": "minimal", "spool": "/spool"}), wasi()).unwrap();
    let x = minimal.handle(&request, &backend);
    assert_eq!(x.failure, None);
    assert!(x.buffered_response());
    assert_eq!(
        calls_of(&x),
        [
            ("enable_features", 1),
            ("get_header_values", 2),
            ("get_status_code", 1),
            ("set_header_value", 1)
        ]
    );

    let mut calls = http_fixture(&json!({"mode": "calls", "spool": "/spool"}), wasi()).unwrap();
    let x = calls.handle(&request, &backend);
    assert_eq!(x.failure, None);
    let plugin_options = TraefikOptions {
        config: traefik_config(&json!({"service": "bench", "spool": {"dir": "/spool"}})),
        wasi: wasi(),
        ..TraefikOptions::default()
    };
    let mut plugin = TraefikHost::from_file(
        &testkit::wasm_artifact("gatetrace-traefik.wasm"),
        plugin_options,
    )
    .unwrap();
    let y = plugin.handle(&request, &backend);
    assert_eq!(y.failure, None);
    assert_eq!(calls_of(&x), calls_of(&y));
    // Once their files are open, both read the clock twice and write once per request.
    let (x, y) = (
        calls.handle(&request, &backend),
        plugin.handle(&request, &backend),
    );
    assert_eq!(
        (x.host_calls.get(WASI_CALLS), y.host_calls.get(WASI_CALLS)),
        (3, 3)
    );

    let lines = std::fs::read_to_string(spool.path().join("calibration.ndjson")).unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");
    assert!(lines.contains("\"status\":200"), "{lines}");
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn the_traefik_plugin_runs_through_the_http_wasm_host() {
    let spool = tempfile::tempdir().unwrap();
    let options = TraefikOptions {
        config: traefik_config(
            &json!({"service": "mcp-oauth", "echoRequestId": true, "spool": {"dir": "/spool"}}),
        ),
        wasi: WasiOptions {
            mounts: vec![Mount::parse(&format!("{}:/spool", spool.path().display())).unwrap()],
            ..WasiOptions::traefik()
        },
        ..TraefikOptions::default()
    };
    let mut host =
        TraefikHost::from_file(&testkit::wasm_artifact("gatetrace-traefik.wasm"), options).unwrap();
    let x = host.handle(
        &HttpRequest::get("/register/abc").header("x-request-id", "req-1"),
        &BackendResponse::status(201).header("content-type", "application/json"),
    );
    assert_eq!(x.failure, None);
    // Set on the response before `next`, kept beside the backend's own headers.
    assert_eq!(x.response.headers.get("x-request-id"), Some("req-1"));
    assert_eq!(
        x.response.headers.get("content-type"),
        Some("application/json")
    );
    assert!(
        x.buffered_response(),
        "a plain JSON request is buffered for its status"
    );
    let up = x.upstream.unwrap();
    assert_eq!(up.headers.get("x-request-id"), Some("req-1"));
    assert!(
        up.headers
            .get("traceparent")
            .is_some_and(|t| t.starts_with("00-"))
    );
    let sse = host.handle(
        &HttpRequest::get("/mcp").header("accept", "application/json, text/event-stream"),
        &BackendResponse::status(200).header("content-type", "text/event-stream"),
    );
    assert!(
        !sse.buffered_response(),
        "SSE-capable requests are never buffered"
    );
    assert_eq!(sse.failure, None);
    let mut lines = String::new();
    for entry in std::fs::read_dir(spool.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ndjson") {
            lines.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(
        lines.contains("\"endpoint\":\"/register/{client_id}\"")
            || lines.contains("\"status\":201"),
        "{lines}"
    );
}

/// Installed from the plugin catalog, Traefik starts the plugin with its `.traefik.yml`
/// `testData` and no `settings.mounts`: the plugin still runs (ids and trace context go
/// upstream, the id is echoed), says once per instance that records are dropped with reason
/// `no_spool`, and a bad config is still refused at `_initialize`.
#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn the_traefik_plugin_runs_on_its_test_data_without_a_spool_mount() {
    let manifest_path = testkit::workspace_root().join("plugin/http-wasm/.traefik.yml");
    let manifest: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let test_data = serde_json::to_value(&manifest["testData"]).unwrap();
    let spool_dir = test_data["spool"]["dir"].as_str().unwrap().to_owned();
    let wasm = testkit::wasm_artifact("gatetrace-traefik.wasm");
    let options = |config: &serde_json::Value| TraefikOptions {
        config: traefik_config(config),
        wasi: WasiOptions::traefik(),
        ..TraefikOptions::default()
    };
    let mut host = TraefikHost::from_file(&wasm, options(&test_data)).unwrap();
    let startup = messages(host.startup_logs());
    assert_eq!(host.startup_logs().len(), 1, "{startup}");
    assert!(startup.contains("reason no_spool"), "{startup}");
    assert!(startup.contains(&spool_dir), "{startup}");
    for _ in 0..3 {
        let x = host.handle(
            &HttpRequest::get("/mcp").header("x-request-id", "req-9"),
            &BackendResponse::status(200).header("content-type", "application/json"),
        );
        assert_eq!(x.failure, None, "{:?}", x.logs);
        assert!(x.next);
        assert!(x.logs.is_empty(), "no log line per request: {:?}", x.logs);
        let up = x.upstream.unwrap();
        assert!(
            up.headers
                .get("traceparent")
                .is_some_and(|t| t.starts_with("00-"))
        );
        assert_eq!(x.response.headers.get("x-request-id"), Some("req-9"));
    }
    assert_eq!(host.instances_created(), 1);

    let mut bad = test_data;
    bad["bogusKey"] = json!(1);
    let err = TraefikHost::from_file(&wasm, options(&bad)).unwrap_err();
    let refused = err
        .downcast_ref::<Refused>()
        .expect("refused at _initialize");
    assert!(
        refused.reason.contains("_initialize trapped"),
        "{}",
        refused.reason
    );
    assert!(
        messages(&refused.logs).contains("bogusKey"),
        "{:?}",
        refused.logs
    );
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn the_proxy_plugin_batches_records_from_its_tick_under_envoy_and_kong() {
    for profile in [Profile::Envoy, Profile::Kong] {
        let mut options = ProxyOptions::new(profile);
        options.plugin_config = br#"{"service":"mcp-oauth"}"#.to_vec();
        options.clusters.push("gatetrace_collector".into());
        let mut host =
            ProxyHost::from_file(&testkit::wasm_artifact("gatetrace-proxy.wasm"), options).unwrap();
        let x = host.http(
            &HttpRequest::get("/register").header("x-request-id", "req-7"),
            &BackendResponse::status(201),
        );
        assert_eq!(x.failure, None, "{profile:?}");
        let up = x.upstream.unwrap();
        assert!(up.headers.get("traceparent").is_some(), "{profile:?}");
        assert!(
            x.dispatched.is_empty(),
            "{profile:?}: never dispatches from the stream"
        );
        host.advance(Duration::from_secs(2)).unwrap();
        let batch = host.pending_calls().pop().expect("a batch from the tick");
        assert_eq!(
            (batch.context_id, batch.from_callback),
            (1, "on_tick"),
            "{profile:?}"
        );
        let body = String::from_utf8_lossy(&batch.body).into_owned();
        assert!(
            body.contains("\"request_id\":\"req-7\"") && body.contains("\"status\":201"),
            "{profile:?}: {body}"
        );
        host.respond_call(batch.id, &CallResponse::status(202))
            .unwrap();
        assert!(host.unfinished_contexts().is_empty());
    }
}
