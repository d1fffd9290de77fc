//! MCP as the gateway sees it: the operation a request carries (from the 2026-07-28 headers or
//! the JSON-RPC body), the outcome in its response, and which responses may be buffered.
//! Pure and bounded: no I/O, no panics, every label a constant or a length-capped string.
//!
//! The parts, each usable alone:
//! - [`headers`]: `Mcp-Method`, `Mcp-Name`, `MCP-Protocol-Version` (never `Mcp-Param-*`);
//! - [`request`]: the JSON-RPC request body of older clients;
//! - [`response`]: the outcome of a JSON or SSE response body, fed whole or chunk by chunk;
//! - [`policy`]: which operations may have their response buffered, and the status implied by
//!   an unbuffered response's headers;
//! - [`facts`]: [`facts::McpFacts`], what a record carries about one MCP exchange;
//! - [`operation`]: the MCP state of one exchange, fed by the adapters through `Exchange`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::hash::Sip128;
use crate::hex::hex_string;

pub mod facts;
pub mod headers;
mod json;
pub mod policy;
pub mod request;
pub mod response;

/// The MCP methods the gateway names (2025-06-18, 2025-11-25, 2026-07-28). Any other method
/// is recorded as [`method::OTHER`], so a method label has a bounded set of values.
pub mod method {
    pub const INITIALIZE: &str = "initialize";
    pub const PING: &str = "ping";
    pub const SERVER_DISCOVER: &str = "server/discover";
    pub const TOOLS_LIST: &str = "tools/list";
    pub const TOOLS_CALL: &str = "tools/call";
    pub const PROMPTS_LIST: &str = "prompts/list";
    pub const PROMPTS_GET: &str = "prompts/get";
    pub const RESOURCES_LIST: &str = "resources/list";
    pub const RESOURCES_TEMPLATES_LIST: &str = "resources/templates/list";
    pub const RESOURCES_READ: &str = "resources/read";
    pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
    pub const RESOURCES_UNSUBSCRIBE: &str = "resources/unsubscribe";
    pub const COMPLETION_COMPLETE: &str = "completion/complete";
    pub const LOGGING_SET_LEVEL: &str = "logging/setLevel";
    pub const TASKS_GET: &str = "tasks/get";
    pub const TASKS_RESULT: &str = "tasks/result";
    pub const TASKS_LIST: &str = "tasks/list";
    pub const TASKS_CANCEL: &str = "tasks/cancel";
    pub const SUBSCRIPTIONS_LISTEN: &str = "subscriptions/listen";
    /// Server-to-client requests (a client may still post them by mistake).
    pub const SAMPLING_CREATE_MESSAGE: &str = "sampling/createMessage";
    pub const ELICITATION_CREATE: &str = "elicitation/create";
    pub const ROOTS_LIST: &str = "roots/list";
    pub const NOTIFICATIONS_INITIALIZED: &str = "notifications/initialized";
    pub const NOTIFICATIONS_CANCELLED: &str = "notifications/cancelled";
    pub const NOTIFICATIONS_PROGRESS: &str = "notifications/progress";
    pub const NOTIFICATIONS_MESSAGE: &str = "notifications/message";
    pub const NOTIFICATIONS_ROOTS_LIST_CHANGED: &str = "notifications/roots/list_changed";
    pub const NOTIFICATIONS_RESOURCES_UPDATED: &str = "notifications/resources/updated";
    pub const NOTIFICATIONS_RESOURCES_LIST_CHANGED: &str = "notifications/resources/list_changed";
    pub const NOTIFICATIONS_TOOLS_LIST_CHANGED: &str = "notifications/tools/list_changed";
    pub const NOTIFICATIONS_PROMPTS_LIST_CHANGED: &str = "notifications/prompts/list_changed";
    pub const NOTIFICATIONS_TASKS_STATUS: &str = "notifications/tasks/status";
    pub const NOTIFICATIONS_ELICITATION_COMPLETE: &str = "notifications/elicitation/complete";
    /// Every method above; anything else is [`OTHER`].
    pub const KNOWN: &[&str] = &[
        INITIALIZE,
        PING,
        SERVER_DISCOVER,
        TOOLS_LIST,
        TOOLS_CALL,
        PROMPTS_LIST,
        PROMPTS_GET,
        RESOURCES_LIST,
        RESOURCES_TEMPLATES_LIST,
        RESOURCES_READ,
        RESOURCES_SUBSCRIBE,
        RESOURCES_UNSUBSCRIBE,
        COMPLETION_COMPLETE,
        LOGGING_SET_LEVEL,
        TASKS_GET,
        TASKS_RESULT,
        TASKS_LIST,
        TASKS_CANCEL,
        SUBSCRIPTIONS_LISTEN,
        SAMPLING_CREATE_MESSAGE,
        ELICITATION_CREATE,
        ROOTS_LIST,
        NOTIFICATIONS_INITIALIZED,
        NOTIFICATIONS_CANCELLED,
        NOTIFICATIONS_PROGRESS,
        NOTIFICATIONS_MESSAGE,
        NOTIFICATIONS_ROOTS_LIST_CHANGED,
        NOTIFICATIONS_RESOURCES_UPDATED,
        NOTIFICATIONS_RESOURCES_LIST_CHANGED,
        NOTIFICATIONS_TOOLS_LIST_CHANGED,
        NOTIFICATIONS_PROMPTS_LIST_CHANGED,
        NOTIFICATIONS_TASKS_STATUS,
        NOTIFICATIONS_ELICITATION_COMPLETE,
    ];
    /// A method that is not in [`KNOWN`], or is longer than any known one.
    pub const OTHER: &str = "_OTHER";
    /// Prefix of every notification method.
    pub const NOTIFICATION_PREFIX: &str = "notifications/";
}

