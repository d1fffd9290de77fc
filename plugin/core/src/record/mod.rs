//! The versioned per-request record: the one format both plugins emit and the collector
//! reads, one NDJSON line per record. This file holds the types; `encode.rs` writes a line
//! (the hot path), `decode.rs` reads and validates one.

mod decode;
mod encode;

pub use decode::has_control;
pub use encode::add_dropped;

use serde::{Deserialize, Serialize};

use crate::mcp::StatusSource;
use crate::mcp::facts::McpFacts;
use crate::mcp::policy::UnknownStatus;

/// Major schema version this build writes and reads. A decoder ignores unknown fields of the
/// same major version and rejects any other major version.
pub const SCHEMA_MAJOR: u32 = 1;

/// Hard cap on one encoded record line, newline included. Writers shrink or drop optional
/// fields to fit; readers reject longer lines.
pub const MAX_LINE_BYTES: usize = 4096;

/// Longest `request_id` a decoder accepts.
pub const MAX_REQUEST_ID_BYTES: usize = 1024;

/// HTTP header carrying the emitter's source id on a batch `POST /v1/records`.
pub const BATCH_SOURCE_HEADER: &str = "x-gatetrace-source";
/// HTTP header carrying the batch sequence number (per source, increasing) on a batch.
pub const BATCH_SEQUENCE_HEADER: &str = "x-gatetrace-sequence";

/// One request as seen by the gateway plugin.
///
/// `S` is how the record holds its strings: `String` for a record that owns them (decoded, or
/// built by hand), `&str` for a [`RecordRef`] borrowed from a finished exchange, which the
/// plugins encode without copying a string; `M` likewise holds the MCP facts (owned, or
/// `&McpFacts`). One struct, so the fields are spelled once here,
/// once in `map_strings` below and once in the hand encoder (`encode.rs`), whose output the
/// tests hold byte-equal to serde's for this very struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record<S = String, M = McpFacts> {
    /// Schema major version, always [`SCHEMA_MAJOR`] when written by this build.
    pub v: u32,
    pub request_id: S,
    /// 32 lowercase hex characters.
    pub trace_id: S,
    /// The gateway's own span id, 16 lowercase hex characters.
    pub span_id: S,
    /// The incoming span id when the trace was continued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<S>,
    pub sampled: bool,
    /// Wall-clock start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    pub duration_ns: u64,
    /// True when the response was (or could be) a stream: SSE, upgrade, gRPC.
    #[serde(default)]
    pub streamed: bool,
    /// Normalised method: a standard method or `_OTHER`.
    pub method: S,
    /// Route template, never a raw path, never a query string.
    pub endpoint: S,
    /// Absent when the host could not know it (an unbuffered stream in Traefik).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// How `status` became known: read from the host, or implied by what the protocols fix
    /// (an SSE response is 200, a Bearer challenge 401/403/400). Present whenever `status` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_source: Option<StatusSource>,
    /// Why `status` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_unknown: Option<UnknownStatus>,
    pub service: S,
    /// Request authority (host header), bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session<S>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenResult>,
    /// The MCP operation, on MCP routes (`mcpRoutes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<M>,
    /// Business counters this request matched (names from the classification rules).
    /// Allocates only when a counter matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<S>,
    pub host_kind: HostKind,
    /// Records the emitter dropped (full spool or queue) since its previous record/batch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

/// A [`Record`] whose strings are borrowed: what the line encoder writes. The plugins build
/// one straight from a finished exchange (`Exchange::record` in `exchange.rs`), so the hot
/// path copies no string twice.
pub type RecordRef<'a> = Record<&'a str, &'a McpFacts>;

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl<S, M> Record<S, M> {
    /// The same record with every string passed through `to` and the MCP facts through
    /// `to_mcp`: borrowing or owning them. The one place besides the type and the encoder
    /// that names every field.
    fn map_strings<'s, T, N>(
        &'s self,
        mut to: impl FnMut(&'s S) -> T,
        to_mcp: impl FnOnce(&'s M) -> N,
    ) -> Record<T, N> {
        Record {
            v: self.v,
            request_id: to(&self.request_id),
            trace_id: to(&self.trace_id),
            span_id: to(&self.span_id),
            parent_span_id: self.parent_span_id.as_ref().map(&mut to),
            sampled: self.sampled,
            start_unix_ns: self.start_unix_ns,
            duration_ns: self.duration_ns,
            streamed: self.streamed,
            method: to(&self.method),
            endpoint: to(&self.endpoint),
            status: self.status,
            status_source: self.status_source,
            status_unknown: self.status_unknown,
            service: to(&self.service),
            host: self.host.as_ref().map(&mut to),
            client_addr: self.client_addr.as_ref().map(&mut to),
            user_agent: self.user_agent.as_ref().map(&mut to),
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            session: self.session.as_ref().map(|s| Session {
                id: to(&s.id),
                event: s.event,
            }),
            token: self.token,
            mcp: self.mcp.as_ref().map(to_mcp),
            counters: self.counters.iter().map(&mut to).collect(),
            host_kind: self.host_kind,
            dropped: self.dropped,
        }
    }
}

impl Record {
    /// The record borrowed field by field.
    fn borrowed(&self) -> RecordRef<'_> {
        self.map_strings(String::as_str, |mcp| mcp)
    }
}

impl RecordRef<'_> {
    /// The owned record.
    #[must_use]
    pub fn to_record(&self) -> Record {
        self.map_strings(|&text| text.to_owned(), |&mcp| mcp.clone())
    }
}

/// The MCP session a request belongs to (`S` as in [`Record`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session<S = String> {
    /// The `Mcp-Session-Id`, hashed unless the config asks for the raw value.
    pub id: S,
    pub event: SessionEvent,
}

/// What a request says about its MCP session's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEvent {
    /// The response carried a session id the request did not: a new session.
    Start,
    /// A request within an existing session.
    Seen,
    /// `DELETE` with the session id: the client ended it.
    End,
}

/// Token validation outcome per RFC 6750.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenResult {
    Success,
    Failure,
    Missing,
    Forbidden,
}

/// Which gateway produced the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKind {
    Traefik,
    Envoy,
    Kong,
    /// A proxy-wasm host that did not identify itself.
    ProxyWasm,
    /// The npm package's Node middleware (inside the MCP server's own process).
    Node,
    /// The npm package's `fetch`-handler wrapper (edge runtimes: Workers, Vercel Edge).
    Edge,
}

/// Why a record line could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The line (newline included) is longer than [`MAX_LINE_BYTES`].
    TooLong { len: usize },
    /// The line was written by another major schema version.
    Version { found: u64 },
    /// Not JSON, or not a record (missing or mistyped fields).
    Json(String),
    /// A field has a value no writer of this schema produces.
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong { len } => {
                write!(
                    f,
                    "record line of {len} bytes exceeds the limit of {MAX_LINE_BYTES} bytes"
                )
            }
            Self::Version { found } => write!(
                f,
                "record schema major version {found} is not supported (this build reads version {SCHEMA_MAJOR})"
            ),
            Self::Json(e) => write!(f, "record line is not a valid record: {e}"),
            Self::InvalidField { field, reason } => {
                write!(f, "record field `{field}` is invalid: {reason}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}
