//! The overview page `/` and its data `/api/overview`, driven with tower `oneshot`: the page is
//! one file that loads nothing from elsewhere; the data follows the records, agrees with
//! `/metrics`, links sampled traces when told how, and holds nothing secret. (The page itself
//! runs in real Chromium in `tests/e2e/tests/overview_page.rs`.)

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use gatetrace_collector::metrics::names::{DEFAULT_NAMESPACE, REQUESTS_TOTAL};
use gatetrace_collector::{Collector, Config};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

/// The MCP operations histogram; the page lists tools from it once the collector serves it.
const MCP_HISTOGRAM: &str = "mcp_server_operation_duration_seconds";
/// Values that must never reach the page: a session id, a user agent, a client address.
const SECRETS: [&str; 3] = ["secret-session", "SecretAgent", "203.0.113.9"];

async fn collector(args: &[&str]) -> Collector {
    let mut all = vec!["gatetrace-collector", "--access-log", "off"];
    all.extend_from_slice(args);
    Collector::start(Config::load(all).unwrap(), None)
        .await
        .unwrap()
}

async fn get(c: &Collector, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = c.app().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

/// One record line: `n` numbers its ids; every fifth record is sampled.
fn record(n: u64, route: (&str, &str, &str), status: Option<u16>, ms: u64, extra: &str) -> String {
    let (service, method, endpoint) = route;
    let status = status.map_or(String::new(), |s| format!(",\"status\":{s}"));
    format!(
        "{{\"v\":1,\"request_id\":\"req-{n}\",\"trace_id\":\"{n:032x}\",\"span_id\":\"{n:016x}\",\
         \"sampled\":{sampled},\"start_unix_ns\":{start},\"duration_ns\":{duration},\
         \"method\":\"{method}\",\"endpoint\":\"{endpoint}\"{status},\"service\":\"{service}\",\
         \"user_agent\":\"SecretAgent/1.0\",\"client_addr\":\"203.0.113.9\",\
         \"host_kind\":\"envoy\"{extra}}}\n",
        sampled = n.is_multiple_of(5),
        start = testkit::now_unix_ns(),
        duration = ms * 1_000_000,
    )
}

/// The traffic of the tests: 20 token calls (2 refused), 3 registrations, 10 MCP tool calls
/// (one 500) in 2 sessions, one SSE stream. Returns the body and the sampled trace ids, in order.
fn traffic() -> (String, Vec<String>) {
    let mut body = String::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    for i in 0..20 {
        let (status, token) = if i < 2 {
            (401, "failure")
        } else {
            (200, "success")
        };
        body += &record(
            next(),
            ("auth", "POST", "/token"),
            Some(status),
            40,
            &format!(",\"token\":\"{token}\""),
        );
    }
    for _ in 0..3 {
        body += &record(next(), ("auth", "POST", "/register"), Some(201), 8, "");
    }
    for i in 0..10 {
        let (status, outcome) = if i == 9 {
            (500, "tool_error")
        } else {
            (200, "ok")
        };
        body += &record(
            next(),
            ("mcp", "POST", "/mcp"),
            Some(status),
            120,
            &format!(
                ",\"session\":{{\"id\":\"secret-session-{}\",\"event\":\"seen\"}},\
                 \"mcp\":{{\"source\":\"body\",\"kind\":\"request\",\"method\":\"tools/call\",\
                 \"tool\":\"search\",\"outcome\":\"{outcome}\"}}",
                i % 2
            ),
        );
    }
    body += &record(
        next(),
        ("mcp", "GET", "/mcp"),
        None,
        900,
        ",\"streamed\":true,\"session\":{\"id\":\"secret-session-0\",\"event\":\"seen\"}",
    );
    let sampled = (1..=n)
        .filter(|n| n.is_multiple_of(5))
        .map(|n| format!("{n:032x}"));
    (body, sampled.collect())
}

/// The sum of the `/metrics` samples of family `name` whose labels include all of `labels`.
fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|line| {
            let after_labels = line.rsplit_once('}').map_or(line, |(_, rest)| rest);
            let value = after_labels.split_whitespace().next().unwrap();
            value.parse::<f64>().unwrap()
        })
        .sum()
}

fn route<'a>(overview: &'a Value, service: &str, method: &str, endpoint: &str) -> &'a Value {
    overview["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == service && r["method"] == method && r["endpoint"] == endpoint)
        .unwrap_or_else(|| panic!("no route {service} {method} {endpoint} in {overview}"))
}

