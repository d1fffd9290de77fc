//! The MCP side of one exchange on an MCP route (beside the exchange, outside `mcp/`, which
//! stays free of the config): the operation from trusted headers or the
//! request body (read only when [`request_body_plan`] allows), the buffering decision, and the
//! outcome scanned from the response body. The adapters feed it through `Exchange`.

use crate::config::Config;
use crate::mcp::facts::McpFacts;
use crate::mcp::headers::McpHeaders;
use crate::mcp::policy::Buffering;
use crate::mcp::request::scan_request;
use crate::mcp::response::ResponseScanner;
use crate::mcp::{BodySkipped, MessageKind};
use crate::route::Method;

/// The one content coding that leaves a body readable as it is.
const IDENTITY: &[u8] = b"identity";
/// Longest response `Content-Type` kept for the outcome scanner.
const MAX_CONTENT_TYPE_BYTES: usize = 256;

/// Whether to read a request body before it goes upstream: `Ok(n)` to read its `n` bytes
/// (`Content-Length`), else why not. Reading needs a length (a body without one may be a stream
/// the gateway must not hold), at most `limit` bytes, and no content coding.
pub fn request_body_plan(
    content_length: Option<u64>,
    encoded: bool,
    limit: usize,
) -> Result<usize, BodySkipped> {
    let length = content_length.ok_or(BodySkipped::NoLength)?;
    if encoded {
        return Err(BodySkipped::Encoded);
    }
    match usize::try_from(length) {
        Ok(length) if length <= limit => Ok(length),
        _ => Err(BodySkipped::TooLarge),
    }
}

/// Whether one `Content-Encoding` value names a coding other than identity.
#[must_use]
pub fn is_encoded(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    !value.is_empty() && !value.eq_ignore_ascii_case(IDENTITY)
}

/// The MCP state of one exchange.
#[derive(Debug, Clone)]
pub struct McpOperation {
    http: Method,
    headers: McpHeaders,
    facts: McpFacts,
    /// `Some(n)` while the request body (of `n` bytes) is awaited.
    body_wanted: Option<usize>,
    content_type: Option<Vec<u8>>,
    scanner: Option<ResponseScanner>,
}

impl McpOperation {
    /// Starts from the MCP request headers (never `Mcp-Param-*`) and decides whether the body
    /// is needed: only for a `POST` whose headers are not trusted (before 2026-07-28).
    /// `encoded`: the request has a `Content-Encoding` other than identity
    /// ([`is_encoded`]).
    pub fn begin(
        config: &Config,
        http: Method,
        mcp: McpHeaders,
        content_length: Option<u64>,
        encoded: bool,
    ) -> Self {
        let mut facts = McpFacts::default();
        let mut body_wanted = None;
        if mcp.trusted() {
            facts = McpFacts::from_headers(&mcp);
        } else if http == Method::Post {
            match request_body_plan(content_length, encoded, config.mcp_body_limit) {
                Ok(length) => body_wanted = Some(length),
                Err(reason) => {
                    facts = McpFacts::from_headers(&mcp);
                    facts.body_skipped = Some(reason);
                }
            }
        } else {
            facts.set_protocol_version(mcp.protocol_version());
        }
        Self {
            http,
            headers: mcp,
            facts,
            body_wanted,
            content_type: None,
            scanner: None,
        }
    }

    /// `Some(n)`: the adapter should read the request body (`n` bytes, its `Content-Length`)
    /// and pass it to [`Self::request_body`].
    #[must_use]
    pub fn request_body_wanted(&self) -> Option<usize> {
        self.body_wanted
    }

    /// The request body as read (whole). A body that is not a JSON-RPC message keeps the
    /// header facts, marked [`BodySkipped::Invalid`].
    pub fn request_body(&mut self, body: &[u8]) {
        if self.body_wanted.take().is_none() {
            return;
        }
        match scan_request(body) {
            Ok(request) => {
                self.facts = McpFacts::from_request(&request);
                self.facts
                    .set_protocol_version(self.headers.protocol_version());
            }
            Err(_) => {
                self.facts = McpFacts::from_headers(&self.headers);
                self.facts.body_skipped = Some(BodySkipped::Invalid);
            }
        }
    }

    /// Whether the response may be buffered ([`crate::mcp::policy::BufferPolicy::decide`]).
    #[must_use]
    pub fn buffering(&self, config: &Config) -> Buffering {
        config.mcp_buffer_policy.decide(
            self.http,
            self.facts.kind,
            self.facts.method.as_deref(),
            config.mcp_server_streams,
        )
    }

    /// Keeps one response `Content-Type` value for the outcome scanner.
    pub fn push_response_content_type(&mut self, value: &[u8]) {
        if self.content_type.is_none() && value.len() <= MAX_CONTENT_TYPE_BYTES {
            self.content_type = Some(value.to_vec());
        }
    }

    /// Whether the response carries an outcome worth scanning: the answer to a request.
    #[must_use]
    pub fn wants_response_body(&self) -> bool {
        self.http == Method::Post && self.facts.kind == Some(MessageKind::Request)
    }

    /// Scans the next response body chunk (bounded by `mcpBodyLimit`); a no-op unless
    /// [`Self::wants_response_body`].
    pub fn response_chunk(&mut self, config: &Config, chunk: &[u8]) {
        if !self.wants_response_body() {
            return;
        }
        let content_type = self.content_type.as_deref();
        self.scanner
            .get_or_insert_with(|| ResponseScanner::new(content_type, config.mcp_body_limit))
            .push(chunk);
    }

    /// The response body ended: its outcome goes into the facts (only when a chunk was
    /// scanned, possibly empty).
    pub fn response_end(&mut self) {
        if let Some(scanner) = self.scanner.take() {
            self.facts.set_outcome(scanner.finish());
        }
    }

    /// What the record carries.
    #[must_use]
    pub fn facts(&self) -> &McpFacts {
        &self.facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(Content-Length, encoded, limit, plan)`.
    type PlanCase = (Option<u64>, bool, usize, Result<usize, BodySkipped>);

    #[test]
    fn the_body_is_read_only_with_a_length_within_the_limit_and_no_coding() {
        let cases: &[PlanCase] = &[
            (Some(10), false, 10, Ok(10)),
            (Some(0), false, 10, Ok(0)),
            (Some(11), false, 10, Err(BodySkipped::TooLarge)),
            (Some(u64::MAX), false, 65536, Err(BodySkipped::TooLarge)),
            (None, false, 10, Err(BodySkipped::NoLength)),
            (None, true, 10, Err(BodySkipped::NoLength)),
            (Some(5), true, 10, Err(BodySkipped::Encoded)),
        ];
        for &(length, encoded, limit, want) in cases {
            assert_eq!(
                request_body_plan(length, encoded, limit),
                want,
                "{length:?} {encoded} {limit}"
            );
        }
    }
}
