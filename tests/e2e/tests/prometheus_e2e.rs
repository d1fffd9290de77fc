//! End to end: real Prometheus (with exemplar storage) scrapes the collector binary after known
//! records were ingested; PromQL returns the exact counts and the exemplars carry trace ids of
//! sampled requests only, for the request and the MCP operations histograms alike.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gatetrace_core::mcp::MessageKind;
use gatetrace_core::mcp::facts::McpFacts;
use gatetrace_core::record::{HostKind, Record, TokenResult};
use serde_json::Value;
use testkit::ChildGuard;

mod common;
use testkit::http::Http;

struct Spec {
    service: &'static str,
    method: &'static str,
    endpoint: &'static str,
    status: Option<u16>,
    duration_ms: u64,
    token: Option<TokenResult>,
    streamed: bool,
    /// One flag per record: sampled or not.
    sampled: &'static [bool],
}

/// The records, grouped by label set. Within `POST /mcp 200` the last record is unsampled, so
/// the bucket's exemplar must be the last *sampled* one; `GET /mcp 401` has no sampled record
/// at all, so none of its buckets may carry an exemplar.
const SPECS: &[Spec] = &[
    Spec {
        service: "mcp-api",
        method: "POST",
        endpoint: "/mcp",
        status: Some(200),
        duration_ms: 3,
        token: Some(TokenResult::Success),
        streamed: false,
        sampled: &[true, false, true, false, true, true, false],
    },
    Spec {
        service: "mcp-api",
        method: "GET",
        endpoint: "/mcp",
        status: Some(401),
        duration_ms: 30,
        token: Some(TokenResult::Missing),
        streamed: false,
        sampled: &[false, false, false],
    },
    Spec {
        service: "mcp-api",
        method: "POST",
        endpoint: "/register",
        status: Some(201),
        duration_ms: 300,
        token: None,
        streamed: false,
        sampled: &[true, true],
    },
    Spec {
        service: "mcp-api",
        method: "POST",
        endpoint: "/register",
        status: Some(400),
        duration_ms: 2_000,
        token: None,
        streamed: false,
        sampled: &[true],
    },
    Spec {
        service: "other-api",
        method: "POST",
        endpoint: "/mcp",
        status: Some(503),
        duration_ms: 7_000,
        token: Some(TokenResult::Failure),
        streamed: false,
        sampled: &[true, false],
    },
    Spec {
        service: "other-api",
        method: "GET",
        endpoint: "/mcp",
        status: None,
        duration_ms: 20_000,
        token: None,
        streamed: true,
        sampled: &[true],
    },
];

fn records() -> Vec<Record> {
    let start = testkit::now_unix_ns() - 30_000_000_000;
    let mut out = Vec::new();
    for (s, spec) in SPECS.iter().enumerate() {
        for (i, &sampled) in spec.sampled.iter().enumerate() {
            let n = out.len() as u64;
            out.push(Record {
                request_id: format!("prom-{s}-{i}"),
                trace_id: format!("{:016x}{:016x}", start, 0x1000 + n),
                span_id: format!("{:016x}", 0x2000 + n),
                sampled,
                start_unix_ns: start + n * 1_000_000,
                duration_ns: spec.duration_ms * 1_000_000,
                streamed: spec.streamed,
                method: spec.method.into(),
                endpoint: spec.endpoint.into(),
                status: spec.status,
                service: spec.service.into(),
                token: spec.token,
                host_kind: HostKind::Envoy,
                // Every `POST /mcp` is a call of the tool `search`.
                mcp: (spec.method == "POST" && spec.endpoint == "/mcp").then(|| McpFacts {
                    kind: Some(MessageKind::Request),
                    method: Some("tools/call".into()),
                    tool: Some("search".into()),
                    ..McpFacts::default()
                }),
                ..Record::example(n + 1)
            });
        }
    }
    out
}

fn start_collector(dir: &Path) -> (ChildGuard, u16) {
    let port = testkit::free_port();
    let mut command = Command::new(common::collector_binary());
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--access-log", "off"])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let collector = ChildGuard::spawn(&mut command, dir.join("collector.log"));
    testkit::wait_for_port("the collector", port, Duration::from_secs(30));
    (collector, port)
}

