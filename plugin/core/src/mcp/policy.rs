//! Which MCP operations may have their response buffered (so status and outcome are known),
//! and the status the protocols imply for a response that was not buffered.
//!
//! Buffering holds a response until it is complete. An MCP stream may carry progress, logs,
//! sampling or elicitation requests the client must answer mid-call; holding it back stalls or
//! deadlocks the call. So only operations whose servers answer at once are buffered: an exact
//! allow-list. **The list relies on servers not sending server-to-client requests from the
//! handlers of the listed methods** (`initialize`, `ping` and the `*/list` methods answer at
//! once in every SDK — a convention, not a guarantee of the specification).

use serde::{Deserialize, Serialize};

use super::{MessageKind, SSE_MEDIA_TYPE, known_method, media_type_is, method};
use crate::bearer::{BearerError, parse_www_authenticate};
use crate::route::Method;

/// The methods whose responses are buffered by default.
pub const DEFAULT_BUFFERED_METHODS: &[&str] = &[
    method::INITIALIZE,
    method::PING,
    method::SERVER_DISCOVER,
    method::TOOLS_LIST,
    method::PROMPTS_LIST,
    method::RESOURCES_LIST,
    method::RESOURCES_TEMPLATES_LIST,
    method::COMPLETION_COMPLETE,
    method::LOGGING_SET_LEVEL,
];

/// Methods whose responses may stream server-to-client requests: never buffered, and refused
/// in a configured allow-list (a route whose server never streams opts in with
/// `server_streams: false` instead).
pub const NEVER_BUFFERED_METHODS: &[&str] = &[
    method::TOOLS_CALL,
    method::RESOURCES_READ,
    method::PROMPTS_GET,
    method::TASKS_RESULT,
    method::SUBSCRIPTIONS_LISTEN,
];

/// Allow-list entry for every notification (answered `202 Accepted`, no body).
pub const NOTIFICATIONS_ENTRY: &str = "notifications";
/// Allow-list entry for client responses to server requests (answered `202 Accepted`).
pub const RESPONSES_ENTRY: &str = "responses";
/// Allow-list entry for `DELETE` (ends a session; answered at once).
pub const DELETE_ENTRY: &str = "DELETE";

/// What to do with an MCP route's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffering {
    /// Buffer it: the server answers at once.
    Buffer,
    /// Let it pass as it comes: it may stream, or the operation is unknown.
    PassThrough,
    /// Not an MCP message (an HTTP method other than `POST`, `GET`, `DELETE`): the gateway's
    /// ordinary rule applies.
    NotMcp,
}

/// The response-buffering allow-list of an MCP route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferPolicy {
    methods: Vec<&'static str>,
    notifications: bool,
    responses: bool,
    delete: bool,
}

impl Default for BufferPolicy {
    /// [`DEFAULT_BUFFERED_METHODS`], notifications, client responses and `DELETE`.
    fn default() -> Self {
        Self {
            methods: DEFAULT_BUFFERED_METHODS.to_vec(),
            notifications: true,
            responses: true,
            delete: true,
        }
    }
}

