//! The per-request lifecycle both adapters drive, so one request gives the same record on
//! Traefik and on Envoy: [`Exchange::begin`] → [`Exchange::upstream`] →
//! [`Exchange::response_headers`] → [`Exchange::record`] (borrowed) or [`Exchange::finish`];
//! on MCP routes also [`Exchange::request_body`] before `upstream` when
//! [`Exchange::request_body_wanted`], and [`Exchange::response_body`] (or chunks) after.
//!
//! The core asks for headers by name through [`HeaderLookup`], only those it needs:
//! [`REQUEST_HEADERS`] (plus the configured request id header, and `user-agent` only when
//! recorded) and [`RESPONSE_HEADERS`]. The query string, `Authorization` (only "is there a
//! Bearer token"), cookies and token values never enter the exchange.

use crate::classify::{
    BearerError, TokenMode, has_bearer_token, parse_www_authenticate, request_wants_stream,
    response_is_stream, session, session_label, token_mode, token_result,
};
use crate::config::{BufferMode, Config};
use crate::hex::hex_string;
use crate::ids::{IncomingRequestId, Instance};
use crate::mcp::StatusSource;
use crate::mcp::headers::{self as mcp_headers, McpHeaders};
use crate::mcp::policy::{Buffering, ResponseSignals, UnknownStatus};
use crate::mcp_operation::{McpOperation, is_encoded};
use crate::record::{HostKind, Record, RecordRef, SCHEMA_MAJOR};
use crate::route::{Method, endpoint, strip_query};
use crate::trace::{IncomingTraceparent, SpanContext, TraceparentHeader, TracestateBuilder};

/// Request headers the core may read (lowercase), besides the configured request id header
/// ([`Config::request_id_header`]) and `host` (read by the adapters, only with `recordHost`);
/// `user-agent` is read only when `recordUserAgent` is on,
/// `authorization` only when the route's token mode is not `off` (and only for "is there a
/// Bearer token"), `mcp-session-id` only when `sessionId` is not `off`; the MCP headers
/// (`mcp-method`, `mcp-name`, `mcp-protocol-version`, `content-encoding`) only on MCP routes.
/// `Mcp-Param-*` is never read.
pub const REQUEST_HEADERS: &[&str] = &[
    "traceparent",
    "tracestate",
    "authorization",
    "mcp-session-id",
    "accept",
    "upgrade",
    "content-type",
    "content-length",
    "user-agent",
    mcp_headers::MCP_METHOD,
    mcp_headers::MCP_NAME,
    mcp_headers::MCP_PROTOCOL_VERSION,
    CONTENT_ENCODING,
];

/// Request header whose coding decides whether an MCP body is read.
pub const CONTENT_ENCODING: &str = "content-encoding";

/// Response headers the core may read in [`Exchange::response_headers`] (lowercase), each
/// only when the request needs it.
pub const RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "mcp-session-id",
    "www-authenticate",
    "content-length",
    "upgrade",
];

/// Longest authority kept in a record.
pub const MAX_HOST_LEN: usize = 255;
/// Longest client address kept in a record.
pub const MAX_CLIENT_ADDR_LEN: usize = 64;
/// Longest user agent kept in a record.
pub const MAX_USER_AGENT_LEN: usize = 256;

/// Header access the adapter provides. Names are lowercase ASCII.
pub trait HeaderLookup {
    /// Calls `visit` once for every value of header `name`, in order (a host that joins
    /// repeated headers with `,` may call it once). Does nothing when the header is absent.
    fn each_value(&mut self, name: &str, visit: &mut dyn FnMut(&[u8]));
}

