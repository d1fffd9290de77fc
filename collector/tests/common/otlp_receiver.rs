//! Mock OTLP receivers on free loopback ports, gRPC and HTTP/protobuf (plain or gzip), that
//! record every export request and refuse or delay on demand. Stand-ins where a test needs what no real backend
//! offers (refusing N calls, seeing each request's headers); `tests/e2e/tests/otlp_e2e.rs` runs a real one.

use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use prost::Message as _;

/// What an in-test OTLP receiver saw: spans with their resource's `service.name`, the
/// `x-api-key` header of each request, and how many export calls arrived.
#[derive(Default)]
pub struct Seen {
    pub spans: Vec<(String, ProtoSpan)>,
    pub api_keys: Vec<Option<String>>,
    /// Spans per accepted request.
    pub sizes: Vec<usize>,
    pub calls: usize,
    /// Calls to refuse (UNAVAILABLE / 503) before accepting.
    pub refuse: usize,
    /// How long each call waits before it is answered.
    pub delay: Duration,
    /// Calls being answered now, and the most there ever were at once.
    pub in_flight: usize,
    pub max_in_flight: usize,
}

/// Waits the configured delay, counting the call as in flight meanwhile.
async fn answer_after_delay(seen: &ReceiverLog) {
    let delay = {
        let mut seen = seen.lock().unwrap();
        seen.in_flight += 1;
        seen.max_in_flight = seen.max_in_flight.max(seen.in_flight);
        seen.delay
    };
    tokio::time::sleep(delay).await;
    seen.lock().unwrap().in_flight -= 1;
}

/// A receiver's record of what it saw, shared with the test.
pub type ReceiverLog = Arc<Mutex<Seen>>;

fn take(seen: &ReceiverLog, request: ExportTraceServiceRequest, api_key: Option<String>) -> bool {
    let mut seen = seen.lock().unwrap();
    seen.calls += 1;
    if seen.refuse > 0 {
        seen.refuse -= 1;
        return false;
    }
    seen.api_keys.push(api_key);
    let size = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    seen.sizes.push(size);
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            assert_eq!(
                scope_spans.scope.as_ref().map(|s| s.name.as_str()),
                Some("gatetrace-collector")
            );
            for span in scope_spans.spans {
                seen.spans.push((service.clone(), span));
            }
        }
    }
    true
}

struct Grpc(ReceiverLog);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let key = request
            .metadata()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        answer_after_delay(&self.0).await;
        if take(&self.0, request.into_inner(), key) {
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        } else {
            Err(tonic::Status::unavailable("refusing for the test"))
        }
    }
}

/// A gRPC OTLP receiver on a free loopback port; returns its base URL.
pub async fn grpc_receiver(seen: &ReceiverLog) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = TraceServiceServer::new(Grpc(Arc::clone(seen)))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    url
}

/// An HTTP/protobuf OTLP receiver (`POST /v1/traces`); returns its base URL.
pub async fn http_receiver(seen: &ReceiverLog) -> String {
    use axum::http::{HeaderMap, StatusCode as Http};
    let seen = Arc::clone(seen);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                assert_eq!(headers["content-type"], "application/x-protobuf");
                let request = match headers.get("content-encoding") {
                    Some(encoding) => {
                        assert_eq!(encoding, "gzip");
                        let mut plain = Vec::new();
                        flate2::read::GzDecoder::new(&body[..])
                            .read_to_end(&mut plain)
                            .unwrap();
                        ExportTraceServiceRequest::decode(&plain[..]).unwrap()
                    }
                    None => ExportTraceServiceRequest::decode(body).unwrap(),
                };
                let key = headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                answer_after_delay(&seen).await;
                if take(&seen, request, key) {
                    (
                        Http::OK,
                        ExportTraceServiceResponse::default().encode_to_vec(),
                    )
                } else {
                    (Http::SERVICE_UNAVAILABLE, Vec::new())
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
