//! The HTTP surface: the router over `POST /v1/records` (the HTTP source), `/metrics` (the
//! view over the aggregate), `/health`, `/ready`, and the overview page `/` with its data
//! `/api/overview`.

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
use crate::page::{self, Page};
use crate::sources::http::{self, HttpSource};
use crate::telemetry::Telemetry;

/// State behind the router; cheap to clone. Built by `Collector::start`.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) http: HttpSource,
    pub(crate) metrics: Arc<MetricsView>,
    pub(crate) page: Arc<Page>,
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
        .route("/", get(overview_page))
        .route("/api/overview", get(overview_data))
        .with_state(state)
}

async fn metrics(State(app): State<AppState>) -> Response {
    let depth = app.http.queue_depth();
    let view = Arc::clone(&app.metrics);
    let Ok(exposition) = tokio::task::spawn_blocking(move || view.render(depth)).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    Response::builder()
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        // The buffer goes back for the next scrape once the body is sent.
        .body(Body::from(bytes::Bytes::from_owner(exposition)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn overview_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                page::CONTENT_SECURITY_POLICY,
            ),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page::HTML,
    )
        .into_response()
}

async fn overview_data(State(app): State<AppState>) -> Response {
    let depth = app.http.queue_depth();
    let page = Arc::clone(&app.page);
    match tokio::task::spawn_blocking(move || page.overview_json(depth)).await {
        Ok(json) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            json,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
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
