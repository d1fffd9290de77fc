//! MCP records through `app()` (tower `oneshot`) to `/metrics`: the MCP operations histogram
//! line by line, the tool-name cap, statuses implied or missing, sessions ended before their
//! stream's record arrives, and a restart from the checkpoint.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gatetrace_collector::metrics::names::{
    self, DEFAULT_NAMESPACE, MCP_OPERATION_DURATION_SECONDS as OPS,
};
use gatetrace_collector::{Collector, Config};
use gatetrace_core::mcp::facts::McpFacts;
use gatetrace_core::mcp::policy::UnknownStatus;
use gatetrace_core::mcp::{MessageKind, OutcomeKind, StatusSource};
use gatetrace_core::record::{HostKind, Record, Session, SessionEvent};
use gatetrace_core::testing::ndjson_line;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// The semconv bucket bounds as the exposition writes them.
const BOUNDS: [&str; 14] = [
    "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1.0", "2.0", "5.0", "10.0", "30.0", "60.0",
    "120.0", "300.0",
];
const VERSION: &str = "2025-06-18";

/// `POST /mcp` of service `mcp` on Envoy, started now, `ms` long, with `facts`.
fn record(n: u64, ms: u64, facts: McpFacts) -> Record {
    Record {
        start_unix_ns: testkit::now_unix_ns(),
        duration_ns: ms * 1_000_000,
        method: "POST".into(),
        host_kind: HostKind::Envoy,
        mcp: Some(facts),
        ..Record::example(n)
    }
}

/// Facts of a request for `method` under protocol [`VERSION`].
fn request(method: &'static str) -> McpFacts {
    McpFacts {
        kind: Some(MessageKind::Request),
        method: Some(Cow::Borrowed(method)),
        protocol_version: Some(Cow::Borrowed(VERSION)),
        ..McpFacts::default()
    }
}

fn tool_call(tool: &str, outcome: Option<OutcomeKind>) -> McpFacts {
    McpFacts {
        tool: Some(tool.into()),
        outcome,
        ..request("tools/call")
    }
}

async fn collector(args: &[&str]) -> Collector {
    let mut all = vec!["gatetrace-collector", "--access-log", "off"];
    all.extend_from_slice(args);
    Collector::start(Config::load(all).unwrap(), None)
        .await
        .unwrap()
}