fn start_prometheus(dir: &Path, target_port: u16) -> (ChildGuard, u16) {
    let prometheus = testkit::tool("GATETRACE_PROMETHEUS");
    let promtool = testkit::tool("GATETRACE_PROMTOOL");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: gatetrace\n    static_configs:\n      \
             - targets: ['127.0.0.1:{target_port}']\n"
        ),
    )
    .unwrap();
    let check = Command::new(&promtool)
        .args(["check", "config"])
        .arg(&config)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", promtool.display()));
    assert!(
        check.status.success(),
        "promtool rejected the config:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let port = testkit::free_port();
    let child = ChildGuard::spawn(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=exemplar-storage"),
        dir.join("prometheus.log"),
    );
    testkit::wait_for_port("Prometheus", port, Duration::from_secs(60));
    (child, port)
}

/// The `data` of a successful Prometheus API answer.
fn prom_data(mut body: Value) -> Option<Value> {
    (body["status"] == "success").then(|| body["data"].take())
}

/// Instant-vector query result as `labels -> value`, the labels as `k=v` joined by commas.
fn vector(http: &Http, prom: u16, query: &str, labels: &[&str]) -> BTreeMap<String, f64> {
    let url = format!(
        "http://127.0.0.1:{prom}/api/v1/query?query={}",
        encode(query)
    );
    let data = http
        .get(&url)
        .and_then(|(_, body)| prom_data(body))
        .unwrap_or(Value::Null);
    data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|sample| {
            let key = labels
                .iter()
                .map(|l| format!("{l}={}", sample["metric"][*l].as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",");
            let value: f64 = sample["value"][1].as_str().unwrap().parse().unwrap();
            (key, value)
        })
        .collect()
}

