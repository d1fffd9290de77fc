//! What a request means for the MCP OAuth gateway, from headers readable without buffering:
//! the MCP session and its start/end, the token validation result (RFC 6750), business
//! counters from rules, and whether the exchange is (or may be) a stream.

pub use crate::bearer::{BearerError, has_bearer_token, parse_www_authenticate};
use crate::bearer::{find_ignore_case, trim};
use crate::hash::Sip128;
use crate::hex::hex_string;
use crate::record::{Session, SessionEvent, TokenResult};
use crate::route::{Method, RoutePattern};

/// Longest session id shown raw (`sessionId: raw`); longer or odd ids are hashed anyway.
pub const MAX_RAW_SESSION_ID: usize = 128;

/// How the MCP session id enters a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionIdMode {
    /// A keyed hash (32 hex characters), the same on every host and build.
    #[default]
    Hash,
    /// The id itself when it is printable ASCII of at most [`MAX_RAW_SESSION_ID`] bytes.
    Raw,
    /// No session in records.
    Off,
}

/// How a route treats bearer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenMode {
    /// A request without a token is `missing`.
    Required,
    /// `success` / `failure` / `forbidden` when a token or an auth error is seen; no `missing`.
    #[default]
    Optional,
    /// No token result at all.
    Off,
}

/// A per-route token rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRule {
    pub route: RoutePattern,
    pub mode: TokenMode,
}

/// Which statuses a counter rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    Exact(u16),
    /// `2xx` is `Class(2)`.
    Class(u8),
}

impl StatusMatch {
    /// Whether `status` matches.
    #[must_use]
    pub fn matches(self, status: u16) -> bool {
        match self {
            Self::Exact(s) => s == status,
            Self::Class(c) => status / 100 == u16::from(c),
        }
    }
}

/// A business counter: requests matching all given parts count under `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRule {
    pub name: String,
    pub method: Option<Method>,
    pub route: Option<RoutePattern>,
    /// A rule with a status never matches a request whose status is unknown.
    pub status: Option<StatusMatch>,
}

impl CounterRule {
    /// Whether the request part (method and path) matches; the status is checked at the end.
    #[must_use]
    pub fn matches_request(&self, method: Method, path: &[u8]) -> bool {
        self.method.is_none_or(|m| m == method)
            && self.route.as_ref().is_none_or(|r| r.matches(path))
    }

    /// Whether the final status matches.
    #[must_use]
    pub fn matches_status(&self, status: Option<u16>) -> bool {
        match (self.status, status) {
            (None, _) => true,
            (Some(rule), Some(status)) => rule.matches(status),
            (Some(_), None) => false,
        }
    }
}

/// The token mode of a path: the first matching rule, else `default`.
#[must_use]
pub fn token_mode(rules: &[TokenRule], default: TokenMode, path: &[u8]) -> TokenMode {
    rules
        .iter()
        .find(|r| r.route.matches(path))
        .map_or(default, |r| r.mode)
}

/// The token result per RFC 6750: `forbidden` on 403 or `insufficient_scope`; `failure` when
/// a token was sent and the answer is 401 or `invalid_token`; `missing` when no token was
/// sent and the route requires one (or the server answered 401 asking for one); `success`
/// when a token was sent and not refused. `None` when there is nothing to say or the mode is
/// `off`.
#[must_use]
pub fn token_result(
    mode: TokenMode,
    bearer: bool,
    status: Option<u16>,
    challenge: BearerError,
) -> Option<TokenResult> {
    if mode == TokenMode::Off {
        return None;
    }
    if challenge == BearerError::InsufficientScope || (status == Some(403) && bearer) {
        return Some(TokenResult::Forbidden);
    }
    let refused = status == Some(401) || matches!(challenge, BearerError::InvalidToken);
    match (bearer, refused) {
        (true, true) => Some(TokenResult::Failure),
        (true, false) => Some(TokenResult::Success),
        (false, true) => Some(TokenResult::Missing),
        (false, false) if mode == TokenMode::Required => Some(TokenResult::Missing),
        (false, false) => None,
    }
}

/// The session id as it enters a record, per `mode`.
#[must_use]
pub fn session_label(raw: &[u8], mode: SessionIdMode) -> Option<String> {
    let raw = trim(raw);
    if raw.is_empty() {
        return None;
    }
    match mode {
        SessionIdMode::Off => None,
        SessionIdMode::Raw
            if raw.len() <= MAX_RAW_SESSION_ID
                && raw.iter().all(u8::is_ascii_graphic)
                && !raw.contains(&b'"')
                && !raw.contains(&b'\\') =>
        {
            Some(String::from_utf8_lossy(raw).into_owned())
        }
        SessionIdMode::Raw | SessionIdMode::Hash => Some(hash_session_id(raw)),
    }
}

