//! The two OTLP transports, each sending one already-encoded `ExportTraceServiceRequest`:
//! gRPC through tonic (the body passes through a byte codec, so a retry re-sends the same
//! bytes without re-encoding) and HTTP/protobuf through reqwest, with the OTLP rules for
//! which failures are worth a retry.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use bytes::{BufMut as _, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

use super::config::OtlpCompression;

/// The gRPC method of the OTLP trace service.
const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// The content type of an OTLP/HTTP protobuf body.
const PROTOBUF_CONTENT_TYPE: &str = "application/x-protobuf";
/// The longest wait a server may ask for before a retry (`Retry-After`, gRPC `RetryInfo`).
const MAX_SERVER_DELAY: Duration = Duration::from_secs(30);

/// How an export attempt failed, for the retry decision.
#[derive(Debug)]
pub(super) enum Failure {
    /// Worth another attempt, after at least the server's delay when it named one.
    Retryable(Option<Duration>),
    /// Not worth retrying (a bad request, refused credentials, ...).
    Final,
}

/// A failed export attempt: the retry decision and what to log.
#[derive(Debug)]
pub(super) struct ExportError {
    pub failure: Failure,
    pub message: String,
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ExportError {
    pub(super) fn retryable(message: impl Into<String>) -> Self {
        Self {
            failure: Failure::Retryable(None),
            message: message.into(),
        }
    }
}

/// Where and how encoded requests go.
pub(super) enum Transport {
    Grpc {
        client: tonic::client::Grpc<Channel>,
        metadata: tonic::metadata::MetadataMap,
    },
    Http {
        client: reqwest::Client,
        url: String,
        headers: reqwest::header::HeaderMap,
    },
}

// Hand-written so the headers (API keys) never reach a log line.
impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Grpc { .. } => f.write_str("Transport::Grpc"),
            Self::Http { url, .. } => write!(f, "Transport::Http({url})"),
        }
    }
}

impl Transport {
    /// A gRPC transport to `url` (connected lazily, so a receiver that is down at start is
    /// not an error); `compression` is applied by tonic.
    pub(super) fn grpc(
        url: &str,
        headers: &HashMap<String, String>,
        compression: OtlpCompression,
    ) -> anyhow::Result<Self> {
        let mut metadata = tonic::metadata::MetadataMap::new();
        for (key, value) in headers {
            let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes())
                .with_context(|| format!("OTLP header {key:?} is not valid gRPC metadata"))?;
            let value = value.parse().with_context(|| {
                format!("OTLP header {key:?}: value is not valid gRPC metadata")
            })?;
            metadata.insert(key, value);
        }
        let channel = Channel::from_shared(url.to_owned())
            .with_context(|| format!("OTLP endpoint {url:?} is not a valid URI"))?
            .tcp_nodelay(true)
            .connect_lazy();
        let mut client = tonic::client::Grpc::new(channel);
        if compression == OtlpCompression::Gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        Ok(Self::Grpc { client, metadata })
    }

    /// An HTTP/protobuf transport posting to `url`; a gzip body is marked as such.
    pub(super) fn http(
        url: &str,
        headers: &HashMap<String, String>,
        compression: OtlpCompression,
    ) -> anyhow::Result<Self> {
        use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue};
        let mut map = reqwest::header::HeaderMap::new();
        for (key, value) in headers {
            let name = HeaderName::from_bytes(key.as_bytes())
                .with_context(|| format!("OTLP header {key:?} is not a valid header name"))?;
            let value = HeaderValue::from_str(value)
                .with_context(|| format!("OTLP header {key:?}: value is not a valid header"))?;
            map.insert(name, value);
        }
        map.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(PROTOBUF_CONTENT_TYPE),
        );
        if compression == OtlpCompression::Gzip {
            map.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .context("building the OTLP HTTP client")?;
        Ok(Self::Http {
            client,
            url: url.to_owned(),
            headers: map,
        })
    }

    /// Whether request bodies must be gzipped before [`Self::send`] (HTTP; tonic compresses
    /// gRPC messages itself).
    pub(super) fn body_is_compressed_by_caller(&self, compression: OtlpCompression) -> bool {
        matches!(self, Self::Http { .. }) && compression == OtlpCompression::Gzip
    }

    /// One export attempt with an encoded request.
    pub(super) async fn send(&self, body: Bytes) -> Result<(), ExportError> {
        match self {
            Self::Grpc { client, metadata } => {
                let mut client = client.clone();
                client
                    .ready()
                    .await
                    .map_err(|e| ExportError::retryable(format!("gRPC connection: {e}")))?;
                let mut request = tonic::Request::new(body);
                *request.metadata_mut() = metadata.clone();
                client
                    .unary(
                        request,
                        PathAndQuery::from_static(GRPC_EXPORT_PATH),
                        EncodedRequestCodec,
                    )
                    .await
                    .map(drop)
                    .map_err(|status| grpc_failure(&status))
            }
            Self::Http {
                client,
                url,
                headers,
            } => {
                let response = client
                    .post(url)
                    .headers(headers.clone())
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| ExportError::retryable(format!("HTTP request: {e}")))?;
                let status = response.status();
                if status.is_success() {
                    return Ok(());
                }
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                Err(ExportError {
                    failure: http_failure(status.as_u16(), retry_after),
                    message: format!("HTTP status {status}"),
                })
            }
        }
    }
}