/// Test- and harness-friendly lookup over `(name, value)` pairs, names matched
/// case-insensitively.
impl<N: AsRef<[u8]>, V: AsRef<[u8]>> HeaderLookup for [(N, V)] {
    fn each_value(&mut self, name: &str, visit: &mut dyn FnMut(&[u8])) {
        for (n, v) in self.iter() {
            if n.as_ref().eq_ignore_ascii_case(name.as_bytes()) {
                visit(v.as_ref());
            }
        }
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> HeaderLookup for Vec<(N, V)> {
    fn each_value(&mut self, name: &str, visit: &mut dyn FnMut(&[u8])) {
        self.as_mut_slice().each_value(name, visit);
    }
}

/// The request line and connection facts an adapter passes to [`Exchange::begin`].
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a [u8],
    /// Path and query as received (the query is stripped here, never stored).
    pub path_and_query: &'a [u8],
    /// `Host` / `:authority`.
    pub authority: Option<&'a [u8]>,
    /// Client address (recorded only with `recordClientAddr`).
    pub client_addr: Option<&'a [u8]>,
}

/// What the adapter does to the upstream request and the response, from [`Exchange::upstream`].
#[derive(Debug, Clone, Copy)]
pub struct Upstream<'a> {
    /// Lowercase request id header name.
    pub request_id_header: &'a str,
    /// The request id in effect.
    pub request_id: &'a str,
    /// Whether the request id header must be (over)written upstream: false when the incoming
    /// id was kept as it was.
    pub set_request_id: bool,
    /// Set the request id header on the response too.
    pub echo_request_id: bool,
    /// Always set upstream (replacing any incoming value).
    pub traceparent: &'a str,
    pub tracestate: TracestateAction<'a>,
    /// Ask the host to buffer the response (Traefik: needed to read the status).
    pub buffer_response: bool,
    /// The request asks for a stream (SSE, upgrade, gRPC).
    pub is_stream: bool,
}

/// What to do with the upstream `tracestate` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TracestateAction<'a> {
    /// Leave it as it arrived (absent, or one valid value passed on unchanged).
    Keep,
    /// Replace it with this value (several headers joined, or members capped).
    Set(&'a str),
    /// Remove it (the incoming trace context was invalid or it was malformed).
    Remove,
}

/// The header edits an adapter makes for [`Upstream`], one host call each; both adapters
/// implement it and [`Upstream::apply_to_request`] / [`Upstream::apply_to_response`] decide
/// which edits to make.
pub trait HeaderEdits {
    /// Replaces request header `name` (lowercase) with one `value`.
    fn set_request_header(&mut self, name: &str, value: &str);
    /// Removes request header `name` (lowercase).
    fn remove_request_header(&mut self, name: &str);
    /// Replaces response header `name` (lowercase) with one `value`.
    fn set_response_header(&mut self, name: &str, value: &str);
}

impl Upstream<'_> {
    /// The request side: the request id header (unless the incoming id was kept as it was),
    /// `traceparent` always, `tracestate` as [`Upstream::tracestate`] says.
    pub fn apply_to_request(&self, edits: &mut impl HeaderEdits) {
        if self.set_request_id {
            edits.set_request_header(self.request_id_header, self.request_id);
        }
        edits.set_request_header("traceparent", self.traceparent);
        match self.tracestate {
            TracestateAction::Keep => {}
            TracestateAction::Set(value) => edits.set_request_header("tracestate", value),
            TracestateAction::Remove => edits.remove_request_header("tracestate"),
        }
    }

    /// The response side: the request id echoed when `echoRequestId` is on.
    pub fn apply_to_response(&self, edits: &mut impl HeaderEdits) {
        if self.echo_request_id {
            edits.set_response_header(self.request_id_header, self.request_id);
        }
    }
}