/// Keyed hash of a session id: 32 lowercase hex characters, stable on every host and build,
/// so the collector can pair a session's start and end.
#[must_use]
pub fn hash_session_id(raw: &[u8]) -> String {
    let mut hasher = Sip128::new(0x6d63_702d_7365_7373, 0x696f_6e2d_6964_2d31);
    hasher.write(raw);
    let (low, high) = hasher.finish128();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    hex_string(&bytes)
}

/// The session a request belongs to: `end` for a `DELETE` carrying the id that was not
/// refused (status unknown or below 400), `start` when the response carries an id the request
/// did not, `seen` for any other request carrying an id. Ids are already labelled
/// ([`session_label`]).
#[must_use]
pub fn session<'a>(
    method: Method,
    request_id: Option<&'a str>,
    response_id: Option<&'a str>,
    status: Option<u16>,
) -> Option<Session<&'a str>> {
    let not_refused = status.is_none_or(|s| s < 400);
    let (id, event) = match (request_id, response_id) {
        (Some(id), _) if method == Method::Delete && not_refused => (id, SessionEvent::End),
        (request, Some(response)) if request != Some(response) && not_refused => {
            (response, SessionEvent::Start)
        }
        (Some(id), _) => (id, SessionEvent::Seen),
        (None, _) => return None,
    };
    Some(Session { id, event })
}

/// Whether the request asks for a stream: `Accept` lists `text/event-stream`, an `Upgrade`
/// header is present, or the content type is gRPC.
#[must_use]
pub fn request_wants_stream(
    accept: Option<&[u8]>,
    upgrade: bool,
    content_type: Option<&[u8]>,
) -> bool {
    upgrade
        || accept.is_some_and(|a| find_ignore_case(a, b"text/event-stream").is_some())
        || content_type.is_some_and(is_grpc)
}

/// Whether a response content type is a stream: SSE or gRPC.
#[must_use]
pub fn response_is_stream(content_type: &[u8]) -> bool {
    let ct = trim(content_type);
    starts_with_ignore_case(ct, b"text/event-stream") || is_grpc(ct)
}

fn is_grpc(content_type: &[u8]) -> bool {
    starts_with_ignore_case(trim(content_type), b"application/grpc")
}

fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack.len() >= prefix.len() && haystack[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_presence_only() {
        assert!(has_bearer_token(b"Bearer abc"));
        assert!(has_bearer_token(b"bearer abc"));
        assert!(has_bearer_token(b"  BEARER   a.b.c "));
        assert!(!has_bearer_token(b"Bearer "));
        assert!(!has_bearer_token(b"Bearer"));
        assert!(!has_bearer_token(b"Basic dXNlcjpwYXNz"));
        assert!(!has_bearer_token(b"Bearerabc"));
        assert!(!has_bearer_token(b""));
    }

    #[test]
    fn www_authenticate_errors() {
        assert_eq!(
            parse_www_authenticate(b"Bearer error=\"invalid_token\", error_description=\"x\""),
            BearerError::InvalidToken
        );
        assert_eq!(
            parse_www_authenticate(
                b"Bearer realm=\"x\", error=\"insufficient_scope\", scope=\"a\""
            ),
            BearerError::InsufficientScope
        );
        assert_eq!(
            parse_www_authenticate(b"Bearer error=invalid_request"),
            BearerError::InvalidRequest
        );
        assert_eq!(
            parse_www_authenticate(b"Bearer realm=\"example\""),
            BearerError::Challenge
        );
        assert_eq!(
            parse_www_authenticate(b"Basic realm=\"x\""),
            BearerError::None
        );
        assert_eq!(parse_www_authenticate(b""), BearerError::None);
    }

    #[test]
    fn token_results_follow_rfc_6750() {
        use TokenMode::{Off, Optional, Required};
        use TokenResult::{Failure, Forbidden, Missing, Success};
        let none = BearerError::None;
        assert_eq!(token_result(Required, true, Some(200), none), Some(Success));
        assert_eq!(token_result(Optional, true, None, none), Some(Success));
        assert_eq!(token_result(Required, true, Some(401), none), Some(Failure));
        assert_eq!(
            token_result(Optional, true, Some(200), BearerError::InvalidToken),
            Some(Failure)
        );
        assert_eq!(
            token_result(Required, false, Some(200), none),
            Some(Missing)
        );
        assert_eq!(
            token_result(Optional, false, Some(401), BearerError::Challenge),
            Some(Missing)
        );
        assert_eq!(token_result(Optional, false, Some(200), none), None);
        assert_eq!(
            token_result(Required, true, Some(403), BearerError::InsufficientScope),
            Some(Forbidden)
        );
        assert_eq!(
            token_result(Optional, true, Some(403), none),
            Some(Forbidden)
        );
        assert_eq!(
            token_result(Off, true, Some(401), BearerError::InvalidToken),
            None
        );
    }

    #[test]
    fn token_mode_per_route() {
        let rules = [
            TokenRule {
                route: RoutePattern::parse("/mcp/*").expect("valid"),
                mode: TokenMode::Required,
            },
            TokenRule {
                route: RoutePattern::parse("/health").expect("valid"),
                mode: TokenMode::Off,
            },
        ];
        assert_eq!(
            token_mode(&rules, TokenMode::Optional, b"/mcp"),
            TokenMode::Required
        );
        assert_eq!(
            token_mode(&rules, TokenMode::Optional, b"/mcp/x"),
            TokenMode::Required
        );
        assert_eq!(
            token_mode(&rules, TokenMode::Optional, b"/health"),
            TokenMode::Off
        );
        assert_eq!(
            token_mode(&rules, TokenMode::Optional, b"/register"),
            TokenMode::Optional
        );
    }

    #[test]
    fn sessions_start_continue_and_end() {
        let start = session(Method::Post, None, Some("s1"), Some(200)).expect("start");
        assert_eq!((start.id, start.event), ("s1", SessionEvent::Start));
        let seen = session(Method::Post, Some("s1"), Some("s1"), Some(200)).expect("seen");
        assert_eq!(seen.event, SessionEvent::Seen);
        let end = session(Method::Delete, Some("s1"), None, Some(204)).expect("end");
        assert_eq!(end.event, SessionEvent::End);
        let refused = session(Method::Delete, Some("s1"), None, Some(405)).expect("seen");
        assert_eq!(refused.event, SessionEvent::Seen);
        let stream_end = session(Method::Delete, Some("s1"), None, None).expect("end");
        assert_eq!(stream_end.event, SessionEvent::End);
        let renewed = session(Method::Post, Some("old"), Some("new"), Some(200)).expect("start");
        assert_eq!((renewed.id, renewed.event), ("new", SessionEvent::Start));
        assert_eq!(session(Method::Post, None, Some("s1"), Some(500)), None);
        assert_eq!(session(Method::Get, None, None, Some(200)), None);
    }

    #[test]
    fn session_labels_hash_by_default() {
        let hashed = session_label(b"abc", SessionIdMode::Hash).expect("hashed");
        // Pinned: the collector pairs a session's start and end across hosts and builds.
        assert_eq!(hashed, "7707229b03e3d6cefb5ff8f406fec004");
        assert_eq!(
            hash_session_id(&[b'7'; 100]),
            "3c625d69c097d1a31d119a66d882b942"
        );
        assert_ne!(hashed, "abc");
        assert_eq!(session_label(b"abc", SessionIdMode::Hash), Some(hashed));
        assert_eq!(
            session_label(b"abc", SessionIdMode::Raw).as_deref(),
            Some("abc")
        );
        assert_eq!(
            session_label(b"a\"bc", SessionIdMode::Raw).map(|s| s.len()),
            Some(32)
        );
        assert_eq!(
            session_label(&[b'x'; 10_000], SessionIdMode::Raw).map(|s| s.len()),
            Some(32)
        );
        assert_eq!(
            session_label(b"\xff\x00", SessionIdMode::Raw).map(|s| s.len()),
            Some(32)
        );
        assert_eq!(session_label(b"abc", SessionIdMode::Off), None);
        assert_eq!(session_label(b"  ", SessionIdMode::Hash), None);
    }

    #[test]
    fn counters_match_method_route_and_status() {
        let rule = CounterRule {
            name: "client_registrations".to_string(),
            method: Some(Method::Post),
            route: Some(RoutePattern::parse("/register").expect("valid")),
            status: Some(StatusMatch::Exact(201)),
        };
        assert!(rule.matches_request(Method::Post, b"/register/"));
        assert!(!rule.matches_request(Method::Get, b"/register"));
        assert!(!rule.matches_request(Method::Post, b"/register/x"));
        assert!(rule.matches_status(Some(201)));
        assert!(!rule.matches_status(Some(200)));
        assert!(!rule.matches_status(None));
        assert!(StatusMatch::Class(2).matches(204));
        assert!(!StatusMatch::Class(2).matches(301));
    }

    #[test]
    fn stream_detection() {
        assert!(request_wants_stream(
            Some(b"application/json, text/event-stream"),
            false,
            None
        ));
        assert!(request_wants_stream(
            Some(b"TEXT/EVENT-STREAM"),
            false,
            None
        ));
        assert!(request_wants_stream(None, true, None));
        assert!(request_wants_stream(
            None,
            false,
            Some(b"application/grpc+proto")
        ));
        assert!(!request_wants_stream(
            Some(b"application/json"),
            false,
            Some(b"application/json")
        ));
        assert!(response_is_stream(b"text/event-stream; charset=utf-8"));
        assert!(!response_is_stream(b"application/json"));
    }
}
