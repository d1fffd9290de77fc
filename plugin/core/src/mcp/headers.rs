//! The 2026-07-28 request headers (SEP-2243): `Mcp-Method`, `Mcp-Name` (plain or
//! `=?base64?…?=`) and `MCP-Protocol-Version`. `Mcp-Param-*` headers carry tool arguments and
//! are never read here.

use std::borrow::Cow;

use super::{
    MAX_URI_BYTES, MessageKind, Name, NameError, Target, checked_name, is_notification_method,
    known_method, method, trim_ows, version,
};

/// Request header naming the JSON-RPC method (lowercase, as the core asks hosts for it).
pub const MCP_METHOD: &str = "mcp-method";
/// Request header mirroring `params.name` (tools, prompts) or `params.uri` (resources).
pub const MCP_NAME: &str = "mcp-name";
/// Request header with the negotiated protocol version, sent by every client since 2025-06-18.
pub const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// The headers this module reads: nothing else, in particular no `Mcp-Param-*`.
pub const HEADERS: &[&str] = &[MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION];

/// Opening marker of an encoded header value (lowercase, case-sensitive).
pub const BASE64_PREFIX: &str = "=?base64?";
/// Closing marker of an encoded header value.
pub const BASE64_SUFFIX: &str = "?=";

/// Longest `Mcp-Name` value read: SEP-2243 has clients omit longer values. The `+ 16` leaves
/// room for the markers around an encoded value.
pub const MAX_NAME_HEADER_BYTES: usize = MAX_URI_BYTES * 4 / 3 + 16;

/// An MCP protocol version in its date form `YYYY-MM-DD`; versions order by date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    year: u16,
    month: u8,
    day: u8,
}

impl ProtocolVersion {
    /// The first version whose headers are trusted: servers must reject a request whose
    /// `Mcp-Method` / `Mcp-Name` disagree with its body only from 2026-07-28 on.
    pub const HEADERS_TRUSTED: Self = Self::date(2026, 7, 28);

    /// Parses `YYYY-MM-DD` (month 1–12, day 1–31, surrounding spaces allowed); `None` for
    /// anything else.
    #[must_use]
    pub fn parse(value: &[u8]) -> Option<Self> {
        let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *trim_ows(value) else {
            return None;
        };
        let digit = |b: u8| b.is_ascii_digit().then(|| u16::from(b - b'0'));
        let year = digit(y0)? * 1000 + digit(y1)? * 100 + digit(y2)? * 10 + digit(y3)?;
        let month = digit(m0)? * 10 + digit(m1)?;
        let day = digit(d0)? * 10 + digit(d1)?;
        ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some(Self {
            year,
            month: month as u8,
            day: day as u8,
        })
    }

    /// Whether a request of this version has trustworthy `Mcp-Method` / `Mcp-Name` headers.
    #[must_use]
    pub fn trusts_headers(self) -> bool {
        self >= Self::HEADERS_TRUSTED
    }

    /// The bounded label: a known version's constant, else [`version::OTHER`].
    #[must_use]
    pub fn label(self) -> &'static str {
        KNOWN_VERSIONS
            .iter()
            .find(|(known, _)| *known == self)
            .map_or(version::OTHER, |(_, label)| label)
    }

    const fn date(year: u16, month: u8, day: u8) -> Self {
        Self { year, month, day }
    }
}

/// [`version::KNOWN`] as dates (compared as dates, so labelling costs no formatting; a test
/// checks the two lists agree).
const KNOWN_VERSIONS: [(ProtocolVersion, &str); 5] = [
    (ProtocolVersion::date(2024, 11, 5), version::V2024_11_05),
    (ProtocolVersion::date(2025, 3, 26), version::V2025_03_26),
    (ProtocolVersion::date(2025, 6, 18), version::V2025_06_18),
    (ProtocolVersion::date(2025, 11, 25), version::V2025_11_25),
    (ProtocolVersion::HEADERS_TRUSTED, version::V2026_07_28),
];

/// The `MCP-Protocol-Version` header as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionHeader {
    Valid(ProtocolVersion),
    /// Not a date, or sent more than once.
    Invalid,
}

