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
    /// Where the body reader's pieces end (offsets into `req_body`), ascending, the last the
    /// body's length.
    pub(super) req_part_ends: Vec<usize>,
    pub(super) req_read: usize,
    /// The body reader returned EOF.
    pub(super) req_eof: bool,
    /// The bytes of the reader's read that returned EOF: all that http-wasm-host-go v0.7.0
    /// keeps of a request body read under `buffer_request`.
    pub(super) req_eof_piece: Vec<u8>,
    pub(super) req_written: bool,
    pub(super) status: u16,
    pub(super) resp_headers: Headers,
    pub(super) resp_trailers: Headers,
    pub(super) resp_body: Vec<u8>,
    pub(super) resp_read: usize,
    pub(super) resp_written: bool,
}

impl ReqState {
    /// One `read_body(request)` call of up to `limit` bytes, as http-wasm-host-go v0.7.0 makes
    /// it: reads pieces from the body reader until the buffer is full or the reader says EOF.
    /// Over HTTP/1.1 the reader returns EOF with the last bytes; over HTTP/2 EOF comes alone,
    /// on a read after the last data.
    pub(super) fn read_request_body(&mut self, limit: usize) -> (Vec<u8>, bool) {
        let http2 = self.protocol.starts_with("HTTP/2");
        let mut out = Vec::new();
        while out.len() < limit && !self.req_eof {
            let offset = self.req_read;
            let part_end = self
                .req_part_ends
                .iter()
                .copied()
                .find(|&end| end > offset)
                .unwrap_or(self.req_body.len());
            let end = part_end.min(offset + (limit - out.len()));
            let piece = &self.req_body[offset..end];
            out.extend_from_slice(piece);
            self.req_read = end;
            let at_end = end == self.req_body.len();
            if at_end && (!http2 || piece.is_empty()) {
                self.req_eof = true;
                self.req_eof_piece = piece.to_vec();
            }
        }
        (out, self.req_eof)
    }

    /// The request body the backend gets: what the guest wrote; else, when it read under
    /// `buffer_request`, only the piece read with EOF (v0.7.0's bug: empty over HTTP/2,
    /// truncated when the body came in parts); else the part it did not read.
    pub(super) fn upstream_request_body(&self) -> Vec<u8> {
        if self.req_written || self.req_read == 0 {
            self.req_body.clone()
        } else if self.features.contains(Features::BUFFER_REQUEST) && self.req_eof {
            self.req_eof_piece.clone()
        } else {
            self.req_body[self.req_read..].to_vec()
        }
    }

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
