//! Property: both plugins never trap and pass every request and response through unchanged
//! except the headers they own, under random and hostile input (huge and many headers, broken
//! `traceparent`, CR/LF in ids, empty and enormous paths, odd methods, hostile JSON-RPC bodies
//! and MCP headers, bodies with and without `Content-Length`), in the Traefik, Envoy and Kong
//! profiles. `GATETRACE_LONG=1` runs the long variant (≥ 1 million requests in all), built
//! optimised (in the dev profile a case costs ≈ 6–12 ms; optimised ≈ 0.5–1.3 ms): `GATETRACE_LONG=1 cargo nextest run --profile soak --cargo-profile release
//! -p gatetrace-host --test never_traps --run-ignored all --success-output final`.
//!
//! The harness models header values and URIs as `String`s, so invalid UTF-8 reaches the plugins
//! only in bodies (request and response); header values carry arbitrary non-ASCII text instead.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use gatetrace_host::headers::Headers;
use gatetrace_host::http_wasm::{
    BackendResponse, HttpRequest, TraefikHost, TraefikOptions, traefik_config,
};
use gatetrace_host::proxy::{CallResponse, Profile, ProxyHost, ProxyOptions};
use gatetrace_host::wasi::{Mount, WasiOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRunner};
use serde_json::json;

/// Headers the plugin may set, replace or remove; everything else passes unchanged.
const OWNED: [&str; 3] = ["x-request-id", "traceparent", "tracestate"];
/// The proxy-wasm cluster batches go to (answered by the harness).
const CLUSTER: &str = "gatetrace_collector";
/// Requests per host: a fresh host (and spool) after this many keeps memory and disk bounded
/// in the long variant and varies the configuration.
const PER_HOST: u32 = 2_000;
/// Requests per profile in the default run and in the long variant (3 profiles);
/// `GATETRACE_FUZZ_CASES=N` sets another count. Measured on the project's 2-core machine under
/// load: a debug build spends ≈ 3 ms generating a case (≈ 25 ms before [`bulk`]) and 2–10 ms
/// in the harness and plugin; a release build ≈ 0.5 ms (Traefik) to ≈ 1.3 ms (proxy-wasm) in
/// all. Compiling the module takes ≈ 10–20 s per test in a debug build.
const DEFAULT_CASES: u32 = 1_000;
const LONG_CASES: u32 = 340_000;

fn cases() -> u32 {
    if let Some(n) = std::env::var("GATETRACE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        return n;
    }
    if std::env::var_os("GATETRACE_LONG").is_some_and(|v| v == "1") {
        LONG_CASES
    } else {
        DEFAULT_CASES
    }
}

// ---------------------------------------------------------------- generators

/// An HTTP token (header name or method) of `len` characters.
fn token(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            8 => proptest::char::range('a', 'z'),
            2 => proptest::char::range('A', 'Z'),
            1 => proptest::char::range('0', '9'),
            1 => proptest::sample::select(vec!['-', '_', '.', '!', '#', '$', '%', '&', '\'', '*', '+', '^', '`', '|', '~']),
        ],
        len,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Characters of an HTTP token that [`token`] draws from, for the bulk generators below.
const TOKEN_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~";

/// Bulk random data, `len` items made by `item` from a seeded generator: one value tree per
/// value instead of one per byte (per-element trees made generating a case cost more than
/// running it through both hosts). Shrinking such a value shortens it or zeroes its seed.
fn bulk<T: std::fmt::Debug>(
    len: std::ops::Range<usize>,
    item: fn(&mut fastrand::Rng) -> T,
) -> impl Strategy<Value = Vec<T>> {
    (len, any::<u64>()).prop_map(move |(n, seed)| {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| item(&mut rng)).collect()
    })
}

fn token_char(rng: &mut fastrand::Rng) -> char {
    char::from(TOKEN_CHARS[rng.usize(..TOKEN_CHARS.len())])
}

/// A token of `len` characters, in bulk.
fn long_token(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    bulk(len, token_char).prop_map(|chars| chars.into_iter().collect())
}

/// Any text without NUL (a NUL would split an http-wasm multi-value; no real host passes one).
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        any::<char>().prop_map(|c| if c == '\0' { ' ' } else { c }),
        0..=max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Short ASCII text with CR, LF and controls mixed in.
fn ascii_with_breaks(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            6 => proptest::char::range(' ', '~'),
            1 => proptest::sample::select(vec!['\r', '\n', '\t', '\u{7f}', '\u{1}']),
        ],
        0..=max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn hex(len: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(b"0123456789abcdefABCDEF".to_vec()),
        len,
    )
    .prop_map(|b| String::from_utf8(b).unwrap_or_default())
}