impl BufferPolicy {
    /// A policy from configured entries: known MCP methods, [`NOTIFICATIONS_ENTRY`],
    /// [`RESPONSES_ENTRY`], [`DELETE_ENTRY`]. An unknown entry or one of
    /// [`NEVER_BUFFERED_METHODS`] is an error naming it.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut policy = Self {
            methods: Vec::new(),
            notifications: false,
            responses: false,
            delete: false,
        };
        for entry in entries {
            match entry {
                NOTIFICATIONS_ENTRY => policy.notifications = true,
                RESPONSES_ENTRY => policy.responses = true,
                DELETE_ENTRY => policy.delete = true,
                _ if NEVER_BUFFERED_METHODS.contains(&entry) => {
                    return Err(format!(
                        "`{entry}` may stream requests the client must answer mid-call, so its \
                         response is never buffered (a route whose server answers only JSON can \
                         set server streams off instead)"
                    ));
                }
                _ => match known_method(entry.as_bytes()) {
                    method::OTHER => {
                        return Err(format!(
                            "`{entry}` is not an MCP method this build knows, nor \
                             `{NOTIFICATIONS_ENTRY}`, `{RESPONSES_ENTRY}` or `{DELETE_ENTRY}`"
                        ));
                    }
                    known if !policy.methods.contains(&known) => policy.methods.push(known),
                    _ => {}
                },
            }
        }
        Ok(policy)
    }

    /// Whether to buffer the response to a request with HTTP method `http` carrying a message
    /// of `kind` with `method` (as read from trusted headers or the body; `None` when
    /// unknown). `server_streams: false` says the route's server answers every `POST` with
    /// JSON, so any `POST` may be buffered except `subscriptions/listen`. `GET` (a server
    /// stream), batches and unknown operations always pass through.
    #[must_use]
    pub fn decide(
        &self,
        http: Method,
        kind: Option<MessageKind>,
        method: Option<&str>,
        server_streams: bool,
    ) -> Buffering {
        let allowed = |yes: bool| {
            if yes {
                Buffering::Buffer
            } else {
                Buffering::PassThrough
            }
        };
        match http {
            Method::Get => Buffering::PassThrough,
            Method::Delete => allowed(self.delete),
            Method::Post if method == Some(method::SUBSCRIPTIONS_LISTEN) => Buffering::PassThrough,
            Method::Post if !server_streams => Buffering::Buffer,
            Method::Post => allowed(match kind {
                Some(MessageKind::Notification) => self.notifications,
                Some(MessageKind::Response) => self.responses,
                Some(MessageKind::Request) => method.is_some_and(|m| self.methods.contains(&m)),
                Some(MessageKind::Batch) | None => false,
            }),
            _ => Buffering::NotMcp,
        }
    }
}

/// Why no status is implied for an unbuffered response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownStatus {
    /// No `Content-Type` and nothing else that fixes the status.
    NoContentType,
    /// A content type other than `text/event-stream` (e.g. JSON): any status is possible.
    NotEventStream,
    /// An `Upgrade` response header, but the request did not ask to upgrade.
    UpgradeNotAsked,
    /// The host reported an error instead of a response (e.g. the upstream was unreachable).
    Error,
}

impl UnknownStatus {
    /// The serialized name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoContentType => "no_content_type",
            Self::NotEventStream => "not_event_stream",
            Self::UpgradeNotAsked => "upgrade_not_asked",
            Self::Error => "error",
        }
    }
}

/// The response headers that fix a status, pushed value by value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseSignals {
    content_type: Option<bool>,
    challenge: Option<BearerError>,
    upgrade: bool,
}

impl ResponseSignals {
    /// Adds one `Content-Type` value.
    pub fn push_content_type(&mut self, value: &[u8]) {
        let sse = media_type_is(value, SSE_MEDIA_TYPE);
        self.content_type = Some(self.content_type.unwrap_or(false) || sse);
    }

    /// Adds one `WWW-Authenticate` value (read with [`parse_www_authenticate`]); any challenge
    /// counts, and `insufficient_scope` outranks `invalid_request`, which outranks the rest.
    pub fn push_www_authenticate(&mut self, value: &[u8]) {
        let found = parse_www_authenticate(value);
        let rank = |e: Option<BearerError>| match e {
            Some(BearerError::InsufficientScope) => 2,
            Some(BearerError::InvalidRequest) => 1,
            _ => 0,
        };
        if self.challenge.is_none() || rank(Some(found)) > rank(self.challenge) {
            self.challenge = Some(found);
        }
    }

    /// Adds one `Upgrade` value.
    pub fn push_upgrade(&mut self, value: &[u8]) {
        self.upgrade |= !super::trim_ows(value).is_empty();
    }

