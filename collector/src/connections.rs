//! The accept loop in front of the router: at most `max_connections` at once (the rest are
//! answered 503 and counted), request headers within a deadline (it also ends idle keep-alive
//! connections), graceful shutdown. Over hyper: `axum::serve` sets no timer and no cap.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::telemetry::{RefusedRequest, Telemetry};

/// What a connection past the cap is told before it is closed.
const BUSY_ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
Content-Type: text/plain\r\nContent-Length: 34\r\nConnection: close\r\n\r\n\
too many connections; retry later\n";
/// Pause after a failed `accept` (e.g. out of file descriptors) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Limits on the connections one listener serves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    pub max_connections: usize,
    /// A request's headers must arrive within this long (also the keep-alive idle limit).
    pub header_timeout: Duration,
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets the
/// open connections finish their requests.
pub(crate) async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    telemetry: Arc<Telemetry>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closing_rx) = watch::channel(());
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            telemetry.count_refused(RefusedRequest::ConnectionCap);
            // A fresh socket's send buffer takes the short answer without waiting.
            let _ = stream.try_write(BUSY_ANSWER);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Whether a request got through: a timeout after one is a keep-alive connection
        // going idle, not a slow client.
        let served = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&served);
        let service = TowerToHyperService::new(router.clone().map_request(
            move |request: Request<Incoming>| {
                seen.store(true, Ordering::Relaxed);
                request
            },
        ));
        let telemetry = Arc::clone(&telemetry);
        let mut closing = closing_rx.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = closing.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result
                && e.is_timeout()
                && !served.load(Ordering::Relaxed)
            {
                telemetry.count_refused(RefusedRequest::HeaderTimeout);
            }
        });
    }
    drop(listener);
    drop(closing);
    while connections.join_next().await.is_some() {}
}
