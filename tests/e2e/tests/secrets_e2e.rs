//! End to end, no secret is ever recorded (issue 14): requests carrying OAuth codes and tokens in
//! query strings, bearer tokens, cookies, MCP tool arguments, `Mcp-Param-*` headers and
//! `params._meta` values go through real Traefik with the plugin (spool → collector) and through
//! the harness's Envoy profile (proxy-wasm → the collector's HTTP ingest, over loopback). One
//! collector (the binary) writes access lines and its debug log and exports spans to Phoenix (a
//! real OTLP receiver). Each secret is a unique random string; every record, access line, log
//! line, span (Phoenix's own answer) and `/metrics` label is searched for each: none is found.
//! Each output scanned is first shown to hold what the requests produced (a scan of nothing
//! fails).

mod common;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::process::Command;
use std::time::Duration;

use common::http::Backend;
use common::proxy::{CLUSTER, host_with};
use common::traefik::Traefik;
use gatetrace_host::http_wasm::{BackendResponse, HttpRequest};
use gatetrace_host::proxy::Profile;
use serde_json::json;
use testkit::ChildGuard;

const DYNAMIC: &str = r#"
http:
  routers:
    main:
      rule: "PathPrefix(`/`)"
      entryPoints: [web]
      service: backend
      middlewares: [gatetrace]
  middlewares:
    gatetrace:
      plugin:
        gatetrace:
          service: secrets
          mcpRoutes: ["/mcp"]
          spool:
            dir: "{spool}"
            windowSecs: "2"
  services:
    backend:
      loadBalancer:
        servers:
          - url: "{backend}"
"#;

/// Requests per gateway: the same five through Traefik and through the Envoy profile.
const REQUESTS: usize = 5;

/// The planted secrets, one per place a secret can ride in; unique per run.
struct Secrets {
    oauth_code: String,
    oauth_state: String,
    client_secret: String,
    query_token: String,
    bearer: String,
    cookie: String,
    csrf_cookie: String,
    tool_argument: String,
    mcp_param: String,
    meta_value: String,
    mcp_bearer: String,
}

impl Secrets {
    fn new() -> Self {
        // `RandomState` is seeded randomly per process: a fresh 128-bit string per secret.
        let random = |kind: &str| {
            let state = RandomState::new();
            format!(
                "{kind}{:016x}{:016x}",
                state.hash_one(kind),
                state.hash_one(std::process::id())
            )
        };
        Self {
            oauth_code: random("CODE"),
            oauth_state: random("STATE"),
            client_secret: random("CLIENTSECRET"),
            query_token: random("QUERYTOKEN"),
            bearer: random("BEARER"),
            cookie: random("COOKIE"),
            csrf_cookie: random("CSRF"),
            tool_argument: random("TOOLARG"),
            mcp_param: random("MCPPARAM"),
            meta_value: random("META"),
            mcp_bearer: random("MCPBEARER"),
        }
    }

    fn all(&self) -> [&str; 11] {
        [
            &self.oauth_code,
            &self.oauth_state,
            &self.client_secret,
            &self.query_token,
            &self.bearer,
            &self.cookie,
            &self.csrf_cookie,
            &self.tool_argument,
            &self.mcp_param,
            &self.meta_value,
            &self.mcp_bearer,
        ]
    }

    /// The requests, as the harness's model (Traefik gets the same bytes over HTTP/1.1).
    fn requests(&self) -> Vec<HttpRequest> {
        let mut callback = HttpRequest::get(&format!(
            "/oauth/callback?code={}&state={}",
            self.oauth_code, self.oauth_state
        ));
        callback
            .headers
            .add("cookie", &format!("session={}", self.cookie));
        let mut token = HttpRequest::get(&format!(
            "/oauth/token?client_secret={}&grant_type=authorization_code",
            self.client_secret
        ));
        token.method = "POST".into();
        token
            .headers
            .add("content-type", "application/x-www-form-urlencoded");
        token.body = format!(
            "code={}&client_secret={}",
            self.oauth_code, self.client_secret
        )
        .into_bytes();
        let api = HttpRequest::get(&format!("/api/items/42?access_token={}", self.query_token))
            .header("authorization", &format!("Bearer {}", self.bearer))
            .header(
                "cookie",
                &format!("session={}; csrf={}", self.cookie, self.csrf_cookie),
            );
        let call = json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {
                "name": "lookup",
                "arguments": {"password": self.tool_argument, "query": self.tool_argument},
                "_meta": {"progressToken": self.meta_value, "apiKey": self.meta_value},
            },
        });
        let mut mcp = HttpRequest::get("/mcp")
            .header("authorization", &format!("Bearer {}", self.mcp_bearer))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "lookup")
            .header("mcp-param-password", &self.mcp_param);
        mcp.method = "POST".into();
        mcp.body = serde_json::to_vec(&call).unwrap();
        let mut read = HttpRequest::get("/mcp")
            .header("authorization", &format!("Bearer {}", self.mcp_bearer))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-method", "resources/read");
        read.method = "POST".into();
        read.body = serde_json::to_vec(&json!({
            "jsonrpc": "2.0", "id": 8, "method": "resources/read",
            "params": {"uri": format!("secret://{}", self.tool_argument),
                       "_meta": {"token": self.meta_value}},
        }))
        .unwrap();
        vec![callback, token, api, mcp, read]
    }
}