fn traceparent() -> impl Strategy<Value = String> {
    prop_oneof![
        (hex(32), hex(16), hex(2)).prop_map(|(t, s, f)| format!("00-{t}-{s}-{f}")),
        Just("00-00000000000000000000000000000000-0000000000000000-01".to_owned()),
        Just("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned()),
        (hex(32), hex(16)).prop_map(|(t, s)| format!("01-{t}-{s}-01-extra\r\nx: y")),
        (hex(31), hex(17)).prop_map(|(t, s)| format!("00-{t}-{s}-01")),
        ascii_with_breaks(80),
        text(60),
    ]
}

fn tracestate() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec((token(1..=20), ascii_with_breaks(20)), 0..40).prop_map(|m| m
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")),
        Just(format!("{}=x", "k".repeat(300))),
        Just("@a=1,foo@=2,a=1,a=2".to_owned()),
        text(100),
    ]
}

fn request_id() -> impl Strategy<Value = String> {
    prop_oneof![
        token(1..=40),
        ascii_with_breaks(60),
        Just("id\r\nx-injected: 1".to_owned()),
        Just("x".repeat(5_000)),
        text(40),
    ]
}

fn mcp_method() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "initialize",
            "tools/call",
            "tools/list",
            "resources/read",
            "prompts/get",
            "notifications/initialized",
            "subscriptions/listen",
            "ping",
            "logging/setLevel",
            "tasks/result",
            "",
        ])
        .prop_map(str::to_owned),
        ascii_with_breaks(40),
        text(300),
    ]
}

/// A JSON value nested `depth` levels deep (arrays or objects).
fn nested(depth: usize, object: bool) -> String {
    if object {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    } else {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }
}

/// A JSON-RPC id, method or params fragment, hostile or plain.
fn json_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1".to_owned()),
        Just("null".to_owned()),
        Just("-0".to_owned()),
        Just("1e999".to_owned()),
        Just("123456789012345678901234567890".to_owned()),
        Just("\"\\u0000\\ud800\"".to_owned()),
        Just("{}".to_owned()),
        Just("[]".to_owned()),
        Just("true".to_owned()),
        text(40).prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        (1usize..3_000, any::<bool>()).prop_map(|(d, o)| nested(d, o)),
        Just(format!("\"{}\"", "x".repeat(70_000))),
    ]
}

fn json_rpc_body() -> impl Strategy<Value = Vec<u8>> {
    let message = (json_fragment(), mcp_method(), json_fragment(), json_fragment())
        .prop_map(
        |(id, method, params, name)| {
            let method = serde_json::to_string(&method).unwrap_or_default();
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":{method},"params":{{"name":{name},"arguments":{params},"_meta":{{"traceparent":{name}}}}}}}"#
            )
        })
        .boxed();
    prop_oneof![
        4 => message.clone().prop_map(String::into_bytes),
        1 => proptest::collection::vec(message.clone(), 0..5)
            .prop_map(|m| format!("[{}]", m.join(",")).into_bytes()),
        // Truncated at any byte, or with bytes flipped: invalid UTF-8 and broken JSON.
        1 => (message.clone(), any::<prop::sample::Index>())
            .prop_map(|(m, cut)| m.as_bytes()[..cut.index(m.len() + 1)].to_vec()),
        1 => (message, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(m, at, b)| {
            let mut bytes = m.into_bytes();
            let i = at.index(bytes.len());
            bytes[i] = b | 0x80;
            bytes
        }),
        1 => Just(b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"method\":\"x\",\"id\":1,\"id\":\"2\"}".to_vec()),
        1 => Just(b"\xef\xbb\xbf  \r\n\t".to_vec()),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => Just(Vec::new()),
        4 => json_rpc_body(),
        2 => bulk(0..2_048, |rng| rng.u8(..)),
        1 => (1usize..300_000).prop_map(|n| vec![b'{'; n]),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        token(0..=12),
        Just("..".to_owned()),
        Just("%FF%00".to_owned()),
        text(8)
    ];
    prop_oneof![
        3 => Just("/mcp".to_owned()),
        1 => Just("/mcp/".to_owned()),
        1 => Just("/mcp?code=secret&token=t".to_owned()),
        1 => Just(String::new()),
        1 => Just("*".to_owned()),
        1 => Just("/".to_owned()),
        4 => (proptest::collection::vec(segment, 0..12), text(20))
            .prop_map(|(segs, q)| format!("/{}?{q}", segs.join("/"))),
        1 => (1usize..200_000).prop_map(|n| format!("/{}", "a/".repeat(n / 2))),
        1 => text(200),
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(vec![
            "GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PRI",
            "get", "M-SEARCH",
        ])
        .prop_map(str::to_owned),
        1 => token(1..=100),
    ]
}

