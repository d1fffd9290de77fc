//! `app()` driven with tower `oneshot`: every endpoint, every error answer, and what the
//! records turn into on `/metrics`.
// size: one concern, the router's answers through `oneshot`; its tests share the record
// builders and scrape helpers at the top, and split files would only repeat them.

use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use gatetrace_collector::metrics::names::{
    self, CLIENT_REGISTRATIONS_TOTAL, DEFAULT_NAMESPACE, REQUEST_DURATION_SECONDS, REQUESTS_TOTAL,
    STREAM_DURATION_SECONDS, TOKEN_VALIDATIONS_TOTAL,
};
use gatetrace_collector::{Collector, Config, SpanSink, SpanSinkStats};
use gatetrace_core::record::{HostKind, Record, Session, SessionEvent, TokenResult};
use gatetrace_core::testing::ndjson_line;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// A valid record of `POST /mcp` on Envoy, started now.
fn record(n: u64, status: Option<u16>, sampled: bool) -> Record {
    Record {
        sampled,
        start_unix_ns: testkit::now_unix_ns(),
        duration_ns: 30_000_000,
        method: "POST".into(),
        status,
        host_kind: HostKind::Envoy,
        ..Record::example(n)
    }
}

/// The NDJSON line of [`record`].
fn line(n: u64, status: Option<u16>, sampled: bool) -> String {
    ndjson_line(&record(n, status, sampled))
}

async fn collector(args: &[&str]) -> Collector {
    collector_with_sink(args, None).await
}

async fn collector_with_sink(args: &[&str], sink: Option<Arc<dyn SpanSink>>) -> Collector {
    let mut all = vec!["gatetrace-collector", "--access-log", "off"];
    all.extend_from_slice(args);
    Collector::start(Config::load(all).unwrap(), sink)
        .await
        .unwrap()
}

fn post() -> axum::http::request::Builder {
    Request::post("/v1/records")
}

