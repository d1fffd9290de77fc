//! One OTLP protobuf span straight from one sampled record (no SDK span in between): the
//! record's own trace, span and parent ids, its wall-clock start and end, kind SERVER, and the
//! OpenTelemetry HTTP semantic-convention attributes.

use gatetrace_core::record::Record;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, SpanFlags, Status};

use super::attribute::{attribute, int, string};
use super::mcp_span::mcp_span;

/// W3C trace flag `sampled`: every exported span was sampled by the plugin.
const TRACE_FLAG_SAMPLED: u32 = 0x01;
/// Attributes of a span at most: 12 HTTP ones, plus 8 MCP ones on MCP routes.
const HTTP_ATTRIBUTES: usize = 12;
const MCP_ATTRIBUTES: usize = 8;

/// The span for one sampled record, or `None` when its ids are not valid W3C ids.
pub(super) fn proto_span(record: &Record) -> Option<Span> {
    let trace_id = parse_id::<16>(&record.trace_id)?;
    let span_id = parse_id::<8>(&record.span_id)?;
    let parent_span_id = match &record.parent_span_id {
        Some(parent) => parse_id::<8>(parent)?.to_vec(),
        None => Vec::new(),
    };
    // The parent, when there is one, is the incoming `traceparent`'s span: remote.
    let mut flags = TRACE_FLAG_SAMPLED | SpanFlags::ContextHasIsRemoteMask as u32;
    if record.parent_span_id.is_some() {
        flags |= SpanFlags::ContextIsRemoteMask as u32;
    }

    let mcp_room = if record.mcp.is_some() || record.session.is_some() {
        MCP_ATTRIBUTES
    } else {
        0
    };
    let mut attributes = Vec::with_capacity(HTTP_ATTRIBUTES + mcp_room);
    attributes.push(string("http.request.method", &record.method));
    attributes.push(string("http.route", &record.endpoint));
    if let Some(status) = record.status {
        attributes.push(int("http.response.status_code", i64::from(status)));
    }
    if let Some(host) = &record.host {
        let (address, port) = split_host_port(host);
        attributes.push(string("server.address", address));
        if let Some(port) = port {
            attributes.push(int("server.port", i64::from(port)));
        }
    }
    if let Some(client) = &record.client_addr {
        attributes.push(string("client.address", client));
    }
    if let Some(agent) = &record.user_agent {
        attributes.push(string("user_agent.original", agent));
    }
    if let Some(bytes) = record.request_bytes {
        attributes.push(int("http.request.body.size", saturating_i64(bytes)));
    }
    if let Some(bytes) = record.response_bytes {
        attributes.push(int("http.response.body.size", saturating_i64(bytes)));
    }
    attributes.push(string("gatetrace.request_id", &record.request_id));
    attributes.push(attribute(
        "gatetrace.streamed",
        Value::BoolValue(record.streamed),
    ));
    let mcp = mcp_span(record, &mut attributes);
    // Semconv: `error.type` is the JSON-RPC error code or `tool_error` on an MCP operation,
    // else the status code when it is 5xx; the span's status is ERROR with it.
    let error_type = mcp
        .error_type
        .or_else(|| record.status.filter(|s| *s >= 500).map(|s| s.to_string()));
    if let Some(error_type) = &error_type {
        attributes.push(string("error.type", error_type));
    }

    // Semconv span name: `{mcp.method.name} {tool or prompt}` for an MCP operation, else
    // `{method} {route}` with `HTTP` for a method outside the known set.
    let name = mcp.name.unwrap_or_else(|| {
        let method = if record.method == "_OTHER" {
            "HTTP"
        } else {
            &record.method
        };
        format!("{method} {}", record.endpoint)
    });
    Some(Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        trace_state: String::new(),
        parent_span_id,
        flags,
        name,
        kind: SpanKind::Server as i32,
        start_time_unix_nano: record.start_unix_ns,
        end_time_unix_nano: record.start_unix_ns.saturating_add(record.duration_ns),
        attributes,
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status: Some(Status {
            message: String::new(),
            code: if error_type.is_some() {
                StatusCode::Error as i32
            } else {
                StatusCode::Unset as i32
            },
        }),
    })
}

/// The bytes of a W3C id of `N` bytes written as `2 N` hex digits, `None` when malformed or
/// all zero (the invalid id).
fn parse_id<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut id = [0u8; N];
    for (byte, pair) in id.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = (high << 4 | low) as u8;
    }
    id.iter().any(|b| *b != 0).then_some(id)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_splits_into_address_and_port() {
        assert_eq!(split_host_port("example.com"), ("example.com", None));
        assert_eq!(
            split_host_port("example.com:8080"),
            ("example.com", Some(8080))
        );
        assert_eq!(
            split_host_port("[2001:db8::1]:443"),
            ("2001:db8::1", Some(443))
        );
        assert_eq!(split_host_port("[2001:db8::1]"), ("2001:db8::1", None));
        assert_eq!(split_host_port("2001:db8::1"), ("2001:db8::1", None));
        assert_eq!(split_host_port("host:notaport"), ("host:notaport", None));
    }

    #[test]
    fn ids_are_w3c_hex_and_never_all_zero() {
        assert_eq!(
            parse_id::<8>("00f067aa0ba902b7"),
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert_eq!(
            parse_id::<8>("00F067AA0BA902B7").map(|id| id[1]),
            Some(0xf0)
        );
        for bad in [
            "0000000000000000",
            "+0f067aa0ba902b7",
            "00f067aa0ba902b",
            "zz",
        ] {
            assert_eq!(parse_id::<8>(bad), None, "{bad}");
        }
    }
}
