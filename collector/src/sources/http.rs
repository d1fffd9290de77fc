//! The HTTP source, `POST /v1/records`: bearer token, batch headers, body limit (gzip
//! included), decoding, then a [`RecordBatch`] to the aggregator; the answer waits until the
//! batch is durable (group commit) and lists the rejected lines.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatetrace_core::record::{BATCH_SEQUENCE_HEADER, BATCH_SOURCE_HEADER};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::decode::{LineError, parse_block};
use crate::batch::{BatchOrigin, IngestAck, RecordBatch};
use crate::config::Secret;
use crate::telemetry::{RefusedRequest, Telemetry};

/// How long a handler waits for its batch to become durable before answering 503.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest accepted `x-gatetrace-source`.
const MAX_SOURCE_LEN: usize = 128;

/// What `POST /v1/records` needs; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct HttpSource {
    /// Bounded queue to the aggregator.
    pub queue: mpsc::Sender<RecordBatch>,
    pub token: Option<Arc<Secret>>,
    pub body_limit: usize,
    /// The whole body must arrive within this long.
    pub body_timeout: Duration,
    pub telemetry: Arc<Telemetry>,
}

impl HttpSource {
    /// Batches waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    pub fn queue_full(&self) -> bool {
        self.queue.capacity() == 0
    }
}

/// The answer to `POST /v1/records`.
#[derive(Debug, Serialize)]
struct IngestAnswer {
    accepted: usize,
    rejected: u64,
    errors: Vec<LineError>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn authorized(headers: &HeaderMap, token: &Secret) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    // Constant time in the token's length: no early exit on the first differing byte.
    let (a, b) = (given.trim().as_bytes(), token.0.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `(source, sequence)` from the batch headers: `Ok(None)` without them.
fn dedup_key(headers: &HeaderMap) -> Result<Option<(String, u64)>, &'static str> {
    let source = headers.get(BATCH_SOURCE_HEADER);
    let sequence = headers.get(BATCH_SEQUENCE_HEADER);
    match (source, sequence) {
        (None, None) => Ok(None),
        (Some(source), Some(sequence)) => {
            let source = source
                .to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= MAX_SOURCE_LEN)
                .ok_or("x-gatetrace-source must be 1-128 visible ASCII characters")?;
            let sequence = sequence
                .to_str()
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("x-gatetrace-sequence must be an unsigned integer")?;
            Ok(Some((source.to_owned(), sequence)))
        }
        _ => Err("x-gatetrace-source and x-gatetrace-sequence go together"),
    }
}

/// The `POST /v1/records` handler.
pub(crate) async fn ingest(State(source): State<HttpSource>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Some(token) = &source.token
        && !authorized(&parts.headers, token)
    {
        let mut response = error(StatusCode::UNAUTHORIZED, "missing or invalid bearer token");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"gatetrace-collector\""),
        );
        return response;
    }
    let dedup = match dedup_key(&parts.headers) {
        Ok(dedup) => dedup,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let collected = tokio::time::timeout(
        source.body_timeout,
        Limited::new(body, source.body_limit).collect(),
    );
    let bytes = match collected.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("body larger than the limit of {} bytes", source.body_limit),
            );
        }
        Ok(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("unreadable body (truncated or corrupt gzip?): {e}"),
            );
        }
        Err(_) => {
            source.telemetry.count_refused(RefusedRequest::BodyTimeout);
            let mut response = error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "request body not received within {} ms",
                    source.body_timeout.as_millis()
                ),
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    let decoded = parse_block(&bytes);
    let accepted = decoded.records.len();
    let rejected = decoded.rejected_total();
    let (ack_tx, ack_rx) = oneshot::channel();
    let batch = RecordBatch {
        records: decoded.records,
        rejected: decoded.rejected,
        origin: BatchOrigin::Http { dedup, ack: ack_tx },
    };
    match source.queue.try_send(batch) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(batch)) => {
            source
                .telemetry
                .queue_full_records
                .fetch_add(batch.records.len() as u64, Ordering::Relaxed);
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "ingest queue full");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        }
    }
    let Ok(Ok(answer)) = tokio::time::timeout(ACK_TIMEOUT, ack_rx).await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "batch not confirmed; retry",
        );
    };
    let duplicate = match answer {
        IngestAck::Applied => false,
        IngestAck::Duplicate => true,
        IngestAck::NotDurable => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "checkpoint failed; retry");
        }
    };
    axum::Json(IngestAnswer {
        accepted,
        rejected,
        errors: decoded.errors,
        duplicate,
    })
    .into_response()
}
