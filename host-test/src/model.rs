//! The HTTP exchange both hosts play, as plain data: the client's request, what the backend
//! answers, the request as it left for the backend and the response the client got.

use crate::headers::Headers;

/// A request as the client sent it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: String,
    /// Request headers.
    pub headers: Headers,
    /// Request body.
    pub body: Vec<u8>,
    /// How the body reaches the host: the sizes of the pieces its body reader returns one by
    /// one (the client wrote it in parts); empty or summing short means one piece for the rest.
    /// The Traefik profile reads them as http-wasm-host-go v0.7.0 does; proxy-wasm hosts call
    /// `on_request_body` once per piece.
    pub body_parts: Vec<usize>,
    /// Client address, `ip:port`.
    pub source_addr: String,
}

impl HttpRequest {
    /// A GET of `uri` with no headers.
    #[must_use]
    pub fn get(uri: &str) -> Self {
        Self {
            method: "GET".into(),
            uri: uri.into(),
            protocol: "HTTP/1.1".into(),
            headers: Headers::default(),
            body: Vec::new(),
            body_parts: Vec::new(),
            source_addr: "192.0.2.10:50123".into(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.add(name, value);
        self
    }
}

/// What the next handler (the backend) answers.
#[derive(Debug, Clone)]
pub struct BackendResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
    /// Whether the backend streams (SSE): buffering then holds the stream until it ends.
    pub streamed: bool,
    /// How the body arrives, as [`HttpRequest::body_parts`]: proxy-wasm hosts call
    /// `on_response_body` once per piece. Traefik hands the guest a response body only once it
    /// is buffered whole, so its profile reads no parts.
    pub body_parts: Vec<usize>,
}

impl BackendResponse {
    /// A response with a status and nothing else.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Headers::default(),
            body: Vec::new(),
            streamed: false,
            body_parts: Vec::new(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.add(name, value);
        self
    }
}

/// `body` cut into the pieces `parts` names (sizes, in order): a part past the end is cut short,
/// a zero part is skipped, what the parts leave over is one last piece, and an empty body is no
/// piece at all.
#[must_use]
pub fn body_pieces<'a>(body: &'a [u8], parts: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = body;
    for &len in parts.iter().filter(|&&len| len > 0) {
        if rest.is_empty() {
            break;
        }
        let (piece, after) = rest.split_at(len.min(rest.len()));
        pieces.push(piece);
        rest = after;
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// The request as it left for the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

/// The response the client got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}
