//! The HTTP surface: `POST /v1/records`, `/metrics`, `/health`, `/ready`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gatetrace_core::record::{BATCH_SEQUENCE_HEADER, BATCH_SOURCE_HEADER};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tower_http::decompression::RequestDecompressionLayer;

use crate::config::Secret;
use crate::ingest::{LineError, parse_block};
use crate::pipeline::{Ack, Batch, Origin, Shared};

/// How long a handler waits for its batch to become durable before answering 503.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest accepted `x-gatetrace-source`.
const MAX_SOURCE_LEN: usize = 128;

/// State behind the router; cheap to clone. Built by [`crate::Collector::start`].
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tx: mpsc::Sender<Batch>,
    pub(crate) token: Option<Arc<Secret>>,
    pub(crate) body_limit: usize,
    pub(crate) spool: bool,
}

impl AppState {
    fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// The collector's router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/v1/records",
            post(ingest).layer(RequestDecompressionLayer::new().gzip(true)),
        )
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state)
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

async fn ingest(State(app): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Some(token) = &app.token
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
    let bytes = match Limited::new(body, app.body_limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "body larger than the limit");
        }
        Err(_) => return error(StatusCode::BAD_REQUEST, "unreadable body (bad gzip?)"),
    };
    let parsed = parse_block(&bytes);
    let accepted = parsed.records.len();
    let rejected = parsed.rejected_total();
    let (ack_tx, ack_rx) = oneshot::channel();
    let batch = Batch {
        records: parsed.records,
        rejected: parsed.rejected,
        origin: Origin::Http { dedup, ack: ack_tx },
    };
    match app.tx.try_send(batch) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(batch)) => {
            app.shared
                .health
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
        Ack::Applied => false,
        Ack::Duplicate => true,
        Ack::NotDurable => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "checkpoint failed; retry");
        }
    };
    axum::Json(IngestAnswer {
        accepted,
        rejected,
        errors: parsed.errors,
        duplicate,
    })
    .into_response()
}

async fn metrics(State(app): State<AppState>) -> Response {
    let depth = app.queue_depth();
    let shared = Arc::clone(&app.shared);
    let text = tokio::task::spawn_blocking(move || crate::metrics::render(&shared, depth))
        .await
        .unwrap_or_default();
    Response::builder()
        .header(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)
        .body(Body::from(text))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(app): State<AppState>) -> Response {
    let health = &app.shared.health;
    let mut problems = Vec::new();
    if !health.aggregator_running.load(Ordering::Relaxed) {
        problems.push("aggregator not running");
    }
    if app.tx.capacity() == 0 {
        problems.push("ingest queue full");
    }
    if app.spool && !health.spool_readable.load(Ordering::Relaxed) {
        problems.push("spool directory not readable");
    }
    if problems.is_empty() {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("; ") + "\n").into_response()
    }
}