/// One request in flight between `begin` and `finish`.
#[derive(Debug, Clone)]
pub struct Exchange {
    start_unix_ns: u64,
    request_id: String,
    set_request_id: bool,
    span: SpanContext,
    /// Also holds the trace and span ids as hex, for the record.
    traceparent: TraceparentHeader,
    /// The incoming span id as hex, when the trace was continued.
    parent_span_hex: Option<[u8; 16]>,
    tracestate: Option<String>,
    tracestate_action: TracestateKind,
    method: Method,
    endpoint: String,
    host: Option<String>,
    client_addr: Option<String>,
    user_agent: Option<String>,
    request_bytes: Option<u64>,
    bearer: bool,
    token_mode: TokenMode,
    request_session: Option<String>,
    wants_stream: bool,
    upgrade: bool,
    buffer_response: bool,
    /// The path is in `bufferRoutes`: the operator's choice outranks the MCP allow-list.
    buffer_route: bool,
    /// Indices into `Config::counters` whose method and route matched.
    counter_candidates: Vec<usize>,
    response: ResponseFacts,
    /// On MCP routes (`mcpRoutes`).
    mcp: Option<Box<McpOperation>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TracestateKind {
    Keep,
    Set,
    Remove,
}

#[derive(Debug, Clone, Default)]
struct ResponseFacts {
    seen: bool,
    stream: bool,
    session: Option<String>,
    challenge: BearerError,
    bytes: Option<u64>,
    /// What fixes the status of a response the host did not show.
    signals: ResponseSignals,
    /// The host reported an error instead of a response.
    host_error: bool,
}

impl Exchange {
    /// Starts an exchange: picks the request id (incoming per policy, or generated), continues
    /// or starts the trace, labels method and endpoint, and reads the request headers the
    /// core needs. Never fails: every malformed input falls back.
    pub fn begin<H: HeaderLookup + ?Sized>(
        config: &Config,
        instance: &mut Instance,
        head: &RequestHead<'_>,
        headers: &mut H,
        now_unix_ns: u64,
        entropy: &[u8],
    ) -> Self {
        let ids = instance.next_ids(now_unix_ns, entropy);

        let mut incoming_id =
            IncomingRequestId::new(config.request_id_policy, config.request_id_max_length);
        headers.each_value(&config.request_id_header, &mut |v| incoming_id.push(v));
        let (request_id, set_request_id) = match incoming_id.finish() {
            Some(id) => (id, false),
            None => (hex_string(&ids.request_id), true),
        };

        let mut traceparent = IncomingTraceparent::default();
        headers.each_value("traceparent", &mut |v| traceparent.push(v));
        let incoming = traceparent.finish();
        let span = SpanContext::continue_or_start(
            incoming.as_ref(),
            ids.trace_id,
            ids.span_id,
            config.sample_ratio,
        );

        let mut tracestate_in = TracestateBuilder::default();
        headers.each_value("tracestate", &mut |v| tracestate_in.push(v));
        let (tracestate, tracestate_action) = if tracestate_in.values() == 0 {
            (None, TracestateKind::Keep)
        } else if incoming.is_none() {
            (None, TracestateKind::Remove)
        } else if tracestate_in.unchanged() {
            (tracestate_in.finish(), TracestateKind::Keep)
        } else {
            match tracestate_in.finish() {
                Some(joined) => (Some(joined), TracestateKind::Set),
                None => (None, TracestateKind::Remove),
            }
        };

        let method = Method::from_bytes(head.method);
        let path = strip_query(head.path_and_query);
        let endpoint = endpoint(path, &config.routes, config.endpoint_limits);

        let token_mode = token_mode(&config.token_rules, config.token_default, path);
        let mut bearer = false;
        if token_mode != TokenMode::Off {
            headers.each_value("authorization", &mut |v| bearer |= has_bearer_token(v));
        }

        let mut request_session = None;
        if config.session_id != crate::classify::SessionIdMode::Off {
            headers.each_value("mcp-session-id", &mut |v| {
                if request_session.is_none() {
                    request_session = session_label(v, config.session_id);
                }
            });
        }

        let mut accepts_sse = false;
        headers.each_value("accept", &mut |v| {
            accepts_sse |= request_wants_stream(Some(v), false, None);
        });
        let mut upgrade = false;
        headers.each_value("upgrade", &mut |v| upgrade |= !v.is_empty());
        let mut grpc = false;
        headers.each_value("content-type", &mut |v| {
            grpc |= request_wants_stream(None, false, Some(v));
        });
        let wants_stream = accepts_sse || upgrade || grpc;

        let mut request_bytes = None;
        headers.each_value("content-length", &mut |v| {
            request_bytes = parse_content_length(v);
        });

        let user_agent = if config.record_user_agent {
            let mut agent = None;
            headers.each_value("user-agent", &mut |v| {
                if agent.is_none() {
                    agent = bounded_text(v, MAX_USER_AGENT_LEN);
                }
            });
            agent
        } else {
            None
        };

        let buffer_route = config.buffer_routes.iter().any(|r| r.matches(path));
        let buffer_response = match config.buffer_responses {
            BufferMode::Always => true,
            BufferMode::Never => false,
            BufferMode::Auto => !wants_stream || buffer_route,
        };

        let mcp = config.mcp_routes.iter().any(|r| r.matches(path)).then(|| {
            let mut mcp = McpHeaders::default();
            headers.each_value(mcp_headers::MCP_METHOD, &mut |v| mcp.push_method(v));
            headers.each_value(mcp_headers::MCP_NAME, &mut |v| mcp.push_name(v));
            headers.each_value(mcp_headers::MCP_PROTOCOL_VERSION, &mut |v| {
                mcp.push_protocol_version(v);
            });
            let mut encoded = false;
            headers.each_value(CONTENT_ENCODING, &mut |v| encoded |= is_encoded(v));
            Box::new(McpOperation::begin(
                config,
                method,
                mcp,
                request_bytes,
                encoded,
            ))
        });

        let counter_candidates = config
            .counters
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.matches_request(method, path))
            .map(|(i, _)| i)
            .collect();