impl VersionHeader {
    /// The bounded label: a known version, or [`version::OTHER`].
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Valid(v) => v.label(),
            Self::Invalid => version::OTHER,
        }
    }
}

/// Decodes one `Mcp-Name` value: `=?base64?…?=` is standard base64 of UTF-8; anything else
/// must be printable ASCII (clients encode every other value). Checked as a name of at most
/// `max_bytes` ([`checked_name`]). A value starting with the prefix but not well-formed is
/// [`NameError::Undecodable`].
pub fn decode_name(value: &[u8], max_bytes: usize) -> Name<'_> {
    let value = trim_ows(value);
    if value.len() > MAX_NAME_HEADER_BYTES {
        return Err(NameError::TooLong);
    }
    if let Some(rest) = value.strip_prefix(BASE64_PREFIX.as_bytes()) {
        let payload = rest
            .strip_suffix(BASE64_SUFFIX.as_bytes())
            .ok_or(NameError::Undecodable)?;
        let bytes = decode_base64(payload).ok_or(NameError::Undecodable)?;
        let text = String::from_utf8(bytes).map_err(|_| NameError::NotText)?;
        return checked_name(Cow::Owned(text), max_bytes);
    }
    if !value.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(NameError::NotText);
    }
    let text = core::str::from_utf8(value).map_err(|_| NameError::NotText)?;
    checked_name(Cow::Borrowed(text), max_bytes)
}

/// Standard base64 (RFC 4648 §4: the spec's own example has `/`), with or without its `=`
/// padding so one encoder's habit does not make a name invalid; other characters, wrong
/// padding and non-zero trailing bits are refused. Hand-written rather than the `base64`
/// crate: its decoder added 4.6 KB to the Traefik plugin for this one header form (measured
/// with `cargo xtask wasm`); this decoder is a few hundred bytes.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let (data, padding) = match text {
        [data @ .., b'=', b'='] => (data, 2),
        [data @ .., b'='] => (data, 1),
        _ => (text, 0),
    };
    if data.len() % 4 == 1 || (padding > 0 && (data.len() + padding) % 4 != 0) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in data {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0).then_some(out)
}

/// The MCP headers of one request, pushed value by value (hosts hand header values to a
/// callback, so what is kept is copied: a constant, a date and at most one decoded name).
/// Order does not matter; a header sent twice is treated as invalid.
#[derive(Debug, Clone, Default)]
pub struct McpHeaders {
    method: Option<&'static str>,
    notification: bool,
    method_values: u8,
    name: Option<Result<String, NameError>>,
    version: Option<VersionHeader>,
}

impl McpHeaders {
    /// Adds one `Mcp-Method` value.
    pub fn push_method(&mut self, value: &[u8]) {
        self.method_values = self.method_values.saturating_add(1);
        let value = trim_ows(value);
        self.method = Some(if self.method_values == 1 {
            known_method(value)
        } else {
            method::OTHER
        });
        self.notification = self.method_values == 1 && is_notification_method(value);
    }

    /// Adds one `Mcp-Name` value (decoded now, kept until [`Self::target`] maps it by method).
    pub fn push_name(&mut self, value: &[u8]) {
        self.name = Some(match self.name {
            Some(_) => Err(NameError::Repeated),
            None => decode_name(value, MAX_URI_BYTES).map(Cow::into_owned),
        });
    }

    /// Adds one `MCP-Protocol-Version` value.
    pub fn push_protocol_version(&mut self, value: &[u8]) {
        self.version = Some(match (self.version, ProtocolVersion::parse(value)) {
            (None, Some(v)) => VersionHeader::Valid(v),
            _ => VersionHeader::Invalid,
        });
    }

