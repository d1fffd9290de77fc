//! Reading a record line: the collector's side. Size cap, major version, JSON shape, then
//! the field values no writer of this schema produces (bad ids, methods, statuses).

use serde::Deserialize;

use super::{DecodeError, MAX_LINE_BYTES, MAX_REQUEST_ID_BYTES, Record, SCHEMA_MAJOR};
use crate::mcp::facts::McpFacts;
use crate::mcp::{
    self, INVALID_NAME, MAX_NAME_BYTES, MAX_REQUEST_ID_BYTES as MAX_MCP_REQUEST_ID_BYTES,
    known_method,
};
use crate::route::normalize_method;
use crate::trace::{SpanId, TraceId};

impl Record {
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
        if TraceId::from_hex(self.trace_id.as_bytes()).is_none() {
            return invalid(
                "trace_id",
                "expected 32 lowercase hex characters, not all zero",
            );
        }
        if SpanId::from_hex(self.span_id.as_bytes()).is_none() {
            return invalid(
                "span_id",
                "expected 16 lowercase hex characters, not all zero",
            );
        }
        if let Some(parent) = &self.parent_span_id
            && SpanId::from_hex(parent.as_bytes()).is_none()
        {
            return invalid(
                "parent_span_id",
                "expected 16 lowercase hex characters, not all zero",
            );
        }
        if self.request_id.is_empty()
            || self.request_id.len() > MAX_REQUEST_ID_BYTES
            || has_control(&self.request_id)
        {
            return invalid(
                "request_id",
                "expected 1 to 1024 bytes without control characters",
            );
        }
        if normalize_method(&self.method) != self.method {
            return invalid("method", "expected a standard method or _OTHER");
        }
        if self.endpoint.is_empty() || has_control(&self.endpoint) {
            return invalid("endpoint", "expected a non-empty route template");
        }
        if self.status.is_some_and(|s| !(100..=999).contains(&s)) {
            return invalid("status", "expected an HTTP status from 100 to 999");
        }
        if self.status.is_none() && self.status_source.is_some() {
            return invalid("status_source", "present without a status");
        }
        match &self.mcp {
            Some(mcp) => validate_mcp(mcp),
            None => Ok(()),
        }
    }
}

/// The MCP facts become metric labels: every string must be one a writer of this schema makes
/// (a known method or version, or `_OTHER`; a bounded printable name).
fn validate_mcp(mcp: &McpFacts) -> Result<(), DecodeError> {
    let invalid = |field, reason| Err(DecodeError::InvalidField { field, reason });
    let printable =
        |text: &str, max: usize| !text.is_empty() && text.len() <= max && !has_control(text);
    if let Some(method) = mcp.method.as_deref()
        && known_method(method.as_bytes()) != method
    {
        return invalid("mcp.method", "expected a known MCP method or _OTHER");
    }
    if let Some(version) = mcp.protocol_version.as_deref()
        && version != mcp::version::OTHER
        && !mcp::version::KNOWN.contains(&version)
    {
        return invalid(
            "mcp.protocol_version",
            "expected a known MCP protocol version or _OTHER",
        );
    }
    for (field, name) in [("mcp.tool", &mcp.tool), ("mcp.prompt", &mcp.prompt)] {
        if name
            .as_deref()
            .is_some_and(|name| !printable(name, MAX_NAME_BYTES))
        {
            return invalid(field, "expected 1 to 128 bytes without control characters");
        }
    }
    if let Some(hash) = mcp.resource_hash.as_deref()
        && hash != INVALID_NAME
        && (hash.len() != 32 || !hash.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return invalid(
            "mcp.resource_hash",
            "expected 32 hex characters or _INVALID",
        );
    }
    if mcp
        .request_id
        .as_deref()
        .is_some_and(|id| !printable(id, MAX_MCP_REQUEST_ID_BYTES))
    {
        return invalid(
            "mcp.request_id",
            "expected 1 to 64 bytes without control characters",
        );
    }
    Ok(())
}

/// Whether `text` holds a control character ([`char::is_control`]: C0, DEL, C1). A branch-free
/// pass over the bytes first (the record decoder's hot path): only a line with a C0 byte, DEL
/// or the lead byte `0xC2` of a C1 character (U+0080–U+009F) is decoded char by char.
#[must_use]
pub fn has_control(text: &str) -> bool {
    let candidate = text.bytes().fold(false, |seen, b| {
        seen | (b < 0x20) | (b == 0x7f) | (b == 0xc2)
    });
    candidate && text.chars().any(char::is_control)
}

/// Reads only the version of a line that failed to decode as a record.
#[derive(Deserialize)]
struct VersionProbe {
    v: Option<u64>,
}