        Self {
            start_unix_ns: now_unix_ns,
            request_id,
            set_request_id,
            traceparent: span.traceparent(),
            parent_span_hex: span.parent_span_id.map(|p| p.to_hex_bytes()),
            span,
            tracestate,
            tracestate_action,
            method,
            endpoint,
            host: if config.record_host {
                head.authority.and_then(|a| bounded_token(a, MAX_HOST_LEN))
            } else {
                None
            },
            client_addr: if config.record_client_addr {
                head.client_addr
                    .and_then(|a| bounded_token(a, MAX_CLIENT_ADDR_LEN))
            } else {
                None
            },
            user_agent,
            request_bytes,
            bearer,
            token_mode,
            request_session,
            wants_stream,
            upgrade,
            buffer_response,
            buffer_route,
            counter_candidates,
            response: ResponseFacts::default(),
            mcp,
        }
    }

    /// `Some(n)` on an MCP route whose operation must be read from the body: the adapter reads
    /// the request body (`n` bytes, its `Content-Length`, at most `mcpBodyLimit`) before
    /// [`Exchange::upstream`], passes it on unchanged, and gives it to
    /// [`Exchange::request_body`].
    #[must_use]
    pub fn request_body_wanted(&self) -> Option<usize> {
        self.mcp.as_ref().and_then(|m| m.request_body_wanted())
    }

    /// The whole request body, as read when [`Exchange::request_body_wanted`] said so.
    pub fn request_body(&mut self, body: &[u8]) {
        if let Some(mcp) = &mut self.mcp {
            mcp.request_body(body);
        }
    }

    /// Whether the adapter should hand the response body to [`Exchange::response_chunk`] (or
    /// [`Exchange::response_body`]): an MCP request's answer, whose outcome it carries.
    #[must_use]
    pub fn response_body_wanted(&self) -> bool {
        self.mcp.as_ref().is_some_and(|m| m.wants_response_body())
    }

    /// One chunk of the response body, scanned for the MCP outcome without holding it (memory
    /// bounded by `mcpBodyLimit`); end with [`Exchange::response_end`].
    pub fn response_chunk(&mut self, config: &Config, chunk: &[u8]) {
        if let Some(mcp) = &mut self.mcp {
            mcp.response_chunk(config, chunk);
        }
    }

    /// The response body ended: the MCP outcome is decided.
    pub fn response_end(&mut self) {
        if let Some(mcp) = &mut self.mcp {
            mcp.response_end();
        }
    }

    /// A whole (buffered) response body: [`Exchange::response_chunk`] then
    /// [`Exchange::response_end`].
    pub fn response_body(&mut self, config: &Config, body: &[u8]) {
        self.response_chunk(config, body);
        self.response_end();
    }

    /// The host reported an error: a status is still implied from response headers that went
    /// out before it (an SSE stream the client closed), otherwise the reason is `error`.
    pub fn set_host_error(&mut self) {
        self.response.host_error = true;
    }