    /// The method: its constant, [`method::OTHER`] when unknown or sent twice, `None` when
    /// absent.
    #[must_use]
    pub fn method(&self) -> Option<&'static str> {
        self.method
    }

    /// `notification` for a `notifications/…` method, `request` for any other, `None` without
    /// `Mcp-Method`. (2026-07-28 clients post no responses: `input_required` replaced them.)
    #[must_use]
    pub fn kind(&self) -> Option<MessageKind> {
        self.method.map(|_| {
            if self.notification {
                MessageKind::Notification
            } else {
                MessageKind::Request
            }
        })
    }

    /// What `Mcp-Name` names, by method only: a tool for `tools/call`, a prompt for
    /// `prompts/get`, a resource URI for `resources/read` ([`NameError::Missing`] when the
    /// header is absent); `None` for every other method, whatever `Mcp-Name` holds (under the
    /// tasks extension it holds task ids).
    #[must_use]
    pub fn target(&self) -> Option<Target<'_>> {
        let method = self.method?;
        let name = match &self.name {
            None => Err(NameError::Missing),
            Some(Err(e)) => Err(*e),
            Some(Ok(name)) if name.len() > Target::max_bytes(method) => Err(NameError::TooLong),
            Some(Ok(name)) => Ok(Cow::Borrowed(name.as_str())),
        };
        Target::for_method(method, name)
    }

    /// The `MCP-Protocol-Version` header, when sent.
    #[must_use]
    pub fn protocol_version(&self) -> Option<VersionHeader> {
        self.version
    }

    /// Whether `Mcp-Method` and `Mcp-Name` may be used instead of the body: the protocol
    /// version is 2026-07-28 or later (servers then reject a mismatch with the body) and
    /// `Mcp-Method` was sent exactly once.
    #[must_use]
    pub fn trusted(&self) -> bool {
        self.method_values == 1
            && matches!(self.version, Some(VersionHeader::Valid(v)) if v.trusts_headers())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::MAX_NAME_BYTES;

    fn scan(pairs: &[(&str, &[u8])]) -> McpHeaders {
        let mut headers = McpHeaders::default();
        for (name, value) in pairs {
            match *name {
                MCP_METHOD => headers.push_method(value),
                MCP_NAME => headers.push_name(value),
                MCP_PROTOCOL_VERSION => headers.push_protocol_version(value),
                _ => unreachable!("test header {name}"),
            }
        }
        headers
    }

    #[test]
    fn protocol_versions_parse_as_dates_and_order() {
        let v = |s: &str| ProtocolVersion::parse(s.as_bytes());
        assert!(v("2026-07-28").expect("date").trusts_headers());
        assert!(v("2027-01-01").expect("date").trusts_headers());
        assert!(!v("2026-07-27").expect("date").trusts_headers());
        assert!(!v("2025-11-25").expect("date").trusts_headers());
        assert_eq!(
            v(" 2025-06-18\t").map(ProtocolVersion::label),
            Some("2025-06-18")
        );
        assert_eq!(
            v("2030-01-01").map(ProtocolVersion::label),
            Some(version::OTHER)
        );
        for bad in [
            "",
            "2026-7-28",
            "2026-07-28x",
            "2026/07/28",
            "2026-13-01",
            "2026-00-10",
            "2026-07-32",
            "2026-07-00",
            "２０２６-07-28",
            "DRAFT-2026-v1",
            "20260728",
        ] {
            assert_eq!(v(bad), None, "{bad}");
        }
        assert_eq!(KNOWN_VERSIONS.len(), version::KNOWN.len());
        for known in version::KNOWN {
            assert_eq!(v(known).map(ProtocolVersion::label), Some(*known));
        }
    }

    #[test]
    fn names_decode_plain_and_base64() {
        fn d(value: &[u8]) -> Name<'_> {
            decode_name(value, MAX_NAME_BYTES)
        }
        assert_eq!(d(b"get_weather").as_deref(), Ok("get_weather"));
        assert_eq!(d(b"  two words ").as_deref(), Ok("two words"));
        assert!(
            matches!(d(b"get_weather"), Ok(Cow::Borrowed(_))),
            "zero-copy"
        );
        // "Hello, 世界" and " padded " as SEP-2243 encodes them.
        assert_eq!(
            d(b"=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(),
            Ok("Hello, 世界")
        );
        assert_eq!(
            d(b"=?base64?SGVsbG8sIOS4lueVjA?=").as_deref(),
            Ok("Hello, 世界")
        );
        assert_eq!(d(b"=?base64?IHBhZGRlZCA=?=").as_deref(), Ok(" padded "));
        // A plain value that looks like the sentinel arrives encoded, and decodes to itself.
        assert_eq!(
            d(b"=?base64?PT9iYXNlNjQ/eD89?=").as_deref(),
            Ok("=?base64?x?=")
        );
        assert_eq!(d(b"=?base64?aMOpbGxv?=").as_deref(), Ok("héllo"));
        assert_eq!(d(b"=?base64?QQ==?=").as_deref(), Ok("A"));
        assert_eq!(d(b"=?base64?QUI=?=").as_deref(), Ok("AB"));
        assert_eq!(d(b"=?base64?QUJD?=").as_deref(), Ok("ABC"));
        assert_eq!(d(b"=?base64?Pz8+Pw?=").as_deref(), Ok("??>?"));
        // The markers are case-sensitive: this is a plain value.
        assert_eq!(
            d(b"=?BASE64?SGVsbG8=?=").as_deref(),
            Ok("=?BASE64?SGVsbG8=?=")
        );
        let cases: [(&[u8], NameError); 17] = [
            (b"=?base64?%%%?=", NameError::Undecodable),
            (b"=?base64?SGVsbG8", NameError::Undecodable),
            (b"=?base64?SGVsbG9=?=", NameError::Undecodable),
            (b"=?base64?SGVsbG8-_w?=", NameError::Undecodable),
            (b"=?base64?QQ=?=", NameError::Undecodable),
            (b"=?base64?QUI==?=", NameError::Undecodable),
            (b"=?base64?QUJDR?=", NameError::Undecodable),
            (b"=?base64?QR==?=", NameError::Undecodable),
            (b"=?base64?====?=", NameError::Undecodable),
            (b"=?base64?QU I=?=", NameError::Undecodable),
            (b"=?base64?//79?=", NameError::NotText),
            (b"=?base64?bGluZTEKbGluZTI=?=", NameError::NotText),
            (b"=?base64??=", NameError::Empty),
            (b"", NameError::Empty),
            (b"caf\xc3\xa9", NameError::NotText),
            (b"a\x01b", NameError::NotText),
            (b"\xff\xfe", NameError::NotText),
        ];
        for (value, error) in cases {
            assert_eq!(d(value), Err(error), "{value:?}");
        }
        assert_eq!(
            d(&[b'a'; MAX_NAME_BYTES]).map(|n| n.len()),
            Ok(MAX_NAME_BYTES)
        );
        assert_eq!(d(&[b'a'; MAX_NAME_BYTES + 1]), Err(NameError::TooLong));
        assert_eq!(d(&vec![b'a'; 1 << 20]), Err(NameError::TooLong));
    }

    /// RFC 4648 encoding, padded, to check the decoder against.
    fn encode_base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn base64_round_trips_padded_and_unpadded() {
        for len in 0..100usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + len * 11) as u8).collect();
            let padded = encode_base64(&bytes);
            assert_eq!(
                decode_base64(padded.as_bytes()),
                Some(bytes.clone()),
                "{padded}"
            );
            let unpadded = padded.trim_end_matches('=');
            assert_eq!(
                decode_base64(unpadded.as_bytes()),
                Some(bytes),
                "{unpadded}"
            );
        }
        assert_eq!(
            encode_base64("Hello, 世界".as_bytes()),
            "SGVsbG8sIOS4lueVjA=="
        );
    }

    #[test]
    fn the_name_is_mapped_by_method_only() {
        let tool = scan(&[(MCP_METHOD, b"tools/call"), (MCP_NAME, b"get_weather")]);
        assert_eq!(tool.method(), Some(method::TOOLS_CALL));
        assert_eq!(tool.kind(), Some(MessageKind::Request));
        assert_eq!(tool.target(), Some(Target::Tool(Ok("get_weather".into()))));
        let prompt = scan(&[
            (MCP_NAME, b"=?base64?w6lsw6h2ZQ==?="),
            (MCP_METHOD, b"prompts/get"),
        ]);
        assert_eq!(
            prompt.target(),
            Some(Target::Prompt(Ok("élève".into()))),
            "any order"
        );
        let uri = format!("file:///{}", "d/".repeat(1000));
        let resource = scan(&[(MCP_METHOD, b"resources/read"), (MCP_NAME, uri.as_bytes())]);
        assert_eq!(
            resource.target(),
            Some(Target::Resource(Ok(uri.as_str().into())))
        );
        let long_tool = scan(&[(MCP_METHOD, b"tools/call"), (MCP_NAME, uri.as_bytes())]);
        assert_eq!(
            long_tool.target(),
            Some(Target::Tool(Err(NameError::TooLong)))
        );
        for method in [
            "tasks/get",
            "tasks/result",
            "tools/list",
            "ping",
            "x-vendor/op",
        ] {
            let other = scan(&[(MCP_METHOD, method.as_bytes()), (MCP_NAME, b"task-1234")]);
            assert_eq!(other.target(), None, "{method}: Mcp-Name ignored");
        }
        let missing = scan(&[(MCP_METHOD, b"tools/call")]);
        assert_eq!(
            missing.target(),
            Some(Target::Tool(Err(NameError::Missing)))
        );
        let bad = scan(&[(MCP_METHOD, b"tools/call"), (MCP_NAME, b"=?base64?***?=")]);
        assert_eq!(
            bad.target(),
            Some(Target::Tool(Err(NameError::Undecodable)))
        );
        let twice = scan(&[
            (MCP_METHOD, b"tools/call"),
            (MCP_NAME, b"a"),
            (MCP_NAME, b"a"),
        ]);
        assert_eq!(twice.target(), Some(Target::Tool(Err(NameError::Repeated))));
        assert_eq!(
            scan(&[(MCP_NAME, b"a")]).target(),
            None,
            "no method, no target"
        );
    }

    #[test]
    fn methods_kinds_and_trust() {
        let v2026: &[u8] = b"2026-07-28";
        let note = scan(&[
            (MCP_METHOD, b"notifications/initialized"),
            (MCP_PROTOCOL_VERSION, v2026),
        ]);
        assert_eq!(note.kind(), Some(MessageKind::Notification));
        assert!(note.trusted());
        let custom = scan(&[
            (MCP_METHOD, b"notifications/x-vendor"),
            (MCP_PROTOCOL_VERSION, v2026),
        ]);
        assert_eq!(
            (custom.method(), custom.kind()),
            (Some(method::OTHER), Some(MessageKind::Notification))
        );
        let old = scan(&[
            (MCP_METHOD, b"tools/call"),
            (MCP_PROTOCOL_VERSION, b"2025-11-25"),
        ]);
        assert!(
            !old.trusted(),
            "older clients' headers are not checked by servers"
        );
        assert_eq!(
            old.protocol_version().map(VersionHeader::label),
            Some("2025-11-25")
        );
        let no_version = scan(&[(MCP_METHOD, b"tools/call")]);
        assert!(!no_version.trusted());
        let twice = scan(&[
            (MCP_METHOD, b"tools/list"),
            (MCP_METHOD, b"tools/call"),
            (MCP_PROTOCOL_VERSION, v2026),
        ]);
        assert_eq!(twice.method(), Some(method::OTHER));
        assert!(!twice.trusted());
        let joined = scan(&[
            (MCP_METHOD, b"tools/list, tools/list"),
            (MCP_PROTOCOL_VERSION, v2026),
        ]);
        assert_eq!(joined.method(), Some(method::OTHER));
        let two_versions = scan(&[
            (MCP_METHOD, b"ping"),
            (MCP_PROTOCOL_VERSION, v2026),
            (MCP_PROTOCOL_VERSION, v2026),
        ]);
        assert_eq!(
            two_versions.protocol_version(),
            Some(VersionHeader::Invalid)
        );
        assert!(!two_versions.trusted());
        let garbage = scan(&[(MCP_PROTOCOL_VERSION, b"\xff\x00")]);
        assert_eq!(
            garbage.protocol_version().map(VersionHeader::label),
            Some(version::OTHER)
        );
        assert_eq!((garbage.method(), garbage.kind()), (None, None));
        let long = scan(&[(MCP_METHOD, &[b'm'; 100_000])]);
        assert_eq!(long.method(), Some(method::OTHER));
    }

    #[test]
    fn only_the_three_headers_are_read() {
        assert_eq!(HEADERS, ["mcp-method", "mcp-name", "mcp-protocol-version"]);
        assert!(HEADERS.iter().all(|h| !h.starts_with("mcp-param")));
    }
}