/// MCP protocol versions the gateway names; any other is recorded as [`version::OTHER`].
pub mod version {
    pub const V2024_11_05: &str = "2024-11-05";
    pub const V2025_03_26: &str = "2025-03-26";
    pub const V2025_06_18: &str = "2025-06-18";
    pub const V2025_11_25: &str = "2025-11-25";
    /// The first version whose `Mcp-Method` / `Mcp-Name` headers servers must check against
    /// the body (SEP-2243): only from this version on are those headers trusted.
    pub const V2026_07_28: &str = "2026-07-28";
    pub const KNOWN: &[&str] = &[
        V2024_11_05,
        V2025_03_26,
        V2025_06_18,
        V2025_11_25,
        V2026_07_28,
    ];
    /// A well-formed date that is not in [`KNOWN`], or a value that is not a date.
    pub const OTHER: &str = "_OTHER";
}

/// The `resultType` of a 2026-07-28 result that asks the client for input and a retry.
pub const INPUT_REQUIRED: &str = "input_required";

/// The media type of an SSE response: a stream whose status is 200 when not buffered.
pub const SSE_MEDIA_TYPE: &[u8] = b"text/event-stream";

/// Recorded in place of a tool name, prompt name or resource hash that could not be read
/// (undecodable `=?base64?…?=`, not UTF-8, control characters, empty, too long, repeated).
pub const INVALID_NAME: &str = "_INVALID";

/// Longest tool or prompt name kept (bytes of UTF-8): MCP limits tool names to 128
/// characters of `[A-Za-z0-9_.-/]`; longer names are [`INVALID_NAME`].
pub const MAX_NAME_BYTES: usize = 128;
/// Longest resource URI read (bytes): SEP-2243's cap on a header value. It is only hashed.
pub const MAX_URI_BYTES: usize = 8192;
/// Longest string request id kept for `jsonrpc.request.id`; longer ids keep only their kind.
pub const MAX_REQUEST_ID_BYTES: usize = 64;

/// The known method `name` is, as its constant; [`method::OTHER`] for anything else.
#[must_use]
pub fn known_method(name: &[u8]) -> &'static str {
    method::KNOWN
        .iter()
        .find(|known| known.as_bytes() == name)
        .copied()
        .unwrap_or(method::OTHER)
}

/// Whether a method name is a notification's (`notifications/…`).
#[must_use]
pub fn is_notification_method(name: &[u8]) -> bool {
    name.starts_with(method::NOTIFICATION_PREFIX.as_bytes())
}