    /// Whether to buffer the response: on MCP routes (with `bufferResponses: auto`, not in
    /// `bufferRoutes`) the MCP allow-list decides, elsewhere the gateway's rule.
    fn buffer_response(&self, config: &Config) -> bool {
        let mcp = match (&self.mcp, config.buffer_responses) {
            (Some(mcp), BufferMode::Auto) if !self.buffer_route => mcp.buffering(config),
            _ => Buffering::NotMcp,
        };
        match mcp {
            Buffering::Buffer => true,
            Buffering::PassThrough => false,
            Buffering::NotMcp => self.buffer_response,
        }
    }

    /// What the adapter sets upstream and whether it buffers the response.
    #[must_use]
    pub fn upstream<'a>(&'a self, config: &'a Config) -> Upstream<'a> {
        Upstream {
            request_id_header: &config.request_id_header,
            request_id: &self.request_id,
            set_request_id: self.set_request_id,
            echo_request_id: config.echo_request_id,
            traceparent: self.traceparent.as_str(),
            tracestate: match (self.tracestate_action, &self.tracestate) {
                (TracestateKind::Set, Some(value)) => TracestateAction::Set(value),
                (TracestateKind::Remove, _) => TracestateAction::Remove,
                _ => TracestateAction::Keep,
            },
            buffer_response: self.buffer_response(config),
            is_stream: self.wants_stream,
        }
    }

    /// The request id in effect.
    #[must_use]
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The gateway's trace position (trace id, its span, the parent, sampled).
    #[must_use]
    pub fn span(&self) -> &SpanContext {
        &self.span
    }

    /// Reads the response headers this request needs ([`RESPONSE_HEADERS`], each only when
    /// it can change the record); call once, when they are known (Traefik: in
    /// `handle_response`, after the status; proxy-wasm: `on_http_response_headers`).
    /// `observed` is the status the host shows at that point (`None`: it shows none, so the
    /// headers that imply one are read). Which headers, given what is already known:
    ///
    /// - `content-type` when no status is observed (it may imply 200), the request asked for
    ///   a stream (the stream flag) or on MCP routes (the outcome's framing);
    /// - `mcp-session-id` on MCP routes (a session's start), unless `sessionId: off`;
    /// - `www-authenticate` when no status is observed (it may imply 401/403/400), or on a 4xx
    ///   where the token result looks at the challenge;
    /// - `upgrade` when no status is observed (101 when the request asked to upgrade, else
    ///   the reason the status stays unknown);
    /// - `content-length` with `recordResponseSize` only.
    ///
    /// So a plain request answered with an observed 2xx, 3xx or 5xx reads none: an adapter
    /// whose header lookups cost host calls makes no call at all (Traefik fetches the names
    /// only when a first header is asked for).
    pub fn response_headers<H: HeaderLookup + ?Sized>(
        &mut self,
        config: &Config,
        observed: Option<u16>,
        headers: &mut H,
    ) {
        let facts = &mut self.response;
        facts.seen = true;
        let unobserved = observed.is_none();
        let mcp = &mut self.mcp;
        if unobserved || self.wants_stream || mcp.is_some() {
            headers.each_value("content-type", &mut |v| {
                facts.stream |= response_is_stream(v);
                facts.signals.push_content_type(v);
                if let Some(mcp) = mcp {
                    mcp.push_response_content_type(v);
                }
            });
        }
        if mcp.is_some() && config.session_id != crate::classify::SessionIdMode::Off {
            headers.each_value("mcp-session-id", &mut |v| {
                if facts.session.is_none() {
                    facts.session = session_label(v, config.session_id);
                }
            });
        }
        let client_error = observed.is_some_and(|s| (400..500).contains(&s));
        if unobserved || (client_error && self.token_mode != TokenMode::Off) {
            headers.each_value("www-authenticate", &mut |v| {
                facts.signals.push_www_authenticate(v);
                let found = parse_www_authenticate(v);
                if found != BearerError::None && facts.challenge != BearerError::InsufficientScope {
                    facts.challenge = found;
                }
            });
        }
        if config.record_response_size {
            headers.each_value("content-length", &mut |v| {
                facts.bytes = parse_content_length(v);
            });
        }
        if unobserved {
            headers.each_value("upgrade", &mut |v| facts.signals.push_upgrade(v));
        }
    }