async fn ingest(c: &Collector, records: &[Record]) {
    let body: String = records.iter().map(ndjson_line).collect();
    let request = Request::post("/v1/records").body(Body::from(body)).unwrap();
    let response = c.app().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn metrics(c: &Collector) -> String {
    let request = Request::get("/metrics").body(Body::empty()).unwrap();
    let response = c.app().oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// The value of the sample `series` (exact labels), exemplar stripped.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.split_whitespace().next().unwrap().parse().unwrap())
}

/// The histogram's label set (without `le`).
fn labels(
    method: &str,
    tool: &str,
    prompt: &str,
    error: &str,
    code: &str,
    version: &str,
) -> String {
    format!(
        "service=\"mcp\",mcp_method_name=\"{method}\",gen_ai_tool_name=\"{tool}\",\
         gen_ai_prompt_name=\"{prompt}\",error_type=\"{error}\",rpc_response_status_code=\"{code}\",\
         mcp_protocol_version=\"{version}\""
    )
}

/// The bucket lines of the series with `labels`, exemplars stripped.
fn bucket_lines(text: &str, labels: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{OPS}_bucket{{{labels},le=")))
        .map(|l| l.split(" # ").next().unwrap().to_owned())
        .collect()
}

/// The 15 bucket lines `labels` should have with these cumulative `counts`.
fn expected_buckets(labels: &str, counts: [u64; 15]) -> Vec<String> {
    BOUNDS
        .iter()
        .copied()
        .chain(["+Inf"])
        .zip(counts)
        .map(|(le, n)| format!("{OPS}_bucket{{{labels},le=\"{le}\"}} {n}"))
        .collect()
}

#[tokio::test]
async fn mcp_operations_get_semconv_buckets_labels_and_sampled_exemplars() {
    let c = collector(&[]).await;
    let sampled = Record {
        sampled: true,
        ..record(1, 30, tool_call("search", Some(OutcomeKind::Ok)))
    };
    let trace = sampled.trace_id.clone();
    let error = McpFacts {
        error_code: Some(-32602),
        ..tool_call("search", Some(OutcomeKind::Error))
    };
    let prompt = McpFacts {
        prompt: Some("summary".into()),
        ..request("prompts/get")
    };
    let server_error = Record {
        status: Some(502),
        ..record(6, 1500, request("initialize"))
    };
    let response = McpFacts {
        kind: Some(MessageKind::Response),
        ..McpFacts::default()
    };
    let batch = McpFacts {
        kind: Some(MessageKind::Batch),
        ..McpFacts::default()
    };
    let notification = McpFacts {
        kind: Some(MessageKind::Notification),
        ..request("notifications/initialized")
    };
    ingest(
        &c,
        &[
            sampled,
            record(2, 400, tool_call("search", Some(OutcomeKind::Ok))),
            record(3, 5, error),
            record(4, 70, tool_call("fail", Some(OutcomeKind::ToolError))),
            record(5, 3, prompt),
            server_error,
            record(7, 2, response),
            record(8, 2, batch),
            record(9, 1, notification),
            // Not an MCP route: no facts at all.
            Record::example(10),
        ],
    )
    .await;
    let text = metrics(&c).await;
    assert!(
        text.contains(&format!("# TYPE {OPS} histogram\n")),
        "{text}"
    );

    let search = labels("tools/call", "search", "", "", "", VERSION);
    assert_eq!(
        bucket_lines(&text, &search),
        expected_buckets(&search, [0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    );
    assert_eq!(
        sample(&text, &format!("{OPS}_count{{{search}}}")),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, &format!("{OPS}_sum{{{search}}}")),
        Some(0.03 + 0.4)
    );
    assert!(sample(&text, &format!("{OPS}_created{{{search}}}")).unwrap() > 1.7e9);
    // The sampled call's exemplar, on its bucket only.
    let exemplars: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{OPS}_bucket{{{search},")) && l.contains(" # "))
        .collect();
    assert_eq!(exemplars.len(), 1, "{exemplars:?}");
    assert!(
        exemplars[0].contains("le=\"0.05\"} 1 # {trace_id=\"")
            && exemplars[0].contains(&format!("\"{trace}\"}} 0.03 ")),
        "{}",
        exemplars[0]
    );

    for (series, count) in [
        (
            labels("tools/call", "search", "", "-32602", "-32602", VERSION),
            1.0,
        ),
        (
            labels("tools/call", "fail", "", "tool_error", "", VERSION),
            1.0,
        ),
        (labels("prompts/get", "", "summary", "", "", VERSION), 1.0),
        // An HTTP 5xx without an outcome: the status, semconv's HTTP fallback.
        (labels("initialize", "", "", "502", "", VERSION), 1.0),
        (
            labels("notifications/initialized", "", "", "", "", VERSION),
            1.0,
        ),
    ] {
        assert_eq!(
            sample(&text, &format!("{OPS}_count{{{series}}}")),
            Some(count),
            "{series}\n{text}"
        );
    }
    let slow = labels("initialize", "", "", "502", "", VERSION);
    assert_eq!(
        bucket_lines(&text, &slow),
        expected_buckets(&slow, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    );
    // Client responses, batches and non-MCP records are no operations: 7 in all.
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with(&format!("{OPS}_count{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, 7.0, "{text}");
    // No request id, session id or URI in any label.
    assert!(!text.contains("req-"), "{text}");
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn tool_names_past_the_cap_are_other_and_counted_and_the_series_cap_holds() {
    let c = collector(&["--max-tools-per-service", "2", "--series-cap", "3"]).await;
    let calls: Vec<Record> = ["a", "b", "c", "a", "d"]
        .into_iter()
        .enumerate()
        .map(|(i, tool)| record(i as u64 + 1, 10, tool_call(tool, None)))
        .collect();
    ingest(&c, &calls).await;
    let text = metrics(&c).await;
    let count = |tool: &str| {
        sample(
            &text,
            &format!(
                "{OPS}_count{{{}}}",
                labels("tools/call", tool, "", "", "", VERSION)
            ),
        )
    };
    assert_eq!(count("a"), Some(2.0));
    assert_eq!(count("b"), Some(1.0));
    assert_eq!(count("_OTHER"), Some(2.0), "{text}");
    assert_eq!(count("c"), None);
    assert_eq!(
        sample(
            &text,
            &format!("{}{{kind=\"tool\"}}", names::MCP_NAMES_OVERFLOW_TOTAL)
        ),
        Some(2.0)
    );
    // A fourth label set meets the global cap (3): it goes to the `other` series.
    ingest(&c, &[record(9, 10, request("ping"))]).await;
    let text = metrics(&c).await;
    let other = names::MCP_OPERATION_LABELS
        .map(|label| format!("{label}=\"other\""))
        .join(",");
    assert_eq!(
        sample(&text, &format!("{OPS}_count{{{other}}}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("{}{{metric=\"{OPS}\"}}", names::SERIES_OVERFLOW_TOTAL)
        ),
        Some(1.0)
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn implied_statuses_count_as_statuses_and_missing_ones_by_reason() {
    let c = collector(&[]).await;
    let implied = Record {
        status: Some(200),
        status_source: Some(StatusSource::Implied),
        streamed: true,
        ..record(1, 10, request("tools/call"))
    };
    let unknown = Record {
        status: None,
        status_unknown: Some(UnknownStatus::NotEventStream),
        ..record(2, 10, request("tools/call"))
    };
    let unreported = Record {
        status: None,
        ..Record::example(3)
    };
    ingest(&c, &[implied, unknown, unreported]).await;
    let text = metrics(&c).await;
    let requests = |method: &str, status: &str| {
        sample(
            &text,
            &format!(
                "{DEFAULT_NAMESPACE}_{}{{service=\"mcp\",method=\"{method}\",endpoint=\"/mcp\",status=\"{status}\"}}",
                names::REQUESTS_TOTAL
            ),
        )
    };
    assert_eq!(requests("POST", "200"), Some(1.0), "{text}");
    assert_eq!(requests("POST", "unknown"), Some(1.0));
    let without = |reason: &str| {
        sample(
            &text,
            &format!(
                "{}{{service=\"mcp\",reason=\"{reason}\"}}",
                names::REQUESTS_WITHOUT_STATUS_TOTAL
            ),
        )
    };
    assert_eq!(without("not_event_stream"), Some(1.0), "{text}");
    assert_eq!(without("unreported"), Some(1.0));
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stream_recorded_after_its_sessions_delete_leaves_it_ended() {
    let c = collector(&[]).await;
    let with = |n: u64, id: &str, event: SessionEvent| Record {
        session: Some(Session {
            id: id.into(),
            event,
        }),
        ..record(n, 10, request("tools/call"))
    };
    // initialize starts s1, DELETE ends it, then the record of s1's stream arrives.
    ingest(
        &c,
        &[
            with(1, "s1", SessionEvent::Start),
            with(2, "s1", SessionEvent::End),
            with(3, "s1", SessionEvent::Seen),
        ],
    )
    .await;
    let gauge = format!(
        "{DEFAULT_NAMESPACE}_{}{{service=\"mcp\"}}",
        names::ACTIVE_SESSIONS
    );
    let text = metrics(&c).await;
    assert_eq!(sample(&text, &gauge), Some(0.0), "{text}");
    assert_eq!(sample(&text, names::ENDED_SESSION_RECORDS_TOTAL), Some(1.0));
    // A genuinely new session still counts.
    ingest(&c, &[with(4, "s2", SessionEvent::Start)]).await;
    assert_eq!(sample(&metrics(&c).await, &gauge), Some(1.0));
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restart_continues_the_histogram_names_and_tombstones_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cp.json");
    let path = path.to_str().unwrap();
    let args = ["--checkpoint", path, "--max-tools-per-service", "1"];
    let search = labels("tools/call", "search", "", "", "", VERSION);
    let other = labels("tools/call", "_OTHER", "", "", "", VERSION);
    let ended = |n: u64, event: SessionEvent| Record {
        session: Some(Session {
            id: "s1".into(),
            event,
        }),
        ..record(n, 10, request("ping"))
    };

    let c = collector(&args).await;
    ingest(
        &c,
        &[
            record(1, 30, tool_call("search", None)),
            ended(2, SessionEvent::End),
        ],
    )
    .await;
    let created = sample(&metrics(&c).await, &format!("{OPS}_created{{{search}}}")).unwrap();
    c.shutdown().await.unwrap();

    let c = collector(&args).await;
    ingest(
        &c,
        &[
            record(3, 30, tool_call("search", None)),
            record(4, 30, tool_call("other-tool", None)),
            ended(5, SessionEvent::Seen),
        ],
    )
    .await;
    let text = metrics(&c).await;
    assert_eq!(
        sample(&text, &format!("{OPS}_count{{{search}}}")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("{OPS}_created{{{search}}}")),
        Some(created)
    );
    // The admitted names were kept: the new tool is still past the cap of 1.
    assert_eq!(sample(&text, &format!("{OPS}_count{{{other}}}")), Some(1.0));
    // The tombstone too: s1 stays ended.
    assert_eq!(sample(&text, names::ENDED_SESSION_RECORDS_TOTAL), Some(1.0));
    c.shutdown().await.unwrap();
}