/// Sends `request` through Traefik (HTTP/1.1 over loopback, body and headers as given).
fn through_traefik(agent: &ureq::Agent, port: u16, request: &HttpRequest) {
    let url = format!("http://127.0.0.1:{port}{}", request.uri);
    let status = if request.method == "POST" {
        let mut post = agent.post(&url);
        for (name, value) in request.headers.pairs() {
            post = post.header(name, value);
        }
        post.send(&request.body[..]).unwrap().status()
    } else {
        let mut get = agent.get(&url);
        for (name, value) in request.headers.pairs() {
            get = get.header(name, value);
        }
        get.call().unwrap().status()
    };
    assert_eq!(status, 200, "{} {}", request.method, request.uri);
}

fn get_text(agent: &ureq::Agent, url: &str) -> String {
    agent
        .get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// Sum of `mcp_oauth_requests_total` over its series (label values may hold `}`: endpoint
/// templates; an exemplar follows ` # `).
fn requests_total(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("mcp_oauth_requests_total{"))
        .filter_map(|l| {
            let sample = l.split(" # ").next()?;
            sample
                .rsplit_once('}')?
                .1
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .sum::<f64>() as usize
}

/// Panics naming every secret found in `text` (and where); `text` must hold at least `min_lines`
/// lines, so an empty scan cannot pass.
fn scan(place: &str, text: &str, min_lines: usize, secrets: &Secrets) -> usize {
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(
        lines >= min_lines,
        "{place}: {lines} lines to scan, expected at least {min_lines}:\n{text}"
    );
    let found: Vec<&str> = secrets
        .all()
        .into_iter()
        .filter(|s| text.contains(s))
        .collect();
    assert!(found.is_empty(), "{place} holds secrets {found:?}:\n{text}");
    lines
}

#[test]
#[ignore = "e2e: needs traefik, phoenix and cargo xtask wasm"]
fn no_secret_reaches_any_record_log_span_or_label_through_traefik_or_envoy() {
    let secrets = Secrets::new();
    let requests = secrets.requests();
    assert_eq!(requests.len(), REQUESTS);
    let dir = tempfile::tempdir().unwrap();
    let phoenix = common::phoenix::start(dir.path());
    let (phoenix_http, phoenix_grpc) = (phoenix.http_port, phoenix.grpc_port);

    // Traefik with the plugin, spooling; the collector binary reads that spool.
    let backend = Backend::start();
    let traefik = Traefik::start(DYNAMIC, backend.port);
    traefik.wait_route("/ready");
    let port = testkit::free_port();
    let access_log = dir.path().join("access.log");
    let collector = ChildGuard::spawn(
        Command::new(common::collector_binary())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg(format!("--spool-dir={}", traefik.spool.display()))
            .args(["--spool-window-secs", "2"])
            // Keeps the segments it has read (they are scanned at the end).
            .args(["--spool-grace-secs", "600"])
            .arg(format!("--access-log={}", access_log.display()))
            .args(["--log", "debug", "--otlp-batch-delay-ms", "100"])
            .arg(format!("--otlp-endpoint=http://127.0.0.1:{phoenix_grpc}"))
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL"),
        dir.path().join("collector.log"),
    );
    testkit::wait_for_port("the collector", port, Duration::from_secs(30));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    for request in &requests {
        through_traefik(&agent, traefik.port, request);
    }
    // The readiness probe's own request is in the spool too.
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    testkit::wait_until(
        "the collector to count the Traefik requests",
        Duration::from_secs(30),
        || requests_total(&get_text(&agent, &metrics_url)) > REQUESTS,
    );
    let from_traefik = requests_total(&get_text(&agent, &metrics_url));

    // The same requests through the plugin in the harness's Envoy profile, its collector
    // cluster the real collector.
    let collector_addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = json!({
        "service": "secrets-envoy",
        "mcpRoutes": ["/mcp"],
        "collector": {"cluster": CLUSTER, "tickMs": "100", "batchSize": "10"},
    });
    let mut envoy = host_with(Profile::Envoy, &config, |options| {
        options
            .real_clusters
            .insert(CLUSTER.to_owned(), collector_addr);
    });
    for request in &requests {
        let exchange = envoy.http(request, &BackendResponse::status(200));
        assert_eq!(exchange.failure, None);
    }
    testkit::wait_until(
        "the collector to count the Envoy requests",
        Duration::from_secs(30),
        || {
            envoy.advance(Duration::from_millis(100)).expect("tick");
            requests_total(&get_text(&agent, &metrics_url)) >= from_traefik + REQUESTS
        },
    );
    let batches: String = envoy
        .dispatched()
        .iter()
        .map(|call| String::from_utf8_lossy(&call.body).into_owned())
        .collect();

    // Spans: wait until Phoenix holds one per request.
    let spans = common::phoenix::wait_for_spans(
        &testkit::http::Http::new(),
        phoenix_http,
        &[],
        "Phoenix to store every span",
        |n| n > 2 * REQUESTS,
    );
    let metrics = get_text(&agent, &metrics_url);
    // SIGTERM flushes the access log and the log.
    Command::new("kill")
        .args(["-TERM", &collector.id().to_string()])
        .status()
        .unwrap();
    let mut collector = collector;
    testkit::wait_until("the collector to exit", Duration::from_secs(30), || {
        collector.try_wait().is_some()
    });

    // The secrets did reach the gateways (else this test proves nothing).
    let seen = backend.seen_with("/");
    let raw_heads: String = seen
        .iter()
        .flat_map(|m| {
            [
                m.target.clone(),
                String::from_utf8_lossy(&m.body).into_owned(),
            ]
            .into_iter()
            .chain(
                m.headers
                    .values()
                    .flatten()
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    for secret in secrets.all() {
        assert!(
            raw_heads.contains(secret),
            "the backend got {secret} through Traefik"
        );
    }
    let spool = traefik.spool_lines().join("\n");
    let records = common::parse_records(&traefik.spool_lines());
    let mcp_records = records
        .iter()
        .filter(|r| {
            r.mcp
                .as_ref()
                .is_some_and(|m| m.tool.as_deref() == Some("lookup"))
        })
        .count();
    assert_eq!(
        mcp_records, 1,
        "the tools/call was read as MCP: {records:?}"
    );
    let span_text: String = spans
        .iter()
        .map(|s| serde_json::to_string(s).unwrap() + "\n")
        .collect();
    let labels: String = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('{'))
        .map(|l| format!("{}\n", l))
        .collect();
    let mut counts = Vec::new();
    for (place, text, min) in [
        ("the spool's records (Traefik)", spool, REQUESTS),
        ("the batches the Envoy profile posted", batches, 1),
        (
            "the access log",
            std::fs::read_to_string(&access_log).unwrap(),
            2 * REQUESTS,
        ),
        ("the collector's log", collector.log(), 3),
        (
            "Traefik's log (plugin lines included)",
            traefik.child.log(),
            3,
        ),
        ("the spans in Phoenix", span_text, 2 * REQUESTS),
        ("/metrics labels", labels, 10),
    ] {
        counts.push(format!(
            "{place}: {} lines",
            scan(place, &text, min, &secrets)
        ));
    }
    let envoy_records = batches_records(&envoy);
    assert!(
        envoy_records >= REQUESTS,
        "the Envoy profile posted {envoy_records} records"
    );
    eprintln!(
        "secrets: {} unique secrets, none found in {}",
        secrets.all().len(),
        counts.join(", ")
    );
}

/// Records in the batches the Envoy profile posted.
fn batches_records(envoy: &gatetrace_host::proxy::ProxyHost) -> usize {
    envoy
        .dispatched()
        .iter()
        .map(|call| {
            call.body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        })
        .sum()
}