/// What kind of JSON-RPC message a client posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A method with an `id`: the server answers it.
    Request,
    /// A method without an `id`: the server answers 202, nothing streams.
    Notification,
    /// The client's answer to a server-to-client request (`result` or `error`, no method).
    Response,
    /// A JSON array of messages (2025-03-26 batching).
    Batch,
}

impl MessageKind {
    /// The serialized name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Notification => "notification",
            Self::Response => "response",
            Self::Batch => "batch",
        }
    }
}

/// The JSON type of a JSON-RPC `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    String,
    Number,
    Null,
}

impl IdKind {
    /// The serialized name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Null => "null",
        }
    }
}

/// A JSON-RPC `id`, bounded: a string id is kept only when it is at most
/// [`MAX_REQUEST_ID_BYTES`] long and has no control characters; a number only when integral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestId<'a> {
    /// A short printable string id, borrowed from the body when it had no escapes.
    Str(Cow<'a, str>),
    /// A string id too long or with control characters: only its kind is kept.
    LongStr,
    Int(i64),
    UInt(u64),
    /// A number with a fraction or exponent: only its kind is kept.
    OtherNumber,
    Null,
}

impl RequestId<'_> {
    /// The id's JSON type.
    #[must_use]
    pub fn kind(&self) -> IdKind {
        match self {
            Self::Str(_) | Self::LongStr => IdKind::String,
            Self::Int(_) | Self::UInt(_) | Self::OtherNumber => IdKind::Number,
            Self::Null => IdKind::Null,
        }
    }

    /// The id as `jsonrpc.request.id` text, when it is kept.
    #[must_use]
    pub fn value(&self) -> Option<String> {
        match self {
            Self::Str(text) => Some(text.to_string()),
            Self::Int(n) => Some(n.to_string()),
            Self::UInt(n) => Some(n.to_string()),
            Self::LongStr | Self::OtherNumber | Self::Null => None,
        }
    }
}

/// Why a name (tool, prompt, resource URI) could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameError {
    /// The method needs a name and none was given.
    Missing,
    Empty,
    /// Longer than [`MAX_NAME_BYTES`] (tool, prompt) or [`MAX_URI_BYTES`] (resource URI).
    TooLong,
    /// A `=?base64?…?=` value that is not valid standard base64.
    Undecodable,
    /// Not UTF-8, or has control characters, or (in a header) is not printable ASCII.
    NotText,
    /// The header was sent more than once.
    Repeated,
}

/// A decoded name, or why it could not be read.
pub type Name<'a> = Result<Cow<'a, str>, NameError>;

/// What an operation acts on, by method: `tools/call` a tool, `prompts/get` a prompt,
/// `resources/read` a resource. Every other method has no target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    Tool(Name<'a>),
    Prompt(Name<'a>),
    /// The raw URI: hash it ([`hash_resource_uri`]) or template it, never record it raw.
    Resource(Name<'a>),
}

impl<'a> Target<'a> {
    /// The target kind `method` has, holding `name`; `None` for methods without a target.
    #[must_use]
    pub fn for_method(method: &str, name: Name<'a>) -> Option<Self> {
        match method {
            method::TOOLS_CALL => Some(Self::Tool(name)),
            method::PROMPTS_GET => Some(Self::Prompt(name)),
            method::RESOURCES_READ => Some(Self::Resource(name)),
            _ => None,
        }
    }

    /// The longest name this target keeps.
    #[must_use]
    pub fn max_bytes(method: &str) -> usize {
        if method == method::RESOURCES_READ {
            MAX_URI_BYTES
        } else {
            MAX_NAME_BYTES
        }
    }
}

/// Checks a decoded name: not empty, at most `max_bytes`, no control characters.
pub fn checked_name(name: Cow<'_, str>, max_bytes: usize) -> Name<'_> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name.len() > max_bytes {
        Err(NameError::TooLong)
    } else if name.chars().any(char::is_control) {
        Err(NameError::NotText)
    } else {
        Ok(name)
    }
}

/// Keyed hash of a resource URI: 32 lowercase hex characters, the same on every host and
/// build, so one resource gives one value without its URI (which may carry ids or secrets)
/// ever leaving the plugin.
#[must_use]
pub fn hash_resource_uri(uri: &str) -> String {
    let mut hasher = Sip128::new(0x6d63_702d_7265_736f, 0x7572_6365_2d75_7269);
    hasher.write(uri.as_bytes());
    let (low, high) = hasher.finish128();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    hex_string(&bytes)
}

/// Where the operation's method and name were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactSource {
    /// Trusted 2026-07-28 headers (`Mcp-Method`, `Mcp-Name`).
    Header,
    /// The JSON-RPC request body.
    Body,
}

