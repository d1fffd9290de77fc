//! What a record carries about one MCP exchange ([`McpFacts`]), built from the header scan or
//! the body scan, the protocol version and the outcome. Every string is bounded: constants,
//! names of at most [`super::MAX_NAME_BYTES`], a 32-character hash, a short request id.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::headers::{McpHeaders, VersionHeader};
use super::request::RequestFacts;
use super::{
    BodySkipped, FactSource, INVALID_NAME, IdKind, MessageKind, Name, Outcome, OutcomeKind, Target,
    UnknownOutcome, hash_resource_uri,
};

/// The MCP part of a record. Field names follow the record's style (`snake_case`, absent
/// when unknown); the raw resource URI, arguments and `Mcp-Param-*` values never enter it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct McpFacts {
    /// Where `kind`, `method` and the target were read; absent when neither said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<FactSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MessageKind>,
    /// A [`super::method`] constant or `_OTHER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Cow<'static, str>>,
    /// `tools/call` only; [`INVALID_NAME`] when unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// `prompts/get` only; [`INVALID_NAME`] when unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// `resources/read` only: [`hash_resource_uri`] of the URI, or [`INVALID_NAME`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id_kind: Option<IdKind>,
    /// The JSON-RPC id as text (`jsonrpc.request.id`), when short and printable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// A [`super::version`] constant or `_OTHER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<Cow<'static, str>>,
    /// Why the request body was not read (set by the adapter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_skipped: Option<BodySkipped>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OutcomeKind>,
    /// The JSON-RPC `error.code` when `outcome` is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// Why `outcome` is `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_reason: Option<UnknownOutcome>,
}

impl McpFacts {
    /// Facts from the 2026-07-28 headers (use when [`McpHeaders::trusted`], or when the body
    /// could not be read); the protocol version is set too.
    #[must_use]
    pub fn from_headers(headers: &McpHeaders) -> Self {
        let mut facts = Self {
            source: headers.method().map(|_| FactSource::Header),
            kind: headers.kind(),
            method: headers.method().map(Cow::Borrowed),
            ..Self::default()
        };
        facts.set_target(headers.target().as_ref());
        facts.set_protocol_version(headers.protocol_version());
        facts
    }

    /// Facts from a request body scan. The protocol version comes from the header:
    /// [`Self::set_protocol_version`].
    #[must_use]
    pub fn from_request(request: &RequestFacts<'_>) -> Self {
        let mut facts = Self {
            source: Some(FactSource::Body),
            kind: Some(request.kind),
            method: request.method.map(Cow::Borrowed),
            request_id_kind: request.id.as_ref().map(super::RequestId::kind),
            request_id: request.id.as_ref().and_then(super::RequestId::value),
            ..Self::default()
        };
        facts.set_target(request.target.as_ref());
        facts
    }

    /// Records the `MCP-Protocol-Version` header's label.
    pub fn set_protocol_version(&mut self, version: Option<VersionHeader>) {
        self.protocol_version = version.map(|v| Cow::Borrowed(v.label()));
    }

    /// Records the operation's outcome.
    pub fn set_outcome(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome.kind());
        self.error_code = match outcome {
            Outcome::Error(code) => Some(code),
            _ => None,
        };
        self.outcome_reason = match outcome {
            Outcome::Unknown(reason) => Some(reason),
            _ => None,
        };
    }

    fn set_target(&mut self, target: Option<&Target<'_>>) {
        let label = |name: &Name<'_>| match name {
            Ok(name) => name.to_string(),
            Err(_) => INVALID_NAME.to_string(),
        };
        match target {
            Some(Target::Tool(name)) => self.tool = Some(label(name)),
            Some(Target::Prompt(name)) => self.prompt = Some(label(name)),
            Some(Target::Resource(uri)) => {
                self.resource_hash = Some(match uri {
                    Ok(uri) => hash_resource_uri(uri),
                    Err(_) => INVALID_NAME.to_string(),
                });
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::request::scan_request;
    use crate::mcp::{method, version};

    #[test]
    fn from_a_body() {
        let body = br#"{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"file:///srv/customer-42.pdf"}}"#;
        let mut facts = McpFacts::from_request(&scan_request(body).expect("valid"));
        facts.set_protocol_version(Some(VersionHeader::Valid(
            crate::mcp::headers::ProtocolVersion::parse(b"2025-06-18").expect("date"),
        )));
        facts.set_outcome(Outcome::Error(-32002));
        assert_eq!(facts.source, Some(FactSource::Body));
        assert_eq!(facts.method.as_deref(), Some(method::RESOURCES_READ));
        assert_eq!(
            facts.resource_hash,
            Some(hash_resource_uri("file:///srv/customer-42.pdf"))
        );
        assert_eq!(
            (facts.request_id_kind, facts.request_id.as_deref()),
            (Some(IdKind::Number), Some("9"))
        );
        assert_eq!(
            facts.protocol_version.as_deref(),
            Some(version::V2025_06_18)
        );
        assert_eq!(
            (facts.outcome, facts.error_code),
            (Some(OutcomeKind::Error), Some(-32002))
        );
        let line = serde_json::to_string(&facts).expect("serializes");
        assert!(
            !line.contains("customer-42"),
            "the URI never enters the record: {line}"
        );
        assert_eq!(
            serde_json::from_str::<McpFacts>(&line).expect("decodes"),
            facts
        );
    }

    #[test]
    fn from_headers_with_invalid_names() {
        let mut headers = McpHeaders::default();
        headers.push_method(b"tools/call");
        headers.push_name(b"=?base64?not base64?=");
        headers.push_protocol_version(b"2026-07-28");
        let mut facts = McpFacts::from_headers(&headers);
        facts.set_outcome(Outcome::Unknown(UnknownOutcome::TooLarge));
        assert_eq!(facts.source, Some(FactSource::Header));
        assert_eq!(facts.kind, Some(MessageKind::Request));
        assert_eq!(facts.tool.as_deref(), Some(INVALID_NAME));
        assert_eq!(
            facts.protocol_version.as_deref(),
            Some(version::V2026_07_28)
        );
        assert_eq!(
            (facts.outcome, facts.outcome_reason, facts.error_code),
            (
                Some(OutcomeKind::Unknown),
                Some(UnknownOutcome::TooLarge),
                None
            )
        );
        let mut version_only = McpHeaders::default();
        version_only.push_protocol_version(b"2025-11-25");
        let facts = McpFacts::from_headers(&version_only);
        assert_eq!((facts.source, facts.method), (None, None));
        assert_eq!(
            facts.protocol_version.as_deref(),
            Some(version::V2025_11_25)
        );
    }

    #[test]
    fn empty_facts_serialize_to_an_empty_object() {
        assert_eq!(
            serde_json::to_string(&McpFacts::default()).expect("serializes"),
            "{}"
        );
        let facts: McpFacts =
            serde_json::from_str(r#"{"method":"tools/call","future":1}"#).expect("decodes");
        assert_eq!(facts.method.as_deref(), Some(method::TOOLS_CALL));
    }
}