async fn send(
    c: &Collector,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = c.app().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

async fn ingest(c: &Collector, body: String) -> (StatusCode, serde_json::Value) {
    let request = post().body(Body::from(body)).unwrap();
    let (status, _, text) = send(c, request).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

async fn metrics(c: &Collector) -> String {
    let (status, headers, text) =
        send(c, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

/// `<default namespace>_<name>`: a request metric as the collector names it by default.
fn ns(name: &str) -> String {
    format!("{DEFAULT_NAMESPACE}_{name}")
}

/// The value of the sample line starting with `prefix ` (exact series).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.split_whitespace().next().unwrap().parse().unwrap())
}

#[tokio::test]
async fn records_become_request_metrics_with_sampled_exemplars_only() {
    let c = collector(&["--business-counters", "orders,refunds"]).await;
    let mut body = String::new();
    body += &line(1, Some(200), true);
    body += &line(2, Some(200), false);
    body += &line(3, None, false);
    body += &ndjson_line(&Record {
        endpoint: "/register".into(),
        token: Some(TokenResult::Success),
        counters: vec!["orders".into(), "nope".into()],
        ..record(4, Some(201), false)
    });
    body += &ndjson_line(&Record {
        streamed: true,
        session: Some(Session {
            id: "s1".into(),
            event: SessionEvent::Start,
        }),
        ..record(5, None, false)
    });
    let (status, answer) = ingest(&c, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        serde_json::json!({"accepted":5,"rejected":0,"errors":[]})
    );

    let text = metrics(&c).await;
    let req = |status: &str| {
        sample(
            &text,
            &format!(
                "{}{{service=\"mcp\",method=\"POST\",endpoint=\"/mcp\",status=\"{status}\"}}",
                ns(REQUESTS_TOTAL)
            ),
        )
    };
    assert_eq!(req("200"), Some(2.0));
    assert_eq!(
        req("unknown"),
        Some(2.0),
        "no status (incl. the stream) → unknown"
    );
    // The latency histogram holds the 3 non-stream /mcp records, the stream is apart.
    let route = "{service=\"mcp\",method=\"POST\",endpoint=\"/mcp\"}";
    let count = format!("{}_count{route}", ns(REQUEST_DURATION_SECONDS));
    assert_eq!(sample(&text, &count), Some(3.0));
    let stream = format!("{}_count{route}", ns(STREAM_DURATION_SECONDS));
    assert_eq!(sample(&text, &stream), Some(1.0));
    // Every per-route series says when it was created (Unix seconds).
    for metric in [STREAM_DURATION_SECONDS, REQUEST_DURATION_SECONDS] {
        let created = sample(&text, &format!("{}_created{route}", ns(metric)));
        assert!(created.is_some_and(|t| t > 1.7e9), "{metric}: {text}");
    }
    // Exemplars: only the sampled record's trace id.
    let exemplars: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" # {trace_id="))
        .collect();
    assert_eq!(exemplars.len(), 1, "{exemplars:?}");
    assert!(exemplars[0].contains(&format!("{:032x}", 1)));
    assert!(exemplars[0].starts_with(&format!("{}_bucket{{", ns(REQUEST_DURATION_SECONDS))));
    assert_eq!(
        sample(
            &text,
            &format!("{}{{result=\"success\"}}", ns(TOKEN_VALIDATIONS_TOTAL))
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("{}{{result=\"failure\"}}", ns(TOKEN_VALIDATIONS_TOTAL))
        ),
        Some(0.0)
    );
    assert_eq!(sample(&text, &ns(CLIENT_REGISTRATIONS_TOTAL)), Some(1.0));
    assert_eq!(sample(&text, "mcp_oauth_orders_total"), Some(1.0));
    assert_eq!(
        sample(&text, "mcp_oauth_refunds_total"),
        Some(0.0),
        "registered at 0"
    );
    assert_eq!(sample(&text, names::UNKNOWN_COUNTER_NAMES_TOTAL), Some(1.0));
    assert_eq!(
        sample(
            &text,
            &format!(
                "{}{{reason=\"unknown_counter\"}}",
                names::RECORDS_REJECTED_TOTAL
            )
        ),
        None,
        "an unknown counter name is no rejected line"
    );
    assert_eq!(
        sample(
            &text,
            &format!("{}{{service=\"mcp\"}}", ns(names::ACTIVE_SESSIONS))
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("{}{{transport=\"http\"}}", names::RECORDS_RECEIVED_TOTAL)
        ),
        Some(5.0)
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn partial_success_lists_bad_lines_and_counts_each_reason() {
    let c = collector(&[]).await;
    let body = format!(
        "{}not json\n{}{}",
        line(1, Some(200), false),
        line(2, Some(999), false),
        line(3, Some(200), false).replace("\"v\":1", "\"v\":7"),
    );
    let (status, answer) = ingest(&c, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["rejected"], 3);
    assert_eq!(
        answer["errors"],
        serde_json::json!([
            {"line":2,"reason":"invalid_json"},
            {"line":3,"reason":"invalid_status"},
            {"line":4,"reason":"schema_version"}
        ])
    );
    let text = metrics(&c).await;
    for reason in ["invalid_json", "invalid_status", "schema_version"] {
        assert_eq!(
            sample(
                &text,
                &format!("{}{{reason=\"{reason}\"}}", names::RECORDS_REJECTED_TOTAL)
            ),
            Some(1.0),
            "{reason}"
        );
    }
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn bearer_token_is_required_when_configured() {
    let c = collector(&["--ingest-token", "t0ken"]).await;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic t0ken"),
        Some("Bearer t0ken2"),
    ] {
        let mut request = post().header("content-type", "application/x-ndjson");
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let (status, headers, _) = send(
            &c,
            request.body(Body::from(line(1, Some(200), false))).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    let request = post()
        .header(header::AUTHORIZATION, "Bearer t0ken")
        .body(Body::from(line(1, Some(200), false)))
        .unwrap();
    let (status, _, _) = send(&c, request).await;
    assert_eq!(status, StatusCode::OK);
    // Nothing from the refused requests was counted.
    let text = metrics(&c).await;
    assert_eq!(
        sample(
            &text,
            &format!("{}{{transport=\"http\"}}", names::RECORDS_RECEIVED_TOTAL)
        ),
        Some(1.0)
    );
    c.shutdown().await.unwrap();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn gzip_bodies_are_accepted_and_limits_apply_after_decompression() {
    let c = collector(&["--body-limit", "4096"]).await;
    let body = line(1, Some(200), false) + &line(2, Some(200), false);
    let request = post()
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gzip(body.as_bytes())))
        .unwrap();
    let (status, _, text) = send(&c, request).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("\"accepted\":2"), "{text}");

    // Too large as sent.
    let big = line(3, Some(200), false).repeat(40);
    let request = post().body(Body::from(big.clone())).unwrap();
    assert_eq!(send(&c, request).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // Small compressed, too large decompressed (a gzip bomb).
    let request = post()
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gzip(big.as_bytes())))
        .unwrap();
    assert_eq!(send(&c, request).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // Corrupt gzip.
    let request = post()
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(&b"not gzip at all"[..]))
        .unwrap();
    assert_eq!(send(&c, request).await.0, StatusCode::BAD_REQUEST);
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_batch_already_taken_is_acknowledged_but_not_counted_again() {
    let c = collector(&[]).await;
    let batch = |seq: &str| {
        post()
            .header("x-gatetrace-source", "envoy-7f3a")
            .header("x-gatetrace-sequence", seq)
            .body(Body::from(
                line(1, Some(200), false) + &line(2, Some(200), false),
            ))
            .unwrap()
    };
    let (status, _, first) = send(&c, batch("41")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!first.contains("duplicate"), "{first}");
    let (status, _, again) = send(&c, batch("41")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(again.contains("\"duplicate\":true"), "{again}");
    let (status, _, next) = send(&c, batch("42")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!next.contains("duplicate"), "{next}");

    let text = metrics(&c).await;
    let series = format!(
        "{}{{service=\"mcp\",method=\"POST\",endpoint=\"/mcp\",status=\"200\"}}",
        ns(REQUESTS_TOTAL)
    );
    assert_eq!(sample(&text, &series), Some(4.0));
    assert_eq!(sample(&text, names::DUPLICATE_BATCHES_TOTAL), Some(1.0));

    // Malformed batch headers are a client error.
    for (source, seq) in [("envoy", "x"), ("", "1")] {
        let request = post()
            .header("x-gatetrace-source", source)
            .header("x-gatetrace-sequence", seq)
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&c, request).await.0, StatusCode::BAD_REQUEST);
    }
    let request = post()
        .header("x-gatetrace-sequence", "1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&c, request).await.0, StatusCode::BAD_REQUEST);
    c.shutdown().await.unwrap();
}

/// A span sink whose `offer` blocks while `closed` is set, stalling the aggregator.
#[derive(Default)]
struct GateSink {
    closed: AtomicBool,
    entered: AtomicBool,
    offered: AtomicU64,
}

impl SpanSink for GateSink {
    fn offer(&self, record: &Record) {
        assert!(record.sampled, "only sampled records become spans");
        self.entered.store(true, Ordering::SeqCst);
        while self.closed.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.offered.fetch_add(1, Ordering::SeqCst);
    }
    fn stats(&self) -> SpanSinkStats {
        SpanSinkStats {
            exported: self.offered.load(Ordering::SeqCst),
            healthy: true,
            ..SpanSinkStats::default()
        }
    }
    fn shutdown(&self, _: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

async fn wait_for(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ready().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after_and_ready_says_so() {
    let sink = Arc::new(GateSink::default());
    let c = collector_with_sink(&["--queue-capacity", "1"], Some(sink.clone())).await;
    let (status, _, _) = send(&c, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);

    sink.closed.store(true, Ordering::SeqCst);
    let sampled = || post().body(Body::from(line(9, Some(200), true))).unwrap();
    let unsampled = || post().body(Body::from(line(8, Some(200), false))).unwrap();
    // First batch: the aggregator takes it and blocks in the sink.
    let first = tokio::spawn(c.app().oneshot(sampled()));
    wait_for("the aggregator to block", async || {
        sink.entered.load(Ordering::SeqCst)
    })
    .await;
    // Second batch fills the one-slot queue.
    let second = tokio::spawn(c.app().oneshot(unsampled()));
    wait_for("the queue to fill", async || {
        send(&c, Request::get("/ready").body(Body::empty()).unwrap())
            .await
            .0
            == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let (status, _, text) = send(&c, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert!(text.contains("queue full"), "{status} {text}");
    let (status, headers, _) = send(&c, unsampled()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "1");

    sink.closed.store(false, Ordering::SeqCst);
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(second.await.unwrap().unwrap().status(), StatusCode::OK);
    let text = metrics(&c).await;
    assert_eq!(
        sample(
            &text,
            &format!("{}{{reason=\"queue_full\"}}", names::RECORDS_DROPPED_TOTAL)
        ),
        Some(1.0)
    );
    assert_eq!(sample(&text, names::SPANS_EXPORTED_TOTAL), Some(1.0));
    assert_eq!(
        sink.offered.load(Ordering::SeqCst),
        1,
        "unsampled records make no span"
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_is_alive_and_ready_needs_a_readable_spool() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    let c = collector(&[
        "--spool-dir",
        missing.to_str().unwrap(),
        "--spool-poll-ms",
        "10",
    ])
    .await;
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let (status, _, text) = send(&c, get("/health")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "ok\n"));
    wait_for("the tailer to report the missing spool", async || {
        let text = metrics(&c).await;
        sample(
            &text,
            &format!("{}{{kind=\"listing\"}}", names::SPOOL_ERRORS_TOTAL),
        ) >= Some(1.0)
    })
    .await;
    let (status, _, text) = send(&c, get("/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(text.contains("spool"), "{text}");
    std::fs::create_dir(&missing).unwrap();
    wait_for("ready once the spool exists", async || {
        send(&c, get("/ready")).await.0 == StatusCode::OK
    })
    .await;
    let (status, _, _) = send(&c, get("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_cardinality_cap_sends_new_series_to_other_and_counts_them() {
    let c = collector(&["--series-cap", "2"]).await;
    let body: String = ["/a", "/b", "/c", "/d"]
        .iter()
        .enumerate()
        .map(|(i, e)| line(i as u64 + 1, Some(200), false).replace("/mcp", e))
        .collect();
    assert_eq!(ingest(&c, body).await.0, StatusCode::OK);
    let text = metrics(&c).await;
    let other = format!(
        "{}{{service=\"other\",method=\"other\",endpoint=\"other\",status=\"other\"}}",
        ns(REQUESTS_TOTAL)
    );
    assert_eq!(sample(&text, &other), Some(2.0));
    assert_eq!(
        sample(
            &text,
            &format!(
                "{}{{metric=\"{REQUESTS_TOTAL}\"}}",
                names::SERIES_OVERFLOW_TOTAL
            )
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("{}{{metric=\"{REQUESTS_TOTAL}\"}}", names::SERIES)
        ),
        Some(3.0)
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn access_lines_go_to_the_configured_file_one_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let config = Config::load([
        "gatetrace-collector",
        "--access-log",
        path.to_str().unwrap(),
    ])
    .unwrap();
    let c = Collector::start(config, None).await.unwrap();
    let body = line(1, Some(200), true) + &line(2, None, false);
    assert_eq!(ingest(&c, body).await.0, StatusCode::OK);
    c.shutdown().await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["request_id"], "req-1");
    assert_eq!(lines[0]["trace_id"], format!("{:032x}", 1));
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["endpoint"], "/mcp");
    assert_eq!(lines[1]["status"], serde_json::Value::Null);
}

/// A span sink whose backend is down.
struct DownSink;

impl SpanSink for DownSink {
    fn offer(&self, _: &Record) {}
    fn stats(&self) -> SpanSinkStats {
        SpanSinkStats {
            failed: 3,
            healthy: false,
            ..SpanSinkStats::default()
        }
    }
    fn shutdown(&self, _: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

#[tokio::test]
async fn exporter_trouble_shows_in_metrics_never_in_ready() {
    let c = collector_with_sink(&[], Some(Arc::new(DownSink))).await;
    let (status, _, _) = send(&c, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let text = metrics(&c).await;
    assert_eq!(sample(&text, names::EXPORTER_HEALTHY), Some(0.0));
    assert_eq!(sample(&text, names::SPANS_FAILED_TOTAL), Some(3.0));
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn spawn_serves_on_a_listener_until_shutdown() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = collector(&[]).await.spawn(listener).unwrap();
    let addr = running.addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    running.shutdown().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening"
    );
}

#[tokio::test]
async fn idle_series_expire_make_room_under_the_cap_and_come_back_fresh() {
    let c = collector(&[
        "--series-cap",
        "2",
        "--series-idle-secs",
        "1",
        "--checkpoint-interval-ms",
        "50",
    ])
    .await;
    let route = |e: &str| line(1, Some(200), false).replace("/mcp", e);
    let body = route("/a") + &route("/b") + &route("/c");
    assert_eq!(ingest(&c, body).await.0, StatusCode::OK);
    let labels =
        |e: &str| format!("{{service=\"mcp\",method=\"POST\",endpoint=\"{e}\",status=\"200\"}}");
    let text = metrics(&c).await;
    let overflow = format!(
        "{}{{metric=\"{REQUESTS_TOTAL}\"}}",
        names::SERIES_OVERFLOW_TOTAL
    );
    assert_eq!(sample(&text, &overflow), Some(1.0), "/c went to `other`");
    let first_created = sample(
        &text,
        &format!("mcp_oauth_requests_created{}", labels("/a")),
    )
    .expect("a _created sample");
    assert!(first_created > 1.7e9, "{first_created}");

    let expired = format!(
        "{}{{metric=\"{REQUESTS_TOTAL}\"}}",
        names::SERIES_EXPIRED_TOTAL
    );
    wait_for("the idle series to expire", async || {
        sample(&metrics(&c).await, &expired) == Some(3.0)
    })
    .await;
    let text = metrics(&c).await;
    assert_eq!(
        sample(&text, &format!("{}{}", ns(REQUESTS_TOTAL), labels("/a"))),
        None
    );
    assert_eq!(
        sample(
            &text,
            &format!("{}{{metric=\"{REQUESTS_TOTAL}\"}}", names::SERIES)
        ),
        Some(0.0)
    );

    // Room again: /c gets its own series, /a comes back with a fresh `_created`.
    assert_eq!(
        ingest(&c, route("/c") + &route("/a")).await.0,
        StatusCode::OK
    );
    let text = metrics(&c).await;
    assert_eq!(
        sample(&text, &format!("{}{}", ns(REQUESTS_TOTAL), labels("/c"))),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &format!("{}{}", ns(REQUESTS_TOTAL), labels("/a"))),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &overflow),
        Some(1.0),
        "nothing new overflowed"
    );
    let again = sample(
        &text,
        &format!("mcp_oauth_requests_created{}", labels("/a")),
    )
    .unwrap();
    assert!(again > first_created + 0.9, "{again} vs {first_created}");
    let latency_created = format!(
        "{}_created{{service=\"mcp\",method=\"POST\",endpoint=\"/a\"}}",
        ns(REQUEST_DURATION_SECONDS)
    );
    assert!(sample(&text, &latency_created).unwrap() >= again);
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn active_sessions_is_zero_for_every_known_service_not_absent() {
    let c = collector(&["--services", "billing,mcp"]).await;
    let gauge = |service: &str| format!("{}{{service=\"{service}\"}}", ns(names::ACTIVE_SESSIONS));
    let text = metrics(&c).await;
    assert_eq!(sample(&text, &gauge("billing")), Some(0.0), "{text}");
    assert_eq!(sample(&text, &gauge("mcp")), Some(0.0));
    // A service seen in records (sessionless traffic) shows 0 too; one with a session 1.
    let sessionless = ndjson_line(&Record {
        service: "tools".into(),
        ..record(1, Some(200), false)
    });
    let with_session = ndjson_line(&Record {
        session: Some(Session {
            id: "s1".into(),
            event: SessionEvent::Start,
        }),
        ..record(2, Some(200), false)
    });
    assert_eq!(
        ingest(&c, sessionless + &with_session).await.0,
        StatusCode::OK
    );
    let text = metrics(&c).await;
    assert_eq!(sample(&text, &gauge("tools")), Some(0.0), "{text}");
    assert_eq!(sample(&text, &gauge("mcp")), Some(1.0));
    assert_eq!(sample(&text, &gauge("billing")), Some(0.0));
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_truncated_gzip_body_is_a_400_naming_it_and_counts_nothing() {
    let c = collector(&[]).await;
    let whole = gzip((line(1, Some(200), false) + &line(2, Some(200), false)).as_bytes());
    let request = post()
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(whole[..whole.len() / 2].to_vec()))
        .unwrap();
    let (status, _, text) = send(&c, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("gzip"), "{text}");
    let text = metrics(&c).await;
    assert_eq!(
        sample(
            &text,
            &format!("{}{{transport=\"http\"}}", names::RECORDS_RECEIVED_TOTAL)
        ),
        Some(0.0)
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_overlong_line_in_a_body_is_rejected_and_its_neighbours_kept() {
    let c = collector(&[]).await;
    // A valid record with an unknown field that takes it past the core's 4096-byte limit.
    let long =
        line(2, Some(200), false).replacen('{', &format!("{{\"x\":\"{}\",", "y".repeat(5000)), 1);
    let body = line(1, Some(200), false) + &long + &line(3, Some(200), false);
    let (status, answer) = ingest(&c, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["accepted"], 2);
    assert_eq!(
        answer["errors"],
        serde_json::json!([{"line": 2, "reason": "line_too_long"}])
    );
    let text = metrics(&c).await;
    assert_eq!(
        sample(
            &text,
            &format!(
                "{}{{reason=\"line_too_long\"}}",
                names::RECORDS_REJECTED_TOTAL
            )
        ),
        Some(1.0)
    );
    c.shutdown().await.unwrap();
}