/// Names the plugin looks at (and some it must never record), plus random tokens.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(vec![
            "accept", "Accept", "content-type", "mcp-session-id", "Mcp-Method", "Mcp-Name",
            "MCP-Protocol-Version", "Mcp-Param-City", "authorization", "cookie", "user-agent",
            "upgrade", "connection", "te", "grpc-timeout", "x-forwarded-for", "last-event-id",
            "www-authenticate", "x-request-id", "traceparent", "tracestate", "content-encoding",
            "transfer-encoding",
        ])
        .prop_map(str::to_owned),
        2 => token(1..=60),
        1 => long_token(200..2_001),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => ascii_with_breaks(60),
        2 => text(60),
        1 => proptest::sample::select(vec![
            "application/json, text/event-stream", "text/event-stream", "application/json",
            "=?base64?dG9vbA==?=", "=?base64?!!!?=", "Bearer abc.def.ghi", "websocket", "trailers",
            "application/grpc", "2025-11-25", "2026-07-28",
        ])
        .prop_map(str::to_owned),
        1 => (1usize..40_000).prop_map(|n| "v".repeat(n)),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop_oneof![
        8 => proptest::collection::vec((header_name(), header_value()), 0..24),
        1 => bulk(300..1_500, |rng| {
            let name: String = (0..rng.usize(1..=12)).map(|_| token_char(rng)).collect();
            (name, "x".to_owned())
        }),
    ]
}

/// How the request says its body length.
#[derive(Debug, Clone)]
enum Length {
    Absent,
    Exact,
    Wrong(u64),
    Garbage(String),
    Twice,
}

fn length() -> impl Strategy<Value = Length> {
    prop_oneof![
        3 => Just(Length::Absent),
        4 => Just(Length::Exact),
        1 => any::<u64>().prop_map(Length::Wrong),
        1 => ascii_with_breaks(20).prop_map(Length::Garbage),
        1 => Just(Length::Twice),
    ]
}

fn request() -> impl Strategy<Value = HttpRequest> {
    (
        method(),
        path(),
        headers(),
        proptest::option::of(request_id()),
        proptest::option::of(traceparent()),
        proptest::option::of(tracestate()),
        proptest::option::of((mcp_method(), text(80), ascii_with_breaks(12))),
        body(),
        length(),
        proptest::option::of(token(1..=40)),
        any::<bool>(),
    )
        .prop_map(
            |(method, uri, random, id, parent, state, mcp, body, length, host, http2)| {
                let mut headers = Headers::default();
                if let Some(host) = host {
                    headers.add("host", &host);
                }
                for (name, value) in &random {
                    headers.add(name, value);
                }
                for (name, value) in [
                    ("x-request-id", id),
                    ("traceparent", parent),
                    ("tracestate", state),
                ] {
                    if let Some(value) = value {
                        headers.add(name, &value);
                    }
                }
                if let Some((m, name, version)) = mcp {
                    headers.add("Mcp-Method", &m);
                    headers.add("Mcp-Name", &name);
                    headers.add("MCP-Protocol-Version", &version);
                }
                let n = body.len().to_string();
                match length {
                    Length::Absent => {}
                    Length::Exact => headers.add("content-length", &n),
                    Length::Wrong(w) => headers.add("content-length", &w.to_string()),
                    Length::Garbage(g) => headers.add("Content-Length", &g),
                    Length::Twice => {
                        headers.add("content-length", &n);
                        headers.add("Content-Length", "0");
                    }
                }
                HttpRequest {
                    method,
                    uri,
                    protocol: if http2 { "HTTP/2.0" } else { "HTTP/1.1" }.into(),
                    headers,
                    body,
                    body_parts: Vec::new(),
                    source_addr: "192.0.2.10:50123".into(),
                }
            },
        )
}