fn service<'a>(overview: &'a Value, name: &str) -> &'a Value {
    overview["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {overview}"))
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test]
async fn the_page_is_one_file_that_loads_nothing_from_elsewhere() {
    let c = collector(&[]).await;
    let (status, headers, html) = get(&c, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    assert!(html.contains("<script>") && html.contains("<style>"));
    assert!(html.contains("fetch(\"api/overview\""), "reads its data");
    for external in [" src=", "rel=\"stylesheet\"", "@import", "url("] {
        assert!(!html.contains(external), "the page loads {external}");
    }
    // The only absolute URL is the SVG namespace (an identifier, never fetched).
    assert_eq!(
        html.matches("://").count(),
        html.matches("http://www.w3.org/2000/svg").count()
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_overview_follows_the_records_and_agrees_with_metrics() {
    let template = "http://jaeger.test:16686/trace/{trace_id}";
    let c = collector(&["--trace-url-template", template]).await;
    let (body, sampled) = traffic();
    let request = Request::post("/v1/records").body(Body::from(body)).unwrap();
    let answer = c.app().oneshot(request).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);

    let (status, headers, text) = get(&c, "/api/overview").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let overview: Value = serde_json::from_str(&text).unwrap();
    let (_, _, metrics) = get(&c, "/metrics").await;

    // Every request came after the first reading (taken at start): the window holds them all.
    let window = overview["window_secs"].as_f64().expect("a window");
    assert!(window > 0.0 && window < 60.0, "{window}");
    let requests = format!("{DEFAULT_NAMESPACE}_{REQUESTS_TOTAL}");
    for (service, method, endpoint, total, client_errors, errors, p95) in [
        // 40 ms, all in (0.025, 0.05]: p95 at 19/20 of the bucket.
        ("auth", "POST", "/token", 20.0, 0.1, 0.0, Some(0.04875)),
        (
            "auth",
            "POST",
            "/register",
            3.0,
            0.0,
            0.0,
            Some(0.005 + 0.005 * 0.95),
        ),
        // 120 ms, all in (0.1, 0.25].
        (
            "mcp",
            "POST",
            "/mcp",
            10.0,
            0.0,
            0.1,
            Some(0.1 + 0.15 * 0.95),
        ),
        // A stream only: counted, not in the latency histogram.
        ("mcp", "GET", "/mcp", 1.0, 0.0, 0.0, None),
    ] {
        let row = route(&overview, service, method, endpoint);
        let labels = [
            ("service", service),
            ("method", method),
            ("endpoint", endpoint),
        ];
        assert_eq!(metric_sum(&metrics, &requests, &labels), total);
        assert!(close(&row["requests"], total), "{row}");
        assert!(close(&row["rate"], total / window), "{row}");
        assert!(close(&row["client_error_ratio"], client_errors), "{row}");
        assert!(close(&row["error_ratio"], errors), "{row}");
        match p95 {
            Some(p95) => assert!(close(&row["p95_seconds"], p95), "{row}"),
            None => assert!(row["p95_seconds"].is_null(), "{row}"),
        }
    }
    assert_eq!(overview["routes"][0]["endpoint"], "/token", "busiest first");
    let auth = service(&overview, "auth");
    assert!(close(&auth["requests"], 23.0) && close(&auth["error_ratio"], 0.0));
    let mcp = service(&overview, "mcp");
    assert!(close(&mcp["requests"], 11.0) && close(&mcp["error_ratio"], 1.0 / 11.0));
    assert!(close(&mcp["rate"], 11.0 / window), "{mcp}");
    assert!(!mcp["history"].as_array().unwrap().is_empty());
    assert_eq!(overview["sessions"]["mcp"], 2.0);
    assert_eq!(overview["tokens"]["failure"], 2.0);
    assert_eq!(overview["tokens"]["success"], 18.0);
    assert_eq!(overview["registrations"], 3.0);
    assert_eq!(overview["health"]["records_received"], 34.0);
    assert_eq!(overview["health"]["exporter_healthy"], true);

    // Tools: from the MCP histogram when /metrics has it, a stated absence otherwise.
    if metrics.contains(MCP_HISTOGRAM) {
        let tools = overview["tools"].as_array().expect("tools listed");
        let search = tools.iter().find(|t| t["tool"] == "search").unwrap();
        let count = format!("{MCP_HISTOGRAM}_count");
        let calls = metric_sum(&metrics, &count, &[("gen_ai_tool_name", "search")]);
        assert!(calls > 0.0 && close(&search["calls"], calls), "{search}");
    } else {
        assert!(overview["tools"].is_null(), "{overview}");
    }

    // The sampled records, newest first, each linked.
    let traces = overview["traces"].as_array().unwrap();
    let listed: Vec<&str> = traces
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = sampled.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    for trace in traces {
        let id = trace["trace_id"].as_str().unwrap();
        assert_eq!(trace["url"], format!("http://jaeger.test:16686/trace/{id}"));
    }
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} reached the page: {text}");
    }
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_a_template_traces_have_ids_and_no_links() {
    let c = collector(&[]).await;
    let (body, sampled) = traffic();
    let request = Request::post("/v1/records").body(Body::from(body)).unwrap();
    assert_eq!(
        c.app().oneshot(request).await.unwrap().status(),
        StatusCode::OK
    );
    let (_, _, text) = get(&c, "/api/overview").await;
    let overview: Value = serde_json::from_str(&text).unwrap();
    let first = &overview["traces"][0];
    assert_eq!(first["trace_id"], sampled.last().unwrap().as_str());
    assert!(first["url"].is_null(), "{first}");
    c.shutdown().await.unwrap();
}

#[test]
fn a_bad_trace_url_template_stops_the_start_with_its_name() {
    for bad in [
        "jaeger:16686/trace/{trace_id}",
        "http://jaeger:16686/trace/",
        "http://user:pw@jaeger/{trace_id}",
    ] {
        let err = Config::load(["c", "--trace-url-template", bad]).unwrap_err();
        assert!(
            err.to_string().contains("--trace-url-template"),
            "{bad}: {err}"
        );
    }
}
