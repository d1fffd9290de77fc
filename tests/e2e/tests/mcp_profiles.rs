//! The same MCP traffic gives the same MCP fields on every gateway (issue 12): a recorded set
//! of requests — what the real MCP servers of `mcp_traefik.rs` received from the real SDK
//! clients (mcp 1.x with sessions, progress, elicitation and DELETE; mcp 2.x with 2026-07-28
//! headers and `Mcp-Param-Secret`; a hand-made base64 `Mcp-Name`), with the status and content
//! type each server answered (`tests/e2e/mcp/recorded.ndjson`) — replayed through the built
//! plugins in the harness's Traefik, Envoy and Kong profiles. The hosts are the harness's
//! stand-ins for the gateways (the real Traefik run is `mcp_traefik.rs`).

use std::path::Path;
use std::time::Duration;

use gatetrace_host::http_wasm::{
    BackendResponse, HttpRequest, TraefikHost, TraefikOptions, traefik_config,
};
use gatetrace_host::proxy::{CallResponse, Profile, ProxyHost, ProxyOptions};
use gatetrace_host::wasi::{Mount, WasiOptions};
use serde_json::{Value, json};

/// The recorded requests, below the workspace root.
const RECORDED: &str = "tests/e2e/mcp/recorded.ndjson";
/// The proxy-wasm plugin's collector cluster.
const CLUSTER: &str = "gatetrace_collector";
/// What the Python SDK sends as `Accept` on POST and DELETE.
const MCP_ACCEPT: &str = "application/json, text/event-stream";
/// Fields of `mcp` a host knows before the response: compared on every host.
const REQUEST_FIELDS: [&str; 9] = [
    "source",
    "kind",
    "method",
    "tool",
    "prompt",
    "resource_hash",
    "request_id_kind",
    "protocol_version",
    "body_skipped",
];
/// Argument and `Mcp-Param` values planted in the recorded bodies and headers.
const SECRETS: [&str; 2] = ["ARGSECRET", "PARAMSECRET"];

fn config(spool: &str) -> Value {
    json!({
        "service": "mcp-e2e",
        "mcpRoutes": ["/mcp", "/mcp2"],
        "mcpBodyLimit": 4096,
        "tokenRules": [{"route": "/mcp", "mode": "required"}, {"route": "/mcp2", "mode": "required"}],
        "spool": {"dir": spool},
        "collector": {"tickMs": "100", "batchSize": "100"},
    })
}

/// One recorded request and the answer its server gave, as harness inputs.
fn recorded() -> Vec<(Value, HttpRequest, BackendResponse)> {
    let text = std::fs::read_to_string(testkit::workspace_root().join(RECORDED)).unwrap();
    text.lines()
        .map(|line| {
            let r: Value = serde_json::from_str(line).unwrap();
            let method = r["method"].as_str().unwrap();
            let body = r["body"].as_str().unwrap().as_bytes().to_vec();
            let mut request = HttpRequest::get(r["path"].as_str().unwrap())
                .header("host", "127.0.0.1:8080")
                .header("authorization", "Bearer recorded-token");
            request.method = method.to_owned();
            request = match method {
                "GET" => request.header("accept", "text/event-stream"),
                _ => request.header("accept", MCP_ACCEPT),
            };
            if method == "POST" {
                request = request
                    .header("content-type", "application/json")
                    .header("content-length", &body.len().to_string());
            }
            for (name, value) in r["headers"].as_object().unwrap() {
                request = request.header(name, value.as_str().unwrap());
            }
            request.body = body;
            let content_type = r["content_type"].as_str().unwrap();
            let mut backend = BackendResponse::status(r["status"].as_u64().unwrap() as u16)
                .header("content-type", content_type);
            for (name, value) in r["answer_headers"].as_object().into_iter().flatten() {
                backend = backend.header(name, value.as_str().unwrap());
            }
            let id = serde_json::from_str::<Value>(r["body"].as_str().unwrap())
                .ok()
                .map(|b| b["id"].clone())
                .filter(|id| !id.is_null() && r["status"] == 200);
            if let Some(id) = id {
                let result = json!({"jsonrpc": "2.0", "id": id, "result": {"content": []}});
                backend.body = if content_type == "text/event-stream" {
                    backend.streamed = true;
                    format!("event: message\r\ndata: {result}\r\n\r\n").into_bytes()
                } else {
                    result.to_string().into_bytes()
                };
            } else if content_type == "text/event-stream" {
                backend.streamed = true;
            }
            (r, request, backend)
        })
        .collect()
}

