//! One export request: a service's spans encoded once as an `ExportTraceServiceRequest`
//! (gzipped for HTTP when asked), sent with retries and exponential backoff with jitter, all
//! within the timeout.

use std::hash::{BuildHasher as _, RandomState};
use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;
use tokio::time::Instant;

use super::span::string;
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

/// `spans` of one service as an encoded request body, gzipped when `gzip`.
pub(super) fn encode(
    service: &str,
    scope: &InstrumentationScope,
    spans: Vec<Span>,
    gzip: bool,
) -> Bytes {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string("service.name", service)],
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope.clone()),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let body = request.encode_to_vec();
    if !gzip {
        return Bytes::from(body);
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
    // Writing into a Vec cannot fail.
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