/// Percent-encodes a PromQL query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
#[ignore = "e2e: needs prometheus"]
fn prometheus_scrapes_exact_counts_and_sampled_exemplars() {
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new();
    let (collector, port) = start_collector(dir.path());

    let sent = records();
    let body: String = sent
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    let answer = http.post_ndjson(&format!("http://127.0.0.1:{port}/v1/records"), body);
    assert_eq!(answer["accepted"], sent.len(), "{answer}");

    let (prometheus, prom) = start_prometheus(dir.path(), port);
    let route = ["service", "method", "endpoint", "status"];
    let mut expected = BTreeMap::new();
    for spec in SPECS {
        let status = spec.status.map_or("unknown".to_owned(), |s| s.to_string());
        let key = format!(
            "service={},method={},endpoint={},status={status}",
            spec.service, spec.method, spec.endpoint
        );
        *expected.entry(key).or_insert(0.0) += spec.sampled.len() as f64;
    }
    let mut requests = BTreeMap::new();
    testkit::wait_until(
        "Prometheus to scrape the collector",
        Duration::from_secs(60),
        || {
            requests = vector(&http, prom, "mcp_oauth_requests_total", &route);
            requests.values().sum::<f64>() >= sent.len() as f64
        },
    );
    requests.retain(|_, v| *v > 0.0);
    assert_eq!(
        requests,
        expected,
        "collector log:\n{}\nprometheus log:\n{}",
        collector.log(),
        prometheus.log()
    );

    let tokens = vector(
        &http,
        prom,
        "mcp_oauth_token_validations_total",
        &["result"],
    );
    assert_eq!(tokens.get("result=success"), Some(&7.0), "{tokens:?}");
    assert_eq!(tokens.get("result=failure"), Some(&2.0), "{tokens:?}");
    assert_eq!(tokens.get("result=missing"), Some(&3.0), "{tokens:?}");
    assert_eq!(tokens.get("result=forbidden").copied().unwrap_or(0.0), 0.0);
    let registrations = vector(&http, prom, "mcp_oauth_client_registrations_total", &[]);
    assert_eq!(registrations.values().copied().collect::<Vec<_>>(), [2.0]);
    // The stream is counted above but kept out of the latency histogram.
    let counts = vector(
        &http,
        prom,
        "mcp_oauth_request_duration_seconds_count",
        &["service", "method", "endpoint"],
    );
    assert_eq!(
        counts.values().sum::<f64>(),
        (sent.len() - 1) as f64,
        "{counts:?}"
    );
    assert!(!counts.contains_key("service=other-api,method=GET,endpoint=/mcp"));
    // The MCP operations histogram: the tool calls, the 503s with their status as error_type
    // (Prometheus stores an empty label as absent).
    let operations = vector(
        &http,
        prom,
        "mcp_server_operation_duration_seconds_count",
        &[
            "service",
            "mcp_method_name",
            "gen_ai_tool_name",
            "error_type",
        ],
    );
    let expected_operations: BTreeMap<String, f64> = [
        (
            "service=mcp-api,mcp_method_name=tools/call,gen_ai_tool_name=search,error_type=",
            7.0,
        ),
        (
            "service=other-api,mcp_method_name=tools/call,gen_ai_tool_name=search,error_type=503",
            2.0,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(operations, expected_operations);

    // Exemplars: the trace ids must be among the sampled, non-stream records' ids.
    let sampled: HashSet<&str> = sent
        .iter()
        .filter(|r| r.sampled && !r.streamed)
        .map(|r| r.trace_id.as_str())
        .collect();
    let now = testkit::now_unix_ns() / 1_000_000_000;
    let url = format!(
        "http://127.0.0.1:{prom}/api/v1/query_exemplars?query={}&start={}&end={}",
        encode("mcp_oauth_request_duration_seconds_bucket"),
        now - 3600,
        now + 3600
    );
    let mut series = Vec::new();
    testkit::wait_until("exemplars in Prometheus", Duration::from_secs(30), || {
        series = http
            .get(&url)
            .and_then(|(_, body)| prom_data(body))
            .and_then(|d| d.as_array().cloned())
            .unwrap_or_default();
        series.len() >= 4
    });
    let mut seen = BTreeMap::new();
    for s in &series {
        let labels = &s["seriesLabels"];
        let key = format!(
            "{} {} {} le={}",
            labels["service"].as_str().unwrap(),
            labels["method"].as_str().unwrap(),
            labels["endpoint"].as_str().unwrap(),
            labels["le"].as_str().unwrap()
        );
        for exemplar in s["exemplars"].as_array().unwrap() {
            let trace_id = exemplar["labels"]["trace_id"].as_str().unwrap();
            assert!(
                sampled.contains(trace_id),
                "exemplar {trace_id} on {key} is not a sampled record's"
            );
            seen.entry(key.clone())
                .or_insert_with(Vec::new)
                .push(trace_id.to_owned());
        }
    }
    // One exemplar per bucket: the latest sampled record of each label set; none for the set
    // without sampled records.
    let latest_sampled = |spec: &Spec| -> String {
        let group: Vec<&Record> = sent
            .iter()
            .filter(|r| {
                r.service == spec.service
                    && r.method == spec.method
                    && r.endpoint == spec.endpoint
                    && r.status == spec.status
            })
            .collect();
        group
            .iter()
            .rev()
            .find(|r| r.sampled)
            .unwrap()
            .trace_id
            .clone()
    };
    let expected_exemplars: BTreeMap<String, Vec<String>> = [
        ("mcp-api POST /mcp le=0.005", &SPECS[0]),
        ("mcp-api POST /register le=0.5", &SPECS[2]),
        ("mcp-api POST /register le=2.5", &SPECS[3]),
        ("other-api POST /mcp le=10.0", &SPECS[4]),
    ]
    .into_iter()
    .map(|(key, spec)| (key.to_owned(), vec![latest_sampled(spec)]))
    .collect();
    assert_eq!(seen, expected_exemplars);

    // The MCP histogram's exemplars: the same latest sampled tool calls, in the semconv buckets.
    let url = format!(
        "http://127.0.0.1:{prom}/api/v1/query_exemplars?query={}&start={}&end={}",
        encode("mcp_server_operation_duration_seconds_bucket"),
        now - 3600,
        now + 3600
    );
    let mut series = Vec::new();
    testkit::wait_until(
        "MCP exemplars in Prometheus",
        Duration::from_secs(30),
        || {
            series = http
                .get(&url)
                .and_then(|(_, body)| prom_data(body))
                .and_then(|d| d.as_array().cloned())
                .unwrap_or_default();
            series.len() >= 2
        },
    );
    let seen: BTreeMap<String, Vec<String>> = series
        .iter()
        .map(|s| {
            let labels = &s["seriesLabels"];
            let key = format!(
                "{} le={}",
                labels["service"].as_str().unwrap(),
                labels["le"].as_str().unwrap()
            );
            let ids = s["exemplars"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["labels"]["trace_id"].as_str().unwrap().to_owned())
                .collect();
            (key, ids)
        })
        .collect();
    let expected: BTreeMap<String, Vec<String>> = [
        ("mcp-api le=0.01", &SPECS[0]),
        ("other-api le=10.0", &SPECS[4]),
    ]
    .into_iter()
    .map(|(key, spec)| (key.to_owned(), vec![latest_sampled(spec)]))
    .collect();
    assert_eq!(seen, expected);
}
