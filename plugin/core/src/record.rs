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

/// A [`Record`] whose strings are borrowed: what the line encoder writes. The plugins build
/// one straight from a finished exchange ([`crate::exchange::Exchange::record`]), so the hot
/// path copies no string twice; [`Record::borrowed`] gives one for an owned record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub v: u32,
    pub request_id: &'a str,
    pub trace_id: &'a str,
    pub span_id: &'a str,
    pub parent_span_id: Option<&'a str>,
    pub sampled: bool,
    pub start_unix_ns: u64,
    pub duration_ns: u64,
    pub streamed: bool,
    pub method: &'a str,
    pub endpoint: &'a str,
    pub status: Option<u16>,
    pub service: &'a str,
    pub host: Option<&'a str>,
    pub client_addr: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_bytes: Option<u64>,
    pub response_bytes: Option<u64>,
    pub session: Option<SessionRef<'a>>,
    pub token: Option<TokenResult>,
    /// Allocates only when a counter matched.
    pub counters: Vec<&'a str>,
    pub host_kind: HostKind,
    pub dropped: u64,
}

/// A [`Session`] with a borrowed id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRef<'a> {
    pub id: &'a str,
    pub event: SessionEvent,
}

impl RecordRef<'_> {
    /// Appends the record as one NDJSON line to `out` (reusing its allocation). When the line
    /// would be longer than [`MAX_LINE_BYTES`], optional fields are dropped and long strings
    /// cut, in that order, until it fits; a longer line is never written.
    pub fn write_ndjson_line(&self, out: &mut Vec<u8>) {
        let start = out.len();
        if crate::line::append_line(self, out) {
            return;
        }
        let mut shrunk = self.clone();
        let steps: [fn(&mut Self); 5] = [
            |r| r.user_agent = None,
            |r| r.client_addr = None,
            |r| r.host = None,
            |r| r.shorten_strings(128, 16),
            |r| r.shorten_strings(32, 4),
        ];
        for step in steps {
            step(&mut shrunk);
            if crate::line::append_line(&shrunk, out) {
                return;
            }
        }
        // Unreachable in practice: after the last step every string is at most 32 characters
        // (≤ 192 encoded bytes each), far below the cap. Keep the promise regardless.
        out.truncate(start);
    }

    /// The owned record.
    #[must_use]
    pub fn to_record(&self) -> Record {
        Record {
            v: self.v,
            request_id: self.request_id.to_owned(),
            trace_id: self.trace_id.to_owned(),
            span_id: self.span_id.to_owned(),
            parent_span_id: self.parent_span_id.map(str::to_owned),
            sampled: self.sampled,
            start_unix_ns: self.start_unix_ns,
            duration_ns: self.duration_ns,
            streamed: self.streamed,
            method: self.method.to_owned(),
            endpoint: self.endpoint.to_owned(),
            status: self.status,
            service: self.service.to_owned(),
            host: self.host.map(str::to_owned),
            client_addr: self.client_addr.map(str::to_owned),
            user_agent: self.user_agent.map(str::to_owned),
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            session: self.session.map(|s| Session {
                id: s.id.to_owned(),
                event: s.event,
            }),
            token: self.token,
            counters: self.counters.iter().map(|&c| c.to_owned()).collect(),
            host_kind: self.host_kind,
            dropped: self.dropped,
        }
    }

    fn shorten_strings(&mut self, max_chars: usize, max_counters: usize) {
        for text in [
            &mut self.request_id,
            &mut self.trace_id,
            &mut self.span_id,
            &mut self.method,
            &mut self.endpoint,
            &mut self.service,
        ] {
            truncate_chars(text, max_chars);
        }
        for text in [
            &mut self.parent_span_id,
            &mut self.host,
            &mut self.client_addr,
            &mut self.user_agent,
        ]
        .into_iter()
        .flatten()
        {
            truncate_chars(text, max_chars);
        }
        if let Some(session) = &mut self.session {
            truncate_chars(&mut session.id, max_chars);
        }
        self.counters.truncate(max_counters);
        for name in &mut self.counters {
            truncate_chars(name, max_chars);
        }
    }
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

/// Longest `request_id` a decoder accepts.
pub const MAX_REQUEST_ID_BYTES: usize = 1024;

