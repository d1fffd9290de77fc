//! The OTLP span sink against mock receivers on loopback (`common/otlp_receiver.rs`), over
//! gRPC and HTTP/protobuf: every span field, batching, bounded retries, a receiver that is
//! down, and shutdown. `tests/e2e/tests/otlp_e2e.rs` checks the same against a real backend (Phoenix).

mod common {
    pub mod otlp_receiver;
}

use std::collections::HashMap;
use std::time::Duration;

use common::otlp_receiver::{ReceiverLog, grpc_receiver, http_receiver};
use gatetrace_collector::sinks::otlp::OtlpSink;
use gatetrace_collector::sinks::otlp::config::{OtlpCompression, OtlpConfig, OtlpProtocol};
use gatetrace_collector::sinks::span_sink::{SpanSink as _, SpanSinkStats};
use gatetrace_core::record::Record;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as ProtoKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

fn config(endpoint: &str, protocol: OtlpProtocol) -> OtlpConfig {
    OtlpConfig {
        endpoint: Some(endpoint.to_owned()),
        protocol,
        batch_delay_ms: 20,
        timeout_ms: 5_000,
        ..OtlpConfig::default()
    }
}

fn attrs(span: &ProtoSpan) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => format!("int:{i}"),
                Some(AnyValue::BoolValue(b)) => format!("bool:{b}"),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Polls `ready` every 10 ms for at most `limit`.
