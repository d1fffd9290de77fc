//! Bearer tokens as the gateway sees them (RFC 6750): whether a request carries one, and what a
//! `WWW-Authenticate` challenge says. Only presence and the challenge's `error` are kept.

/// Whether an `Authorization` value carries a bearer token (`Bearer <token>`, scheme
/// case-insensitive). Only presence is kept; the token itself is never stored.
#[must_use]
pub fn has_bearer_token(authorization: &[u8]) -> bool {
    let value = trim(authorization);
    value.len() > 7
        && value[..6].eq_ignore_ascii_case(b"bearer")
        && value[6] == b' '
        && !trim(&value[7..]).is_empty()
}

/// The RFC 6750 `error` of a `WWW-Authenticate` challenge, when it is a Bearer challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BearerError {
    /// No Bearer challenge seen.
    #[default]
    None,
    /// A Bearer challenge without a recognised error (typically: no token sent).
    Challenge,
    InvalidToken,
    InsufficientScope,
    InvalidRequest,
}

/// Reads a `WWW-Authenticate` value for a Bearer challenge and its `error` parameter.
#[must_use]
pub fn parse_www_authenticate(value: &[u8]) -> BearerError {
    let value = trim(value);
    let Some(at) = find_ignore_case(value, b"bearer") else {
        return BearerError::None;
    };
    let params = &value[at + 6..];
    if let Some(e) = find_ignore_case(params, b"error=") {
        let rest = &params[e + 6..];
        let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
        let end = rest
            .iter()
            .position(|&b| b == b'"' || b == b',' || b == b' ')
            .unwrap_or(rest.len());
        return match &rest[..end] {
            b"invalid_token" => BearerError::InvalidToken,
            b"insufficient_scope" => BearerError::InsufficientScope,
            b"invalid_request" => BearerError::InvalidRequest,
            _ => BearerError::Challenge,
        };
    }
    BearerError::Challenge
}

pub(crate) fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

pub(crate) fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}