fn traefik_records(traffic: &[(Value, HttpRequest, BackendResponse)], spool: &Path) -> Vec<Value> {
    let options = TraefikOptions {
        config: traefik_config(&config("/spool")),
        wasi: WasiOptions {
            mounts: vec![Mount::parse(&format!("{}:/spool", spool.display())).unwrap()],
            ..WasiOptions::traefik()
        },
        ..TraefikOptions::default()
    };
    let mut host =
        TraefikHost::from_file(&testkit::wasm_artifact("gatetrace-traefik.wasm"), options)
            .unwrap_or_else(|e| panic!("traefik plugin: {e:#}"));
    for (_, request, backend) in traffic {
        let exchange = host.handle(request, backend);
        assert_eq!(exchange.failure, None, "traefik: {:?}", exchange.logs);
        let upstream = exchange.upstream.expect("the request went upstream");
        assert!(
            upstream.body == request.body,
            "traefik: the upstream body differs from the one sent ({} vs {} bytes)",
            upstream.body.len(),
            request.body.len()
        );
    }
    let mut segments: Vec<_> = std::fs::read_dir(spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    segments.sort();
    lines(
        &segments
            .iter()
            .flat_map(|p| std::fs::read(p).unwrap())
            .collect::<Vec<u8>>(),
    )
}

fn proxy_records(
    profile: Profile,
    traffic: &[(Value, HttpRequest, BackendResponse)],
) -> Vec<Value> {
    let mut options = ProxyOptions::new(profile);
    options.plugin_config = serde_json::to_vec(
        &serde_json::from_slice::<Value>(&traefik_config(&config("/spool"))).unwrap(),
    )
    .unwrap();
    options.clusters = vec![CLUSTER.to_owned()];
    let mut host = ProxyHost::from_file(&testkit::wasm_artifact("gatetrace-proxy.wasm"), options)
        .unwrap_or_else(|e| panic!("{profile:?}: {e:#}"));
    for (_, request, backend) in traffic {
        let exchange = host.http(request, backend);
        assert_eq!(exchange.failure, None, "{profile:?}: {:?}", exchange.logs);
        let upstream = exchange.upstream.expect("the request went upstream");
        assert!(
            upstream.body == request.body,
            "{profile:?}: upstream body differs"
        );
    }
    host.advance(Duration::from_millis(200)).unwrap();
    let mut out = Vec::new();
    for call in host.pending_calls() {
        out.extend(lines(&call.body));
        host.respond_call(call.id, &CallResponse::status(200))
            .unwrap();
    }
    out
}

fn lines(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn request_fields(record: &Value) -> Value {
    let mcp = &record["mcp"];
    Value::Object(
        REQUEST_FIELDS
            .iter()
            .map(|k| ((*k).to_owned(), mcp[*k].clone()))
            .collect(),
    )
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn recorded_mcp_traffic_gives_the_same_mcp_fields_on_traefik_envoy_and_kong() {
    let traffic = recorded();
    assert!(traffic.len() >= 14, "{} recorded requests", traffic.len());
    let spool = tempfile::tempdir().unwrap();
    let traefik = traefik_records(&traffic, spool.path());
    assert_eq!(
        traefik.len(),
        traffic.len(),
        "traefik: one record per request"
    );
    for profile in [Profile::Envoy, Profile::Kong] {
        let proxy = proxy_records(profile, &traffic);
        assert_eq!(
            proxy.len(),
            traffic.len(),
            "{profile:?}: one record per request"
        );
        for (n, ((recorded, _, backend), (t, p))) in
            traffic.iter().zip(traefik.iter().zip(&proxy)).enumerate()
        {
            let what = format!("request {n} ({} {})", recorded["method"], recorded["body"]);
            assert_eq!(
                request_fields(t),
                request_fields(p),
                "{what}: traefik (left) and {profile:?} (right) differ"
            );
            // What the body says, the record says.
            let body: Value =
                serde_json::from_str(recorded["body"].as_str().unwrap()).unwrap_or(Value::Null);
            assert_eq!(p["mcp"]["method"], body["method"], "{what}: {p}");
            if body["method"] == "tools/call" {
                assert_eq!(p["mcp"]["tool"], body["params"]["name"], "{what}: {p}");
            }
            // proxy-wasm always knows the status; where Traefik does too, both agree, and
            // where Traefik buffered, both know the outcome alike.
            assert_eq!(p["status"], u64::from(backend.status), "{what}: {p}");
            if t["status"].is_u64() {
                assert_eq!(t["status"], p["status"], "{what}");
            }
            if t["status_source"] == "observed" {
                assert_eq!(t["mcp"]["outcome"], p["mcp"]["outcome"], "{what}");
            }
        }
        for record in traefik.iter().chain(&proxy) {
            let text = record.to_string();
            for secret in SECRETS {
                assert!(!text.contains(secret), "{secret} leaked: {text}");
            }
        }
    }
}

/// Top-level record fields every host that sees the status gives alike (`duration`, ids, the
/// host kind and `response_bytes`, which depends on how each host frames the body, differ).
const EXCHANGE_FIELDS: [&str; 9] = [
    "v",
    "method",
    "endpoint",
    "status",
    "status_source",
    "streamed",
    "service",
    "session",
    "token",
];

/// The npm package's records of the recorded traffic: `test/replay.mjs` of the Node example
/// answers it from a plain `http` server behind the package, over real loopback HTTP.
fn node_records() -> Vec<Value> {
    let example = testkit::tool("GATETRACE_NODE_EXAMPLE");
    let output = std::process::Command::new(testkit::tool("GATETRACE_NODE"))
        .current_dir(&example)
        .arg("test/replay.mjs")
        .arg(testkit::workspace_root().join(RECORDED))
        .arg(config("/spool").to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "replay.mjs: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("replay.mjs printed no JSON ({e}): {stdout}"))
}

#[test]
#[ignore = "e2e: real Node (GATETRACE_NODE, GATETRACE_NODE_EXAMPLE) + cargo xtask wasm"]
fn recorded_mcp_traffic_gives_the_same_record_in_the_npm_package_as_on_traefik_and_envoy() {
    let traffic = recorded();
    let spool = tempfile::tempdir().unwrap();
    let traefik = traefik_records(&traffic, spool.path());
    let envoy = proxy_records(Profile::Envoy, &traffic);
    let node = node_records();
    assert_eq!(node.len(), traffic.len(), "node: one record per request");
    for (n, ((recorded, _, _), ((t, e), js))) in traffic
        .iter()
        .zip(traefik.iter().zip(&envoy).zip(&node))
        .enumerate()
    {
        let what = format!("request {n} ({} {})", recorded["method"], recorded["body"]);
        assert_eq!(js["host_kind"], "node", "{what}");
        assert_eq!(
            request_fields(js),
            request_fields(t),
            "{what}: node (left) and traefik (right) differ"
        );
        // Node, like Envoy, always knows the status: the whole MCP facts and the exchange
        // fields agree with Envoy's.
        assert_eq!(
            js["mcp"], e["mcp"],
            "{what}: node (left) and envoy (right) differ"
        );
        for field in EXCHANGE_FIELDS {
            assert_eq!(
                js[field], e[field],
                "{what}: `{field}` of node (left) and envoy (right) differ"
            );
        }
        let text = js.to_string();
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
}