impl FactSource {
    /// The serialized name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Body => "body",
        }
    }
}

/// Why the request body was not parsed (the adapter decides; the core names the reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodySkipped {
    /// No `Content-Length` (chunked or HTTP/2 without length): reading could hold the body.
    NoLength,
    /// `Content-Length` above the configured limit.
    TooLarge,
    /// A `Content-Encoding` other than identity.
    Encoded,
    /// Read, but not a JSON-RPC message (bad JSON, wrong shape, nesting too deep).
    Invalid,
}

impl BodySkipped {
    /// The serialized name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoLength => "no_length",
            Self::TooLarge => "too_large",
            Self::Encoded => "encoded",
            Self::Invalid => "invalid",
        }
    }
}

/// Whether a record's HTTP status was seen or implied by the protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusSource {
    /// The host reported it (a buffered response, or a proxy-wasm host).
    Observed,
    /// Inferred from an unbuffered response's headers ([`policy::implied_status`]).
    Implied,
}

impl StatusSource {
    /// The serialized name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Observed => "observed",
            Self::Implied => "implied",
        }
    }
}

/// The outcome of an MCP operation, from its JSON-RPC response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A `result` that is neither a tool error nor `input_required`.
    Ok,
    /// A JSON-RPC `error` with this `code`.
    Error(i64),
    /// A `tools/call` result with `isError: true`.
    ToolError,
    /// `resultType: "input_required"` (2026-07-28): the client must retry with input.
    InputRequired,
    /// No response could be read.
    Unknown(UnknownOutcome),
}

/// The outcome without its details, as a record field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Ok,
    Error,
    ToolError,
    InputRequired,
    Unknown,
}

impl OutcomeKind {
    /// The serialized name (also the `error.type` of a tool error).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::ToolError => "tool_error",
            Self::InputRequired => "input_required",
            Self::Unknown => "unknown",
        }
    }
}

/// Why an outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownOutcome {
    /// One JSON body or SSE event was longer than the limit.
    TooLarge,
    /// The response (or its last unreadable event) is not a JSON-RPC message.
    Invalid,
    /// The body ended without a JSON-RPC response (empty, only notifications, or an SSE event
    /// cut off before its blank line).
    NoResponse,
    /// A JSON array: a batch response has no single outcome.
    Batch,
    /// The content type is neither `application/json` nor `text/event-stream`.
    ContentType,
}

impl UnknownOutcome {
    /// The serialized name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Invalid => "invalid",
            Self::NoResponse => "no_response",
            Self::Batch => "batch",
            Self::ContentType => "content_type",
        }
    }
}

impl Outcome {
    /// The outcome's kind.
    #[must_use]
    pub fn kind(self) -> OutcomeKind {
        match self {
            Self::Ok => OutcomeKind::Ok,
            Self::Error(_) => OutcomeKind::Error,
            Self::ToolError => OutcomeKind::ToolError,
            Self::InputRequired => OutcomeKind::InputRequired,
            Self::Unknown(_) => OutcomeKind::Unknown,
        }
    }
}

/// Whether a `Content-Type` value is `media` (parameters ignored, case-insensitive). Not
/// inlined: one copy serves the response scanner and the implied status (≈ 1.5 KB otherwise).
#[inline(never)]
fn media_type_is(content_type: &[u8], media: &[u8]) -> bool {
    let end = content_type
        .iter()
        .position(|&b| b == b';')
        .unwrap_or(content_type.len());
    trim_ows(&content_type[..end]).eq_ignore_ascii_case(media)
}