/// The OTLP/HTTP retry rule: 429 and 502–504 are retried (429 and 503 after `Retry-After`
/// when given), every other status is final.
fn http_failure(status: u16, retry_after: Option<Duration>) -> Failure {
    match status {
        429 | 503 => Failure::Retryable(retry_after.map(|d| d.min(MAX_SERVER_DELAY))),
        502 | 504 => Failure::Retryable(None),
        _ => Failure::Final,
    }
}

/// The OTLP/gRPC retry rule: the transient codes are retried (after the server's
/// `RetryInfo` delay when it gives one); `RESOURCE_EXHAUSTED` only with a `RetryInfo`.
fn grpc_failure(status: &tonic::Status) -> ExportError {
    use tonic::Code;
    let delay = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .map(|d| d.min(MAX_SERVER_DELAY));
    let failure = match status.code() {
        Code::ResourceExhausted if delay.is_some() => Failure::Retryable(delay),
        Code::Unavailable
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::DataLoss => Failure::Retryable(delay),
        _ => Failure::Final,
    };
    ExportError {
        failure,
        message: format!("gRPC status {:?}: {}", status.code(), status.message()),
    }
}

/// A tonic codec whose request is an already-encoded protobuf message: the encoder copies
/// the bytes into the frame, the decoder reads the OTLP response. Hand-written because
/// tonic's prost codec would need the message itself (and re-encode it on every retry).
#[derive(Debug, Clone, Copy)]
struct EncodedRequestCodec;

impl Codec for EncodedRequestCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self::Encoder {
        Self
    }

    fn decoder(&mut self) -> Self::Decoder {
        Self
    }
}

impl Encoder for EncodedRequestCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for EncodedRequestCodec {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("decoding the OTLP response: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_follow_the_otlp_retry_rules() {
        let wait = Some(Duration::from_secs(2));
        assert!(matches!(http_failure(503, wait), Failure::Retryable(d) if d == wait));
        assert!(matches!(
            http_failure(429, Some(Duration::from_secs(3600))),
            Failure::Retryable(Some(d)) if d == MAX_SERVER_DELAY
        ));
        assert!(matches!(http_failure(502, None), Failure::Retryable(None)));
        for status in [400, 401, 404, 413, 500] {
            assert!(
                matches!(http_failure(status, None), Failure::Final),
                "{status}"
            );
        }
    }

    #[test]
    fn grpc_codes_follow_the_otlp_retry_rules() {
        let retryable =
            |status: tonic::Status| matches!(grpc_failure(&status).failure, Failure::Retryable(_));
        assert!(retryable(tonic::Status::unavailable("down")));
        assert!(retryable(tonic::Status::deadline_exceeded("slow")));
        assert!(!retryable(tonic::Status::resource_exhausted(
            "no RetryInfo"
        )));
        assert!(!retryable(tonic::Status::invalid_argument("bad")));
        assert!(!retryable(tonic::Status::unauthenticated("key")));
    }
}
