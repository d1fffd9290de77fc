//! What the proxy-wasm host reports: dispatched calls and their fate, the guest's metrics,
//! one stream's exchange, and a VM that failed to start.

use std::fmt;

use crate::guest::{HostCalls, LogLine};
use crate::headers::Headers;
use crate::model::{ClientResponse, UpstreamRequest};

/// What happened to a dispatched call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    /// Waiting for an answer.
    Pending,
    /// Answered with this status.
    Answered(u16),
    /// Failed (connection error or [`ProxyHost::fail_call`]).
    Failed(String),
    /// Its timeout ran out on the harness clock.
    TimedOut,
    /// Its context was gone when the answer came (the host drops it).
    Dropped(String),
}

/// One `proxy_http_call`.
#[derive(Debug, Clone)]
pub struct DispatchedCall {
    /// Call id returned to the guest.
    pub id: u32,
    /// Upstream (cluster) name.
    pub cluster: String,
    /// Headers, pseudo-headers included.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
    /// Trailers.
    pub trailers: Headers,
    /// Timeout in milliseconds.
    pub timeout_ms: u32,
    /// Context that dispatched it (its answer goes there).
    pub context_id: u32,
    /// Callback it was dispatched from (`on_tick`, `on_request_headers`, ...).
    pub from_callback: &'static str,
    /// Harness time of dispatch (ns).
    pub at_nanos: u64,
    /// Outcome so far.
    pub state: CallState,
}

/// An answer for a dispatched call.
#[derive(Debug, Clone)]
pub struct CallResponse {
    /// Status (`:status`).
    pub status: u16,
    /// Headers (without `:status`).
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

impl CallResponse {
    /// A response with only a status.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Headers::default(),
            body: Vec::new(),
        }
    }
}

/// A metric the guest defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    /// Name.
    pub name: String,
    /// 0 counter, 1 gauge, 2 histogram.
    pub kind: u32,
    /// Current value (counter/gauge) or last recorded (histogram).
    pub value: i64,
}

/// Everything one HTTP stream did.
#[derive(Debug, Clone)]
pub struct ProxyExchange {
    /// The stream context id.
    pub context_id: u32,
    /// Callbacks run for this stream, with their return (`on_request_headers=Continue`).
    pub callbacks: Vec<String>,
    /// The request as it reached the upstream (None: answered locally or held).
    pub upstream: Option<UpstreamRequest>,
    /// What the client received.
    pub response: ClientResponse,
    /// Whether the guest answered with `proxy_send_local_response`.
    pub local_response: bool,
    /// Log lines since the stream began (any context).
    pub logs: Vec<LogLine>,
    /// Host calls since the stream began (any context).
    pub host_calls: HostCalls,
    /// Wasm instructions spent since the stream began.
    pub fuel: u64,
    /// Calls dispatched since the stream began (ids).
    pub dispatched: Vec<u32>,
    /// A trap, or the host refusing something by trapping.
    pub failure: Option<String>,
    /// Host behaviour the guest may not expect.
    pub warnings: Vec<String>,
}

/// The proxy-wasm VM failed to start or configure.
#[derive(Debug, Clone)]
pub struct StartFailed {
    /// What failed.
    pub reason: String,
    /// Guest log lines until then.
    pub logs: Vec<LogLine>,
}

impl fmt::Display for StartFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin failed to start: {}", self.reason)?;
        for line in &self.logs {
            write!(f, "\n  guest: {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StartFailed {}