async fn eventually(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Offers a root span, a continued (child) span, a 5xx, a stream without status, an
/// `_OTHER` method and an unsampled record; checks every field the receiver got.
async fn exact_spans(protocol: OtlpProtocol, base: &str, seen: &ReceiverLog) {
    let mut cfg = config(base, protocol);
    cfg.headers = Some("x-api-key=s%3Dcret%2C1".into());
    let sink = OtlpSink::start(&cfg).unwrap().unwrap();

    let root = Record::example_span(1);
    let mut child = Record::example_span(2);
    child.parent_span_id = Some("b7ad6b7169203331".into());
    child.service = "other-api".into();
    let mut failed = Record::example_span(3);
    failed.status = Some(503);
    failed.method = "GET".into();
    failed.endpoint = "/register/{client_id}".into();
    let mut stream = Record::example_span(4);
    stream.status = None;
    stream.streamed = true;
    stream.host = Some("[::1]:9000".into());
    let mut other = Record::example_span(5);
    other.method = "_OTHER".into();
    other.host = None;
    let mut unsampled = Record::example_span(6);
    unsampled.sampled = false;
    for r in [&root, &child, &failed, &stream, &other, &unsampled] {
        sink.offer(r);
    }
    sink.shutdown(Duration::from_secs(10)).await;
    assert_eq!(
        sink.stats(),
        SpanSinkStats {
            exported: 5,
            failed: 0,
            dropped: 0,
            queued: 0,
            healthy: true
        }
    );

    let seen = seen.lock().unwrap();
    assert!(
        seen.api_keys
            .iter()
            .all(|k| k.as_deref() == Some("s=cret,1")),
        "{:?}",
        seen.api_keys
    );
    let by_id: HashMap<String, (String, ProtoSpan)> = seen
        .spans
        .iter()
        .map(|(service, span)| (hex(&span.span_id), (service.clone(), span.clone())))
        .collect();
    assert_eq!(
        by_id.len(),
        5,
        "one span per sampled record, none for the unsampled one"
    );
    assert!(!by_id.contains_key(&unsampled.span_id));

    for r in [&root, &child, &failed, &stream, &other] {
        let (service, span) = &by_id[&r.span_id];
        assert_eq!(service, &r.service);
        assert_eq!(hex(&span.trace_id), r.trace_id);
        assert_eq!(span.start_time_unix_nano, r.start_unix_ns);
        assert_eq!(span.end_time_unix_nano, r.start_unix_ns + r.duration_ns);
        assert_eq!(span.kind(), ProtoKind::Server);
        let a = attrs(span);
        assert_eq!(a["http.request.method"], r.method);
        assert_eq!(a["http.route"], r.endpoint);
        assert_eq!(a["gatetrace.request_id"], r.request_id);
        assert_eq!(a["gatetrace.streamed"], format!("bool:{}", r.streamed));
        assert_eq!(a["client.address"], "10.1.2.3");
        assert_eq!(a["user_agent.original"], "test-agent/1");
        assert_eq!(a["http.request.body.size"], "int:120");
        assert_eq!(a["http.response.body.size"], "int:3400");
    }

    let (_, span) = &by_id[&root.span_id];
    assert_eq!(span.name, "POST /mcp");
    assert!(
        span.parent_span_id.is_empty(),
        "a new trace's span is a root"
    );
    let a = attrs(span);
    assert_eq!(a["http.response.status_code"], "int:200");
    assert_eq!(a["server.address"], "mcp.example.com");
    assert_eq!(a["server.port"], "int:8443");
    assert!(!a.contains_key("error.type"));
    assert_eq!(
        span.status.as_ref().map_or(StatusCode::Unset, |s| s.code()),
        StatusCode::Unset
    );

    let (_, span) = &by_id[&child.span_id];
    assert_eq!(hex(&span.parent_span_id), "b7ad6b7169203331");

    let (_, span) = &by_id[&failed.span_id];
    assert_eq!(span.name, "GET /register/{client_id}");
    assert_eq!(span.status.as_ref().unwrap().code(), StatusCode::Error);
    assert_eq!(attrs(span)["error.type"], "503");

    let (_, span) = &by_id[&stream.span_id];
    let a = attrs(span);
    assert!(!a.contains_key("http.response.status_code"));
    assert_eq!(a["server.address"], "::1");
    assert_eq!(a["server.port"], "int:9000");

    let (_, span) = &by_id[&other.span_id];
    assert_eq!(span.name, "HTTP /mcp");
    assert!(!attrs(span).contains_key("server.address"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_spans_carry_the_records_ids_times_and_attributes() {
    let seen = ReceiverLog::default();
    let url = grpc_receiver(&seen).await;
    exact_spans(OtlpProtocol::Grpc, &url, &seen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_spans_carry_the_records_ids_times_and_attributes() {
    let seen = ReceiverLog::default();
    let url = http_receiver(&seen).await;
    exact_spans(OtlpProtocol::HttpProtobuf, &url, &seen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_carry_the_same_spans() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let seen = ReceiverLog::default();
        let url = match protocol {
            OtlpProtocol::Grpc => grpc_receiver(&seen).await,
            OtlpProtocol::HttpProtobuf => http_receiver(&seen).await,
        };
        let mut cfg = config(&url, protocol);
        cfg.compression = OtlpCompression::Gzip;
        let sink = OtlpSink::start(&cfg).unwrap().unwrap();
        sink.offer(&Record::example_span(1));
        sink.offer(&Record::example_span(2));
        sink.shutdown(Duration::from_secs(10)).await;
        assert_eq!(sink.stats().exported, 2, "{protocol:?}");
        let seen = seen.lock().unwrap();
        let ids: Vec<String> = seen.spans.iter().map(|(_, s)| hex(&s.span_id)).collect();
        assert_eq!(
            ids,
            [
                Record::example_span(1).span_id,
                Record::example_span(2).span_id
            ],
            "{protocol:?}"
        );
    }
}

/// MCP records: the span is named after the MCP method and target and carries the MCP
/// semantic-convention attributes; the session id is hashed; nothing else from the exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_spans_carry_the_mcp_attributes_and_a_hashed_session() {
    use gatetrace_core::classify::hash_session_id;
    use gatetrace_core::mcp::facts::McpFacts;
    use gatetrace_core::mcp::{FactSource, IdKind, MessageKind, OutcomeKind, method};
    use gatetrace_core::record::{Session, SessionEvent};

    let seen = ReceiverLog::default();
    let url = grpc_receiver(&seen).await;
    let sink = OtlpSink::start(&config(&url, OtlpProtocol::Grpc))
        .unwrap()
        .unwrap();
    let facts = |method: &'static str| McpFacts {
        source: Some(FactSource::Body),
        kind: Some(MessageKind::Request),
        method: Some(method.into()),
        request_id_kind: Some(IdKind::Number),
        request_id: Some("7".into()),
        protocol_version: Some("2025-06-18".into()),
        outcome: Some(OutcomeKind::Ok),
        ..McpFacts::default()
    };
    let mut tool = Record::example_span(1);
    tool.mcp = Some(McpFacts {
        tool: Some("get_weather".into()),
        outcome: Some(OutcomeKind::ToolError),
        ..facts(method::TOOLS_CALL)
    });
    let hashed = hash_session_id(b"raw-session-secret");
    tool.session = Some(Session {
        id: hashed.clone(),
        event: SessionEvent::Seen,
    });
    let mut prompt = Record::example_span(2);
    prompt.mcp = Some(McpFacts {
        prompt: Some("summarize".into()),
        outcome: Some(OutcomeKind::Error),
        error_code: Some(-32602),
        ..facts(method::PROMPTS_GET)
    });
    // A record written with `sessionId: raw`: the span still gets the hash.
    prompt.session = Some(Session {
        id: "raw-session-secret".into(),
        event: SessionEvent::Seen,
    });
    let mut list = Record::example_span(3);
    list.mcp = Some(facts(method::TOOLS_LIST));
    list.status = Some(503);
    for r in [&tool, &prompt, &list] {
        sink.offer(r);
    }
    sink.shutdown(Duration::from_secs(10)).await;
    assert_eq!(sink.stats().exported, 3);

    let seen = seen.lock().unwrap();
    let by_id: HashMap<String, &ProtoSpan> = seen
        .spans
        .iter()
        .map(|(_, span)| (hex(&span.span_id), span))
        .collect();

    let span = by_id[&tool.span_id];
    assert_eq!(span.name, "tools/call get_weather");
    assert_eq!(span.kind(), ProtoKind::Server);
    let a = attrs(span);
    assert_eq!(a["mcp.method.name"], "tools/call");
    assert_eq!(a["gen_ai.tool.name"], "get_weather");
    assert_eq!(a["gen_ai.operation.name"], "execute_tool");
    assert_eq!(a["jsonrpc.request.id"], "7");
    assert_eq!(a["mcp.protocol.version"], "2025-06-18");
    assert_eq!(a["mcp.session.id"], hashed);
    assert_eq!(a["error.type"], "tool_error");
    assert!(!a.contains_key("rpc.response.status_code"));
    assert_eq!(span.status.as_ref().unwrap().code(), StatusCode::Error);
    // The HTTP attributes stay.
    assert_eq!(a["http.route"], "/mcp");

    let span = by_id[&prompt.span_id];
    assert_eq!(span.name, "prompts/get summarize");
    let a = attrs(span);
    assert_eq!(a["gen_ai.prompt.name"], "summarize");
    assert!(!a.contains_key("gen_ai.operation.name"));
    assert_eq!(a["rpc.response.status_code"], "-32602");
    assert_eq!(a["error.type"], "-32602");
    assert_eq!(a["mcp.session.id"], hashed, "a raw session id is hashed");
    assert_eq!(span.status.as_ref().unwrap().code(), StatusCode::Error);

    let span = by_id[&list.span_id];
    assert_eq!(span.name, "tools/list");
    let a = attrs(span);
    assert_eq!(a["error.type"], "503", "no MCP error: the 5xx rule");
    assert!(!a.contains_key("mcp.session.id"));
    assert!(!a.contains_key("gen_ai.tool.name"));

    // No span carries the raw session id anywhere.
    for span in by_id.values() {
        let text = format!("{span:?}");
        assert!(!text.contains("raw-session-secret"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_service_name_replaces_the_records() {
    let seen = ReceiverLog::default();
    let url = grpc_receiver(&seen).await;
    let mut cfg = config(&url, OtlpProtocol::Grpc);
    cfg.service_name = Some("edge-gateway".into());
    let sink = OtlpSink::start(&cfg).unwrap().unwrap();
    let mut other = Record::example_span(2);
    other.service = "other-api".into();
    sink.offer(&Record::example_span(1));
    sink.offer(&other);
    sink.shutdown(Duration::from_secs(10)).await;
    let seen = seen.lock().unwrap();
    let services: Vec<&str> = seen.spans.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(services, ["edge-gateway", "edge-gateway"]);
    assert_eq!(seen.calls, 1, "both spans in one request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_at_most_batch_size_and_every_span_arrives_once() {
    let seen = ReceiverLog::default();
    let url = http_receiver(&seen).await;
    let mut cfg = config(&url, OtlpProtocol::HttpProtobuf);
    cfg.batch_size = 7;
    cfg.batch_delay_ms = 60_000;
    let sink = OtlpSink::start(&cfg).unwrap().unwrap();
    for n in 0..50 {
        sink.offer(&Record::example_span(n));
    }
    // 7 full batches go out without waiting for the (long) delay; the last 1 at shutdown.
    eventually("seven full batches", Duration::from_secs(10), || {
        sink.stats().exported == 49
    })
    .await;
    assert_eq!(seen.lock().unwrap().calls, 7);
    sink.shutdown(Duration::from_secs(10)).await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.calls, 8);
    assert_eq!(seen.sizes, [7, 7, 7, 7, 7, 7, 7, 1]);
    let mut ids: Vec<String> = seen.spans.iter().map(|(_, s)| hex(&s.span_id)).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_the_configured_requests_are_in_flight_at_once() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let seen = ReceiverLog::default();
        seen.lock().unwrap().delay = Duration::from_millis(300);
        let url = match protocol {
            OtlpProtocol::Grpc => grpc_receiver(&seen).await,
            OtlpProtocol::HttpProtobuf => http_receiver(&seen).await,
        };
        let mut cfg = config(&url, protocol);
        cfg.batch_size = 10;
        cfg.max_concurrent_exports = 3;
        let sink = OtlpSink::start(&cfg).unwrap().unwrap();
        for n in 0..100 {
            sink.offer(&Record::example_span(n));
        }
        sink.shutdown(Duration::from_secs(20)).await;
        assert_eq!(sink.stats().exported, 100, "{protocol:?}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.sizes, [10; 10], "{protocol:?}");
        // Ten slow requests: three at once, never more.
        assert_eq!(seen.max_in_flight, 3, "{protocol:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_export_is_retried_a_bounded_number_of_times() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        // Two refusals, three retries allowed: the batch arrives on the third call.
        let seen = ReceiverLog::default();
        seen.lock().unwrap().refuse = 2;
        let url = match protocol {
            OtlpProtocol::Grpc => grpc_receiver(&seen).await,
            OtlpProtocol::HttpProtobuf => http_receiver(&seen).await,
        };
        let sink = OtlpSink::start(&config(&url, protocol)).unwrap().unwrap();
        sink.offer(&Record::example_span(1));
        sink.shutdown(Duration::from_secs(10)).await;
        assert_eq!(sink.stats().exported, 1, "{protocol:?}");
        assert_eq!(seen.lock().unwrap().calls, 3, "{protocol:?}");
        assert_eq!(seen.lock().unwrap().spans.len(), 1, "{protocol:?}");

        // Always refusing, two retries allowed: exactly three calls, then counted failed.
        let seen = ReceiverLog::default();
        seen.lock().unwrap().refuse = usize::MAX;
        let url = match protocol {
            OtlpProtocol::Grpc => grpc_receiver(&seen).await,
            OtlpProtocol::HttpProtobuf => http_receiver(&seen).await,
        };
        let mut cfg = config(&url, protocol);
        cfg.max_retries = 2;
        let sink = OtlpSink::start(&cfg).unwrap().unwrap();
        sink.offer(&Record::example_span(1));
        sink.offer(&Record::example_span(2));
        sink.shutdown(Duration::from_secs(10)).await;
        assert_eq!(
            sink.stats(),
            SpanSinkStats {
                exported: 0,
                failed: 2,
                dropped: 0,
                queued: 0,
                healthy: false
            },
            "{protocol:?}"
        );
        assert_eq!(seen.lock().unwrap().calls, 3, "{protocol:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_keeps_the_queue_bounded_and_counts_every_span() {
    // Nothing listens on this port.
    let port = testkit::free_port();
    let mut cfg = config(&format!("http://127.0.0.1:{port}"), OtlpProtocol::Grpc);
    cfg.queue_capacity = 100;
    cfg.batch_size = 20;
    cfg.timeout_ms = 300;
    cfg.max_retries = 1;
    let sink = OtlpSink::start(&cfg).unwrap().unwrap();
    let offered = 20_000_u64;
    for n in 0..offered {
        sink.offer(&Record::example_span(n));
        let stats = sink.stats();
        // The queue plus the one batch in flight is all the memory spans may take.
        assert!(stats.queued <= 100 + 20, "queued {} at {n}", stats.queued);
    }
    let stats = sink.stats();
    assert!(stats.dropped >= offered - 120, "{stats:?}");
    // Every offered span is accounted for: exported, failed, dropped or still queued.
    eventually(
        "the queue to drain into failures",
        Duration::from_secs(30),
        || sink.stats().queued == 0,
    )
    .await;
    let stats = sink.stats();
    assert_eq!(stats.exported, 0);
    assert!(stats.failed > 0);
    assert_eq!(stats.failed + stats.dropped, offered, "{stats:?}");
    assert!(!stats.healthy);
    // Shutdown is bounded by its timeout even though nothing can be delivered.
    sink.offer(&Record::example_span(1));
    let started = std::time::Instant::now();
    sink.shutdown(Duration::from_millis(500)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    sink.offer(&Record::example_span(2));
    assert_eq!(
        sink.stats().dropped,
        stats.dropped + 1,
        "offers after shutdown are dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_sink_exports_what_is_queued_and_ends_the_task() {
    let seen = ReceiverLog::default();
    let url = grpc_receiver(&seen).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let mut cfg = config(&url, OtlpProtocol::Grpc);
    cfg.batch_delay_ms = 60_000;
    let sink = OtlpSink::start(&cfg).unwrap().unwrap();
    for n in 0..3 {
        sink.offer(&Record::example_span(n));
    }
    drop(sink);
    eventually("the queued spans", Duration::from_secs(10), || {
        seen.lock().unwrap().spans.len() == 3
    })
    .await;
    // The export task (and the connection it owned) are gone, not spinning.
    eventually("the export task to end", Duration::from_secs(10), || {
        metrics.num_alive_tasks() <= baseline
    })
    .await;
}
