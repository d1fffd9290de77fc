//! The HTTP surface: the router over `POST /v1/records` (the HTTP source), `/metrics` (the
//! view over the aggregate), `/health` and `/ready`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::decompression::RequestDecompressionLayer;

use crate::metrics::{CONTENT_TYPE, MetricsView};
use crate::sources::http::{self, HttpSource};
use crate::telemetry::Telemetry;

/// State behind the router; cheap to clone. Built by `Collector::start`.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) http: HttpSource,
    pub(crate) metrics: Arc<MetricsView>,
    pub(crate) telemetry: Arc<Telemetry>,
    /// Whether a spool directory is tailed (then `/ready` needs it readable).
    pub(crate) spool: bool,
}

impl FromRef<AppState> for HttpSource {
    fn from_ref(state: &AppState) -> Self {
        state.http.clone()
    }
}

/// The collector's router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/v1/records",
            post(http::ingest).layer(RequestDecompressionLayer::new().gzip(true)),
        )
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state)
}

async fn metrics(State(app): State<AppState>) -> Response {
    let depth = app.http.queue_depth();
    let view = Arc::clone(&app.metrics);
    let text = tokio::task::spawn_blocking(move || view.render(depth))
        .await
        .unwrap_or_default();
    Response::builder()
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .body(Body::from(text))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(app): State<AppState>) -> Response {
    let telemetry = &app.telemetry;
    let mut problems = Vec::new();
    if !telemetry.aggregator_running.load(Ordering::Relaxed) {
        problems.push("aggregator not running");
    }
    if app.http.queue_full() {
        problems.push("ingest queue full");
    }
    if app.spool && !telemetry.spool_readable.load(Ordering::Relaxed) {
        problems.push("spool directory not readable");
    }
    if problems.is_empty() {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("; ") + "\n").into_response()
    }
}