fn response() -> impl Strategy<Value = BackendResponse> {
    (
        prop_oneof![4 => Just(200u16), 1 => 101u16..=599],
        headers(),
        proptest::option::of(prop_oneof![
            Just("text/event-stream".to_owned()),
            Just("application/json".to_owned()),
            Just("text/event-stream; charset=utf-8".to_owned()),
            header_value(),
        ]),
        prop_oneof![
            2 => body(),
            1 => json_fragment().prop_map(|r| {
                format!(r#"event: message\ndata: {{"jsonrpc":"2.0","id":1,"result":{{"isError":{r}}},"error":{{"code":{r}}}}}\n\n"#)
                    .into_bytes()
            }),
        ],
        any::<bool>(),
    )
        .prop_map(|(status, random, content_type, body, streamed)| {
            let mut headers = Headers::default();
            if let Some(ct) = content_type {
                headers.add("content-type", &ct);
            }
            for (name, value) in &random {
                headers.add(name, value);
            }
            BackendResponse {
                status,
                headers,
                body,
                streamed,
                body_parts: Vec::new(),
            }
        })
}

// ---------------------------------------------------------------- checking one exchange

fn owned(name: &str) -> bool {
    OWNED.iter().any(|o| o.eq_ignore_ascii_case(name))
}

/// Header fields other than the plugin's own and pseudo-headers (and `host`, which a
/// proxy-wasm host turns into `:authority`), names lowercased, in order.
fn foreign(headers: &Headers) -> Vec<(String, String)> {
    headers
        .pairs()
        .iter()
        .filter(|(k, _)| !owned(k) && !k.starts_with(':') && !k.eq_ignore_ascii_case("host"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

fn check(
    what: &str,
    request: &HttpRequest,
    backend: &BackendResponse,
    upstream: Option<&gatetrace_host::model::UpstreamRequest>,
    response: &gatetrace_host::model::ClientResponse,
) -> Result<(), TestCaseError> {
    let Some(up) = upstream else {
        return Err(TestCaseError::fail(format!(
            "{what}: the request did not go upstream"
        )));
    };
    prop_assert_eq!(&up.method, &request.method, "{}: method", what);
    prop_assert_eq!(&up.uri, &request.uri, "{}: uri", what);
    prop_assert!(up.body == request.body, "{}: request body changed", what);
    prop_assert_eq!(
        foreign(&up.headers),
        foreign(&request.headers),
        "{}: request headers",
        what
    );
    prop_assert_eq!(response.status, backend.status, "{}: status", what);
    prop_assert!(
        response.body == backend.body,
        "{}: response body changed",
        what
    );
    prop_assert_eq!(
        foreign(&response.headers),
        foreign(&backend.headers),
        "{}: response headers",
        what
    );
    Ok(())
}

// ---------------------------------------------------------------- drivers

/// A Traefik host over a fresh spool, replaced every [`PER_HOST`] requests.
struct Traefik {
    host: TraefikHost,
    _spool: tempfile::TempDir,
    served: u32,
    hosts: u32,
}

fn traefik_host(variant: u32) -> (TraefikHost, tempfile::TempDir) {
    let spool = tempfile::tempdir().unwrap();
    let policy = ["validate", "trust", "replace"][variant as usize % 3];
    let buffer = ["auto", "always", "never"][(variant / 3) as usize % 3];
    let config = json!({
        "service": "fuzz",
        "echoRequestId": variant.is_multiple_of(2),
        "requestIdPolicy": policy,
        "bufferResponses": buffer,
        "sessionId": if variant.is_multiple_of(2) { "raw" } else { "hash" },
        "recordUserAgent": true,
        "recordClientAddr": true,
        "spool": {"dir": "/spool"},
    });
    let options = TraefikOptions {
        config: traefik_config(&config),
        wasi: WasiOptions {
            mounts: vec![Mount::parse(&format!("{}:/spool", spool.path().display())).unwrap()],
            ..WasiOptions::traefik()
        },
        ..TraefikOptions::default()
    };
    let host =
        TraefikHost::from_file(&testkit::wasm_artifact("gatetrace-traefik.wasm"), options).unwrap();
    (host, spool)
}

impl Traefik {
    fn new() -> Self {
        let (host, spool) = traefik_host(0);
        Self {
            host,
            _spool: spool,
            served: 0,
            hosts: 1,
        }
    }

    fn run(
        &mut self,
        request: &HttpRequest,
        backend: &BackendResponse,
    ) -> Result<(), TestCaseError> {
        if self.served == PER_HOST {
            let (host, spool) = traefik_host(self.hosts);
            (self.host, self._spool, self.served) = (host, spool, 0);
            self.hosts += 1;
        }
        self.served += 1;
        let x = self.host.handle(request, backend);
        prop_assert!(x.failure.is_none(), "traefik: {:?}", x.failure);
        prop_assert!(x.next, "traefik: the plugin answered itself");
        check(
            "traefik",
            request,
            backend,
            x.upstream.as_ref(),
            &x.response,
        )
    }
}

/// A proxy-wasm host, ticking and answering its batches, replaced every [`PER_HOST`] requests.
struct Proxy {
    profile: Profile,
    host: ProxyHost,
    served: u32,
    hosts: u32,
}

fn proxy_host(profile: Profile, variant: u32) -> ProxyHost {
    let policy = ["validate", "trust", "replace"][variant as usize % 3];
    let mut options = ProxyOptions::new(profile);
    options.plugin_config = serde_json::to_vec(&json!({
        "service": "fuzz",
        "echoRequestId": variant.is_multiple_of(2),
        "requestIdPolicy": policy,
        "sessionId": if variant.is_multiple_of(2) { "raw" } else { "hash" },
        "recordUserAgent": true,
        "collector": {"queueCapacity": 500, "batchSize": 100},
    }))
    .unwrap();
    options.clusters.push(CLUSTER.into());
    ProxyHost::from_file(&testkit::wasm_artifact("gatetrace-proxy.wasm"), options).unwrap()
}

impl Proxy {
    fn new(profile: Profile) -> Self {
        Self {
            profile,
            host: proxy_host(profile, 0),
            served: 0,
            hosts: 1,
        }
    }

    fn run(
        &mut self,
        request: &HttpRequest,
        backend: &BackendResponse,
    ) -> Result<(), TestCaseError> {
        if self.served == PER_HOST {
            self.host = proxy_host(self.profile, self.hosts);
            self.served = 0;
            self.hosts += 1;
        }
        self.served += 1;
        let what = format!("{:?}", self.profile);
        let x = self.host.http(request, backend);
        prop_assert!(x.failure.is_none(), "{}: {:?}", what, x.failure);
        prop_assert!(!x.local_response, "{}: the plugin answered itself", what);
        check(&what, request, backend, x.upstream.as_ref(), &x.response)?;
        if self.served.is_multiple_of(50) {
            // Ticks ship the queue; answer every batch, alternating success and failure.
            let advanced = self.host.advance(Duration::from_secs(1));
            prop_assert!(advanced.is_ok(), "{}: tick: {:?}", what, advanced);
            for call in self.host.pending_calls() {
                let answer = if self.served.is_multiple_of(100) {
                    self.host.respond_call(call.id, &CallResponse::status(202))
                } else {
                    self.host.fail_call(call.id, "collector down")
                };
                prop_assert!(answer.is_ok(), "{}: call answer: {:?}", what, answer);
            }
        }
        prop_assert!(
            self.host.broken().is_none(),
            "{}: {:?}",
            what,
            self.host.broken()
        );
        Ok(())
    }
}

/// Runs `cases` random exchanges through `run` and prints the count and time.
fn drive(
    name: &str,
    mut run: impl FnMut(&HttpRequest, &BackendResponse) -> Result<(), TestCaseError>,
) {
    let cases = cases();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        // ChaCha in an unoptimised test build costs more than the plugin: xorshift is enough.
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    });
    let started = Instant::now();
    let count = RefCell::new(0u64);
    let in_hosts = RefCell::new(Duration::ZERO);
    let run = RefCell::new(&mut run);
    let result = runner.run(&(request(), response()), |(request, backend)| {
        *count.borrow_mut() += 1;
        if count.borrow().is_multiple_of(1_000) {
            eprintln!(
                "{name}: {} requests, {:.0} s",
                count.borrow(),
                started.elapsed().as_secs_f64()
            );
        }
        let mut run = run.borrow_mut();
        let one = Instant::now();
        let outcome = (*run)(&request, &backend);
        *in_hosts.borrow_mut() += one.elapsed();
        outcome
    });
    eprintln!(
        "{name}: {} requests in {:.1} s ({:.1} s in the harness and plugin, the rest generating)",
        count.borrow(),
        started.elapsed().as_secs_f64(),
        in_hosts.borrow().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn the_traefik_plugin_never_traps_and_changes_only_its_headers() {
    let mut traefik = Traefik::new();
    drive("traefik", |req, resp| traefik.run(req, resp));
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn the_proxy_plugin_never_traps_and_changes_only_its_headers_under_envoy() {
    let mut envoy = Proxy::new(Profile::Envoy);
    drive("envoy", |req, resp| envoy.run(req, resp));
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn the_proxy_plugin_never_traps_and_changes_only_its_headers_under_kong() {
    let mut kong = Proxy::new(Profile::Kong);
    drive("kong", |req, resp| kong.run(req, resp));
}