/// A header value without surrounding spaces and tabs.
fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_map_to_their_constants_and_others_to_other() {
        for &known in method::KNOWN {
            assert_eq!(known_method(known.as_bytes()), known);
        }
        for other in [
            &b""[..],
            b"tools/Call",
            b"tools/call ",
            b"x/y",
            &[b'a'; 10_000],
            b"\xff",
        ] {
            assert_eq!(known_method(other), method::OTHER, "{other:?}");
        }
        assert!(is_notification_method(b"notifications/initialized"));
        assert!(!is_notification_method(b"tools/call"));
    }

    #[test]
    fn serialized_names_match_as_str() {
        for kind in [
            MessageKind::Request,
            MessageKind::Notification,
            MessageKind::Response,
            MessageKind::Batch,
        ] {
            assert_eq!(json(&kind), format!("\"{}\"", kind.as_str()));
        }
        for kind in [IdKind::String, IdKind::Number, IdKind::Null] {
            assert_eq!(json(&kind), format!("\"{}\"", kind.as_str()));
        }
        for source in [FactSource::Header, FactSource::Body] {
            assert_eq!(json(&source), format!("\"{}\"", source.as_str()));
        }
        for skipped in [
            BodySkipped::NoLength,
            BodySkipped::TooLarge,
            BodySkipped::Encoded,
            BodySkipped::Invalid,
        ] {
            assert_eq!(json(&skipped), format!("\"{}\"", skipped.as_str()));
        }
        for source in [StatusSource::Observed, StatusSource::Implied] {
            assert_eq!(json(&source), format!("\"{}\"", source.as_str()));
        }
        for kind in [
            OutcomeKind::Ok,
            OutcomeKind::Error,
            OutcomeKind::ToolError,
            OutcomeKind::InputRequired,
            OutcomeKind::Unknown,
        ] {
            assert_eq!(json(&kind), format!("\"{}\"", kind.as_str()));
        }
        for reason in [
            UnknownOutcome::TooLarge,
            UnknownOutcome::Invalid,
            UnknownOutcome::NoResponse,
            UnknownOutcome::Batch,
            UnknownOutcome::ContentType,
        ] {
            assert_eq!(json(&reason), format!("\"{}\"", reason.as_str()));
        }
    }

    fn json<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).expect("serializes")
    }

    #[test]
    fn request_ids_keep_kind_and_bounded_value() {
        assert_eq!(RequestId::Str("abc".into()).value().as_deref(), Some("abc"));
        assert_eq!(RequestId::Int(-7).value().as_deref(), Some("-7"));
        assert_eq!(
            RequestId::UInt(u64::MAX).value().as_deref(),
            Some("18446744073709551615")
        );
        for (id, kind) in [
            (RequestId::LongStr, IdKind::String),
            (RequestId::OtherNumber, IdKind::Number),
            (RequestId::Null, IdKind::Null),
        ] {
            assert_eq!((id.kind(), id.value()), (kind, None));
        }
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(
            checked_name("get_weather".into(), 128).as_deref(),
            Ok("get_weather")
        );
        assert_eq!(checked_name("".into(), 128), Err(NameError::Empty));
        assert_eq!(checked_name("a\nb".into(), 128), Err(NameError::NotText));
        assert_eq!(checked_name("a\u{7f}".into(), 128), Err(NameError::NotText));
        assert_eq!(
            checked_name("é".repeat(65).into(), 128),
            Err(NameError::TooLong)
        );
        assert_eq!(
            checked_name("é".repeat(64).into(), 128).map(|n| n.len()),
            Ok(128)
        );
    }

    #[test]
    fn resource_hashes_are_stable_and_distinct() {
        let a = hash_resource_uri("file:///etc/passwd");
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(a, hash_resource_uri("file:///etc/passwd"));
        assert_ne!(a, hash_resource_uri("file:///etc/passwe"));
        assert_ne!(
            a,
            crate::classify::hash_session_id(b"file:///etc/passwd"),
            "a key of its own"
        );
    }
}
