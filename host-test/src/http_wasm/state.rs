//! What the Traefik host keeps per guest instance ([`HttpState`]) and per request
//! ([`ReqState`]): the request and response as the guest may see and change them, the
//! features it enabled, and what it logged and did wrong.

use std::sync::Arc;

use gatetrace_abi::http_wasm::{Features, HeaderKind};
use wasmtime::{Result, bail};

use crate::guest::{HostCalls, LogLine};
use crate::headers::Headers;
use crate::wasi::GuestWasi;

/// Where a request is: before `next` (the guest may change the request) or after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Request,
    Response,
}

/// One request as the host holds it between `handle_request` and `handle_response`.
pub(super) struct ReqState {
    pub(super) phase: Phase,
    pub(super) features: Features,
    pub(super) method: String,
    pub(super) uri: String,
    pub(super) protocol: String,
    pub(super) source_addr: String,
    pub(super) req_headers: Headers,
    pub(super) req_trailers: Headers,
    pub(super) req_body: Vec<u8>,
    pub(super) req_read: usize,
    pub(super) req_written: bool,
    pub(super) status: u16,
    pub(super) resp_headers: Headers,
    pub(super) resp_trailers: Headers,
    pub(super) resp_body: Vec<u8>,
    pub(super) resp_read: usize,
    pub(super) resp_written: bool,
}

impl ReqState {
    pub(super) fn buffered(&self) -> bool {
        self.features.contains(Features::BUFFER_RESPONSE)
    }

    /// Response-side changes after `next` without buffering reach nobody.
    pub(super) fn response_frozen(&self) -> bool {
        self.phase == Phase::Response && !self.buffered()
    }

    /// The header map `kind` names.
    pub(super) fn headers_mut(&mut self, kind: HeaderKind) -> &mut Headers {
        match kind {
            HeaderKind::Request => &mut self.req_headers,
            HeaderKind::Response => &mut self.resp_headers,
            HeaderKind::RequestTrailers => &mut self.req_trailers,
            HeaderKind::ResponseTrailers => &mut self.resp_trailers,
        }
    }
}

/// One guest instance's host state.
pub(super) struct HttpState {
    pub(super) wasi: GuestWasi,
    pub(super) seen: (usize, usize),
    pub(super) config: Arc<Vec<u8>>,
    /// Lowest level `log_enabled` accepts (ABI value, -1 debug … 2 error).
    pub(super) log_level: i32,
    /// Features enabled outside a request (during start): every request starts with them.
    pub(super) default_features: Features,
    pub(super) req: Option<ReqState>,
    pub(super) calls: HostCalls,
    pub(super) logs: Vec<LogLine>,
    pub(super) warnings: Vec<String>,
    /// Something the guest did that makes Traefik itself panic.
    pub(super) violation: Option<String>,
}

impl HttpState {
    /// The request in flight; host-go fails `call` outside one.
    pub(super) fn req(&mut self, call: &str) -> Result<&mut ReqState> {
        match self.req.as_mut() {
            Some(r) => Ok(r),
            None => bail!("{call} called outside a request (during start): host-go would fail"),
        }
    }

    /// Moves the guest's WASI stdout/stderr lines into the log.
    pub(super) fn collect_output(&mut self) {
        for (stream, line) in self.wasi.take_output(&mut self.seen) {
            self.logs.push(LogLine {
                level: stream,
                message: line,
            });
        }
    }
}
