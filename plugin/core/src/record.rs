//! The versioned per-request record: the one format both plugins emit and the collector
//! reads, one NDJSON line per record.

use serde::{Deserialize, Serialize};

/// Major schema version this build writes and reads. A decoder ignores unknown fields of the
/// same major version and rejects any other major version.
pub const SCHEMA_MAJOR: u32 = 1;

/// Hard cap on one encoded record line, newline included. Writers shrink or drop optional
/// fields to fit; readers reject longer lines.
pub const MAX_LINE_BYTES: usize = 4096;

/// HTTP header carrying the emitter's source id on a batch `POST /v1/records`.
pub const BATCH_SOURCE_HEADER: &str = "x-gatetrace-source";
/// HTTP header carrying the batch sequence number (per source, increasing) on a batch.
pub const BATCH_SEQUENCE_HEADER: &str = "x-gatetrace-sequence";

/// One request as seen by the gateway plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Schema major version, always [`SCHEMA_MAJOR`] when written by this build.
    pub v: u32,
    pub request_id: String,
    /// 32 lowercase hex characters.
    pub trace_id: String,
    /// The gateway's own span id, 16 lowercase hex characters.
    pub span_id: String,
    /// The incoming span id when the trace was continued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    pub sampled: bool,
    /// Wall-clock start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    pub duration_ns: u64,
    /// True when the response was (or could be) a stream: SSE, upgrade, gRPC.
    #[serde(default)]
    pub streamed: bool,
    /// Normalised method: a standard method or `_OTHER`.
    pub method: String,
    /// Route template, never a raw path, never a query string.
    pub endpoint: String,
    /// Absent when the host could not know it (an unbuffered stream in Traefik).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub service: String,
    /// Request authority (host header), bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenResult>,
    /// Business counters this request matched (names from the classification rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<String>,
    pub host_kind: HostKind,
    /// Records the emitter dropped (full spool or queue) since its previous record/batch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The MCP session a request belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The `Mcp-Session-Id`, hashed unless the config asks for the raw value.
    pub id: String,
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
}