impl Record {
    /// The record as one NDJSON line (JSON + `\n`), at most [`MAX_LINE_BYTES`] long.
    #[must_use]
    pub fn to_ndjson_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_ndjson_line(&mut out);
        out
    }

    /// Appends the record as one NDJSON line to `out`; see [`RecordRef::write_ndjson_line`].
    pub fn write_ndjson_line(&self, out: &mut Vec<u8>) {
        self.borrowed().write_ndjson_line(out);
    }

    /// The record borrowed field by field.
    #[must_use]
    pub fn borrowed(&self) -> RecordRef<'_> {
        RecordRef {
            v: self.v,
            request_id: &self.request_id,
            trace_id: &self.trace_id,
            span_id: &self.span_id,
            parent_span_id: self.parent_span_id.as_deref(),
            sampled: self.sampled,
            start_unix_ns: self.start_unix_ns,
            duration_ns: self.duration_ns,
            streamed: self.streamed,
            method: &self.method,
            endpoint: &self.endpoint,
            status: self.status,
            service: &self.service,
            host: self.host.as_deref(),
            client_addr: self.client_addr.as_deref(),
            user_agent: self.user_agent.as_deref(),
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            session: self.session.as_ref().map(|s| SessionRef {
                id: &s.id,
                event: s.event,
            }),
            token: self.token,
            counters: self.counters.iter().map(String::as_str).collect(),
            host_kind: self.host_kind,
            dropped: self.dropped,
        }
    }

    /// Decodes one NDJSON line (with or without its `\n`). Unknown fields of major version
    /// [`SCHEMA_MAJOR`] are ignored; another major version, an oversize line, bad JSON and
    /// invalid ids are errors.
    pub fn from_ndjson_line(line: &[u8]) -> Result<Self, DecodeError> {
        if line.len() > MAX_LINE_BYTES {
            return Err(DecodeError::TooLong { len: line.len() });
        }
        let json = line.strip_suffix(b"\n").unwrap_or(line);
        let json = json.strip_suffix(b"\r").unwrap_or(json);
        let record: Self = match serde_json::from_slice(json) {
            Ok(record) => record,
            Err(e) => {
                if let Ok(VersionProbe { v: Some(found) }) =
                    serde_json::from_slice::<VersionProbe>(json)
                    && found != u64::from(SCHEMA_MAJOR)
                {
                    return Err(DecodeError::Version { found });
                }
                return Err(DecodeError::Json(e.to_string()));
            }
        };
        if record.v != SCHEMA_MAJOR {
            return Err(DecodeError::Version {
                found: u64::from(record.v),
            });
        }
        record.validate()?;
        Ok(record)
    }

    fn validate(&self) -> Result<(), DecodeError> {
        let invalid = |field, reason| Err(DecodeError::InvalidField { field, reason });
        if crate::trace::TraceId::from_hex(self.trace_id.as_bytes()).is_none() {
            return invalid(
                "trace_id",
                "expected 32 lowercase hex characters, not all zero",
            );
        }
        if crate::trace::SpanId::from_hex(self.span_id.as_bytes()).is_none() {
            return invalid(
                "span_id",
                "expected 16 lowercase hex characters, not all zero",
            );
        }
        if let Some(parent) = &self.parent_span_id
            && crate::trace::SpanId::from_hex(parent.as_bytes()).is_none()
        {
            return invalid(
                "parent_span_id",
                "expected 16 lowercase hex characters, not all zero",
            );
        }
        if self.request_id.is_empty()
            || self.request_id.len() > MAX_REQUEST_ID_BYTES
            || self.request_id.chars().any(char::is_control)
        {
            return invalid(
                "request_id",
                "expected 1 to 1024 bytes without control characters",
            );
        }
        if crate::route::normalize_method(&self.method) != self.method {
            return invalid("method", "expected a standard method or _OTHER");
        }
        if self.endpoint.is_empty() || self.endpoint.chars().any(char::is_control) {
            return invalid("endpoint", "expected a non-empty route template");
        }
        if self.status.is_some_and(|s| !(100..=999).contains(&s)) {
            return invalid("status", "expected an HTTP status from 100 to 999");
        }
        Ok(())
    }
}

/// Reads only the version of a line that failed to decode as a record.
#[derive(Deserialize)]
struct VersionProbe {
    v: Option<u64>,
}

fn truncate_chars(text: &mut &str, max_chars: usize) {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        *text = &text[..cut];
    }
}