    /// The status the protocols fix for an unbuffered response: a challenge is 403 with
    /// `error="insufficient_scope"`, 400 with `error="invalid_request"`, else 401 (RFC 6750,
    /// RFC 9110); `Upgrade` is 101 when the request asked to upgrade; `text/event-stream` is
    /// 200 (Streamable HTTP opens a stream only on success). Anything else is unknown.
    pub fn implied_status(&self, request_asked_upgrade: bool) -> Result<u16, UnknownStatus> {
        match self.challenge {
            Some(BearerError::InsufficientScope) => return Ok(403),
            Some(BearerError::InvalidRequest) => return Ok(400),
            Some(_) => return Ok(401),
            None => {}
        }
        if self.upgrade {
            return if request_asked_upgrade {
                Ok(101)
            } else {
                Err(UnknownStatus::UpgradeNotAsked)
            };
        }
        match self.content_type {
            Some(true) => Ok(200),
            Some(false) => Err(UnknownStatus::NotEventStream),
            None => Err(UnknownStatus::NoContentType),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageKind::{Batch, Notification, Request, Response};

    #[test]
    fn the_default_allow_list_is_exact() {
        let policy = BufferPolicy::default();
        let post = |kind, m: &str| policy.decide(Method::Post, Some(kind), Some(m), true);
        for m in DEFAULT_BUFFERED_METHODS {
            assert_eq!(post(Request, m), Buffering::Buffer, "{m}");
        }
        for m in NEVER_BUFFERED_METHODS.iter().chain(&[
            method::TASKS_GET,
            method::RESOURCES_SUBSCRIBE,
            method::SAMPLING_CREATE_MESSAGE,
            method::OTHER,
        ]) {
            assert_eq!(post(Request, m), Buffering::PassThrough, "{m}");
        }
        assert_eq!(
            post(Notification, method::NOTIFICATIONS_INITIALIZED),
            Buffering::Buffer
        );
        assert_eq!(post(Notification, method::OTHER), Buffering::Buffer);
        assert_eq!(
            policy.decide(Method::Post, Some(Response), None, true),
            Buffering::Buffer
        );
        assert_eq!(
            policy.decide(Method::Post, Some(Batch), None, true),
            Buffering::PassThrough
        );
        assert_eq!(
            policy.decide(Method::Post, None, None, true),
            Buffering::PassThrough,
            "an unknown operation is never held back"
        );
        assert_eq!(
            policy.decide(Method::Delete, None, None, true),
            Buffering::Buffer
        );
        for server_streams in [true, false] {
            assert_eq!(
                policy.decide(Method::Get, None, None, server_streams),
                Buffering::PassThrough
            );
        }
        assert_eq!(
            policy.decide(Method::Options, None, None, true),
            Buffering::NotMcp
        );
        assert_eq!(
            policy.decide(Method::Put, None, None, true),
            Buffering::NotMcp
        );
    }

    #[test]
    fn json_only_servers_buffer_every_post_but_listen() {
        let policy = BufferPolicy::default();
        let post = |m| policy.decide(Method::Post, Some(Request), Some(m), false);
        assert_eq!(post(method::TOOLS_CALL), Buffering::Buffer);
        assert_eq!(post(method::OTHER), Buffering::Buffer);
        assert_eq!(post(method::SUBSCRIPTIONS_LISTEN), Buffering::PassThrough);
        assert_eq!(
            policy.decide(Method::Post, None, None, false),
            Buffering::Buffer
        );
    }

    #[test]
    fn configured_allow_lists() {
        let policy =
            BufferPolicy::from_entries(["tools/list", "tools/list", "DELETE"]).expect("valid");
        let post = |kind, m| policy.decide(Method::Post, Some(kind), m, true);
        assert_eq!(post(Request, Some("tools/list")), Buffering::Buffer);
        assert_eq!(post(Request, Some("ping")), Buffering::PassThrough);
        assert_eq!(
            post(Notification, Some("notifications/initialized")),
            Buffering::PassThrough
        );
        assert_eq!(post(Response, None), Buffering::PassThrough);
        assert_eq!(
            policy.decide(Method::Delete, None, None, true),
            Buffering::Buffer
        );
        let none = BufferPolicy::from_entries([]).expect("empty is valid");
        assert_eq!(
            none.decide(Method::Delete, None, None, true),
            Buffering::PassThrough
        );
        let all = BufferPolicy::from_entries(DEFAULT_BUFFERED_METHODS.iter().copied().chain([
            NOTIFICATIONS_ENTRY,
            RESPONSES_ENTRY,
            DELETE_ENTRY,
        ]));
        assert_eq!(all, Ok(BufferPolicy::default()));
        for never in NEVER_BUFFERED_METHODS {
            let error = BufferPolicy::from_entries([*never]).expect_err("refused");
            assert!(
                error.contains(never) && error.contains("never buffered"),
                "{error}"
            );
        }
        let error = BufferPolicy::from_entries(["tools/lists"]).expect_err("unknown");
        assert!(
            error.contains("`tools/lists` is not an MCP method"),
            "{error}"
        );
        assert!(
            BufferPolicy::from_entries(["delete"]).is_err(),
            "entries are exact"
        );
    }

    fn implied(headers: &[(&str, &str)], asked_upgrade: bool) -> Result<u16, UnknownStatus> {
        let mut signals = ResponseSignals::default();
        for (name, value) in headers {
            match *name {
                "content-type" => signals.push_content_type(value.as_bytes()),
                "www-authenticate" => signals.push_www_authenticate(value.as_bytes()),
                "upgrade" => signals.push_upgrade(value.as_bytes()),
                _ => unreachable!("test header {name}"),
            }
        }
        signals.implied_status(asked_upgrade)
    }

    #[test]
    fn implied_statuses() {
        let sse = ("content-type", "text/event-stream");
        assert_eq!(implied(&[sse], false), Ok(200));
        assert_eq!(
            implied(
                &[("content-type", "Text/Event-Stream; charset=utf-8")],
                false
            ),
            Ok(200)
        );
        let bearer = |v| ("www-authenticate", v);
        let cases = [
            (
                bearer(r#"Bearer error="insufficient_scope", scope="files:read""#),
                403,
            ),
            (bearer(r#"Bearer error="invalid_request""#), 400),
            (
                bearer(r#"Bearer error="invalid_token", error_description="expired""#),
                401,
            ),
            (
                bearer(
                    r#"Bearer resource_metadata="https://gw/.well-known/oauth-protected-resource""#,
                ),
                401,
            ),
            (bearer("Bearer"), 401),
            (bearer(r#"Basic realm="x""#), 401),
        ];
        for (header, status) in cases {
            assert_eq!(
                implied(&[header, ("content-type", "application/json")], false),
                Ok(status),
                "{header:?}"
            );
        }
        assert_eq!(
            implied(
                &[
                    bearer("Basic realm=\"x\""),
                    bearer(r#"Bearer error="insufficient_scope""#)
                ],
                false
            ),
            Ok(403),
            "the strongest challenge wins, in any order"
        );
        assert_eq!(
            implied(
                &[
                    bearer(r#"Bearer error="insufficient_scope""#),
                    bearer("Bearer")
                ],
                false
            ),
            Ok(403)
        );
        assert_eq!(implied(&[("upgrade", "websocket")], true), Ok(101));
        assert_eq!(
            implied(&[("upgrade", "h2c"), sse], false),
            Err(UnknownStatus::UpgradeNotAsked)
        );
        assert_eq!(
            implied(&[("upgrade", " ")], true),
            Err(UnknownStatus::NoContentType)
        );
        assert_eq!(
            implied(&[("content-type", "application/json")], false),
            Err(UnknownStatus::NotEventStream)
        );
        assert_eq!(
            implied(&[("content-type", "text/event-streamx")], false),
            Err(UnknownStatus::NotEventStream)
        );
        assert_eq!(implied(&[], false), Err(UnknownStatus::NoContentType));
        for reason in [
            UnknownStatus::NoContentType,
            UnknownStatus::NotEventStream,
            UnknownStatus::UpgradeNotAsked,
        ] {
            assert_eq!(
                serde_json::to_string(&reason).expect("serializes"),
                format!("\"{}\"", reason.as_str())
            );
        }
    }
}
