//! One OTLP span from one sampled record: the record's own trace, span and parent ids, its
//! wall-clock start and end, kind SERVER, and the OpenTelemetry HTTP semantic-convention
//! attributes.

use std::time::{Duration, SystemTime};

use gatetrace_core::record::Record;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

/// The span for one sampled record, or `None` when its ids are not valid W3C ids.
pub(super) fn span_data(record: &Record, scope: &InstrumentationScope) -> Option<SpanData> {
    let trace_id = parse_id(&record.trace_id, 32, TraceId::from_hex, &TraceId::INVALID)?;
    let span_id = parse_id(&record.span_id, 16, SpanId::from_hex, &SpanId::INVALID)?;
    let parent_span_id = match &record.parent_span_id {
        Some(parent) => parse_id(parent, 16, SpanId::from_hex, &SpanId::INVALID)?,
        None => SpanId::INVALID,
    };
    let start_time = SystemTime::UNIX_EPOCH + Duration::from_nanos(record.start_unix_ns);
    let end_time = start_time + Duration::from_nanos(record.duration_ns);

    let mut attributes = Vec::with_capacity(12);
    attributes.push(KeyValue::new("http.request.method", record.method.clone()));
    attributes.push(KeyValue::new("http.route", record.endpoint.clone()));
    if let Some(status) = record.status {
        attributes.push(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
    }
    if let Some(host) = &record.host {
        let (address, port) = split_host_port(host);
        attributes.push(KeyValue::new("server.address", address.to_owned()));
        if let Some(port) = port {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
    }
    if let Some(client) = &record.client_addr {
        attributes.push(KeyValue::new("client.address", client.clone()));
    }
    if let Some(agent) = &record.user_agent {
        attributes.push(KeyValue::new("user_agent.original", agent.clone()));
    }
    if let Some(bytes) = record.request_bytes {
        attributes.push(KeyValue::new(
            "http.request.body.size",
            saturating_i64(bytes),
        ));
    }
    if let Some(bytes) = record.response_bytes {
        attributes.push(KeyValue::new(
            "http.response.body.size",
            saturating_i64(bytes),
        ));
    }
    attributes.push(KeyValue::new(
        "gatetrace.request_id",
        record.request_id.clone(),
    ));
    attributes.push(KeyValue::new("gatetrace.streamed", record.streamed));
    let server_error = record.status.is_some_and(|s| s >= 500);
    if server_error {
        // Semconv: a server span's `error.type` is the status code when it is 5xx.
        attributes.push(KeyValue::new(
            "error.type",
            record.status.unwrap_or_default().to_string(),
        ));
    }

    // Semconv span name `{method} {route}`, with `HTTP` for a method outside the known set.
    let method = if record.method == "_OTHER" {
        "HTTP"
    } else {
        &record.method
    };
    Some(SpanData {
        span_context: SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id,
        parent_span_is_remote: record.parent_span_id.is_some(),
        span_kind: SpanKind::Server,
        name: format!("{method} {}", record.endpoint).into(),
        start_time,
        end_time,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: if server_error {
            Status::error("")
        } else {
            Status::Unset
        },
        instrumentation_scope: scope.clone(),
    })
}

fn parse_id<T: PartialEq>(
    hex: &str,
    len: usize,
    parse: impl Fn(&str) -> Result<T, std::num::ParseIntError>,
    invalid: &T,
) -> Option<T> {
    if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    parse(hex).ok().filter(|id| id != invalid)
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Splits a Host header value into address and port (`[::1]:8080`, `example.com:443`).
fn split_host_port(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((address, tail)) => (address, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((address, port)) if !address.contains(':') => match port.parse() {
            Ok(port) => (address, Some(port)),
            Err(_) => (host, None),
        },
        _ => (host, None),
    }
}
