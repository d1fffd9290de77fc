//! One export request: a service's spans, each encoded once when offered, framed as an
//! `ExportTraceServiceRequest` (gzipped for HTTP when asked), sent with retries and
//! exponential backoff with jitter, all within the timeout.

use std::hash::{BuildHasher as _, RandomState};
use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use tokio::time::Instant;

use super::attribute::string;
use super::transport::{ExportError, Failure, Transport};

/// First backoff delay; it doubles per retry up to [`MAX_DELAY`] (the OTLP SDKs' values).
const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
/// Random time added to each backoff delay at most.
const MAX_JITTER_MS: u64 = 100;

/// The instrumentation scope of every span.
pub(super) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "gatetrace-collector".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    }
}

/// The key byte of a length-delimited protobuf field numbered 1 or 2. Every field the request
/// frame needs is one of those: `ExportTraceServiceRequest.resource_spans` (1),
/// `ResourceSpans.resource` (1) and `.scope_spans` (2), `ScopeSpans.scope` (1) and `.spans` (2).
const FIELD_1: u8 = 1 << 3 | 2;
const FIELD_2: u8 = 2 << 3 | 2;
/// Room for a typical encoded span (≈ 400 bytes with every HTTP attribute).
const SPAN_BYTES: usize = 512;

/// One span encoded as a `ScopeSpans.spans` entry (key, length, message), ready to be
/// concatenated into a request. Encoding when offered lets the span's ~25 small allocations
/// be freed at once, and the request is framed around the bytes without encoding them again
/// (prost would compute every nested length once per level).
pub(super) fn encode_span(span: &Span) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SPAN_BYTES);
    bytes.push(FIELD_2);
    // Writing into a Vec cannot run out of room.
    let _ = span.encode_length_delimited(&mut bytes);
    bytes
}

/// The request body for one service's encoded spans ([`encode_span`]), gzipped when `gzip`:
/// exactly the bytes prost writes for the `ExportTraceServiceRequest` holding one
/// `ResourceSpans` (resource `service.name`) with one `ScopeSpans`.
pub(super) fn encode(
    service: &str,
    scope: &InstrumentationScope,
    spans: &[Vec<u8>],
    gzip: bool,
) -> Bytes {
    let resource = Resource {
        attributes: vec![string("service.name", service)],
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    };
    let framed = |len: usize| 1 + prost::length_delimiter_len(len) + len;
    let scope_spans_len = framed(scope.encoded_len()) + spans.iter().map(Vec::len).sum::<usize>();
    let resource_spans_len = framed(resource.encoded_len()) + framed(scope_spans_len);
    let mut body = Vec::with_capacity(framed(resource_spans_len));
    // Writing into a Vec cannot run out of room.
    body.push(FIELD_1);
    let _ = prost::encode_length_delimiter(resource_spans_len, &mut body);
    body.push(FIELD_1);
    let _ = resource.encode_length_delimited(&mut body);
    body.push(FIELD_2);
    let _ = prost::encode_length_delimiter(scope_spans_len, &mut body);
    body.push(FIELD_1);
    let _ = scope.encode_length_delimited(&mut body);
    for span in spans {
        body.extend_from_slice(span);
    }
    if !gzip {
        return Bytes::from(body);
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
    let _ = encoder.write_all(&body);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// Sends `body`, retrying a retryable failure at most `max_retries` times with backoff, every
/// attempt and wait within `budget`.
pub(super) async fn send_with_retries(
    transport: &Transport,
    body: Bytes,
    max_retries: u32,
    budget: Duration,
) -> Result<(), ExportError> {
    let deadline = Instant::now() + budget;
    let mut delay = INITIAL_DELAY;
    let mut retries = 0;
    loop {
        let attempt = tokio::time::timeout_at(deadline, transport.send(body.clone())).await;
        let error = match attempt {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error,
            Err(_) => {
                return Err(ExportError {
                    failure: Failure::Final,
                    message: format!("no answer within the {budget:?} export timeout"),
                });
            }
        };
        let Failure::Retryable(server_delay) = error.failure else {
            return Err(error);
        };
        if retries >= max_retries {
            return Err(error);
        }
        retries += 1;
        if let Some(server_delay) = server_delay {
            delay = delay.max(server_delay);
        }
        let jitter = Duration::from_millis(RandomState::new().hash_one(retries) % MAX_JITTER_MS);
        let wait = (delay + jitter).min(MAX_DELAY.max(delay));
        if Instant::now() + wait >= deadline {
            return Err(error);
        }
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(MAX_DELAY.max(delay));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    use super::*;

    fn span(n: u8) -> Span {
        Span {
            trace_id: vec![n; 16],
            span_id: vec![n; 8],
            name: format!("POST /mcp/{n}"),
            start_time_unix_nano: u64::from(n) << 40,
            attributes: (0..n)
                .map(|i| string("k", &"v".repeat(usize::from(i) * 20)))
                .collect(),
            ..Span::default()
        }
    }

    /// The request prost writes for the same spans, the reference the frame must equal.
    fn reference(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string("service.name", service)],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn the_frame_is_the_bytes_prost_writes_for_the_whole_request() {
        // Up to 9 spans with up to 8 attributes: lengths beyond one varint byte at every level.
        for count in [0_u8, 1, 2, 9] {
            let spans: Vec<Span> = (1..=count).map(span).collect();
            let encoded: Vec<Vec<u8>> = spans.iter().map(encode_span).collect();
            let body = encode("mcp-api", &scope(), &encoded, false);
            let expected = reference("mcp-api", spans);
            assert_eq!(body, expected.encode_to_vec(), "{count} spans");
            assert_eq!(ExportTraceServiceRequest::decode(body).unwrap(), expected);
        }
    }

    #[test]
    fn a_gzip_body_inflates_to_the_plain_one() {
        let encoded: Vec<Vec<u8>> = (1..=3).map(span).map(|s| encode_span(&s)).collect();
        let plain = encode("svc", &scope(), &encoded, false);
        let gzipped = encode("svc", &scope(), &encoded, true);
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&gzipped[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, plain);
    }
}