    /// The exchange's record, its strings borrowed from the exchange and `config`: what the
    /// adapters encode ([`RecordRef::write_ndjson_line`]) without building an owned record.
    /// `status` is the status the host showed, `None` when it could not (an unbuffered
    /// response on Traefik): then the status the response headers imply is recorded as
    /// `implied`, or why there is none. `dropped` is the emitter's count of records dropped
    /// since its previous record.
    #[must_use]
    pub fn record<'a>(
        &'a self,
        config: &'a Config,
        status: Option<u16>,
        end_unix_ns: u64,
        host_kind: HostKind,
        dropped: u64,
    ) -> RecordRef<'a> {
        let observed = status;
        let (status, status_source, status_unknown) = match observed {
            Some(code) => (Some(code), Some(StatusSource::Observed), None),
            None if !self.response.seen => (None, None, Some(UnknownStatus::Error)),
            // An error after the response headers went out (Traefik reports one when a client
            // closes an SSE stream mid-copy): the client already had the status they fix.
            None => match self.response.signals.implied_status(self.upgrade) {
                Ok(code) => (Some(code), Some(StatusSource::Implied), None),
                Err(_) if self.response.host_error => (None, None, Some(UnknownStatus::Error)),
                Err(reason) => (None, None, Some(reason)),
            },
        };
        let streamed = self.response.stream
            || status == Some(101)
            || (self.upgrade && observed.is_none())
            || (self.wants_stream && !self.response.seen);
        let token = token_result(
            self.token_mode,
            self.bearer,
            status,
            self.response.challenge,
        );
        let session = session(
            self.method,
            self.request_session.as_deref(),
            self.response.session.as_deref(),
            status,
        );
        let counters = self
            .counter_candidates
            .iter()
            .filter_map(|&i| config.counters.get(i))
            .filter(|rule| rule.matches_status(status))
            .map(|rule| rule.name.as_str())
            .collect();
        RecordRef {
            v: SCHEMA_MAJOR,
            request_id: &self.request_id,
            trace_id: self.traceparent.trace_id_hex(),
            span_id: self.traceparent.span_id_hex(),
            parent_span_id: self
                .parent_span_hex
                .as_ref()
                .and_then(|hex| core::str::from_utf8(hex).ok()),
            sampled: self.span.sampled,
            start_unix_ns: self.start_unix_ns,
            duration_ns: end_unix_ns.saturating_sub(self.start_unix_ns),
            streamed,
            method: self.method.as_str(),
            endpoint: &self.endpoint,
            status,
            status_source,
            status_unknown,
            service: &config.service,
            host: self.host.as_deref(),
            client_addr: self.client_addr.as_deref(),
            user_agent: self.user_agent.as_deref(),
            request_bytes: self.request_bytes,
            response_bytes: self.response.bytes,
            session,
            token,
            mcp: self.mcp.as_deref().map(McpOperation::facts),
            counters,
            host_kind,
            dropped,
        }
    }

    /// Ends the exchange with its owned [`Record`] (see [`Exchange::record`]).
    #[must_use]
    pub fn finish(
        self,
        config: &Config,
        status: Option<u16>,
        end_unix_ns: u64,
        host_kind: HostKind,
        dropped: u64,
    ) -> Record {
        self.record(config, status, end_unix_ns, host_kind, dropped)
            .to_record()
    }
}

fn parse_content_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(value).ok()?.parse().ok()
}

/// A host or address: printable ASCII without spaces, quotes or backslashes, at most `max`.
fn bounded_token(value: &[u8], max: usize) -> Option<String> {
    let value = value.trim_ascii();
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    ok.then(|| String::from_utf8_lossy(value).into_owned())
}

/// Free text (a user agent): cut to `max` bytes, anything but printable ASCII replaced by `?`.
fn bounded_text(value: &[u8], max: usize) -> Option<String> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return None;
    }
    let text: String = value
        .iter()
        .take(max)
        .map(|&b| {
            if b == b' ' || b.is_ascii_graphic() {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    Some(text)
}
