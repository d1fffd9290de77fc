//! The collector's router called without a socket (`tower::ServiceExt::oneshot`), where a
//! measurement wants the collector's cost without the HTTP server's.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// `GET /metrics`: the exposition text.
pub async fn scrape(app: &axum::Router) -> String {
    String::from_utf8(scrape_bytes(app).await.to_vec()).expect("utf-8")
}

/// `GET /metrics`: the exposition's bytes as the server answers them (nothing copied).
pub async fn scrape_bytes(app: &axum::Router) -> bytes::Bytes {
    let response = app
        .clone()
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("scrape");
    assert_eq!(response.status(), StatusCode::OK, "GET /metrics");
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

/// `POST /v1/records` of NDJSON `body`; panics unless it is answered 200.
pub async fn post_records(app: &axum::Router, body: Vec<u8>) {
    let response = app
        .clone()
        .oneshot(
            Request::post("/v1/records")
                .header("content-type", "application/x-ndjson")
                .body(Body::from(body))
                .expect("request"),
        )
        .await
        .expect("POST /v1/records");
    let status = response.status();
    if status != StatusCode::OK {
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        panic!(
            "POST /v1/records: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}
