//! Bounded labels for requests: the HTTP method normalised to a standard method or `_OTHER`,
//! and a path turned into an `endpoint` route template (query stripped, configured templates
//! first, id-like segments collapsed to `{id}`, depth and length capped).

/// An HTTP method, normalised: the standard methods, everything else is `_OTHER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    Other,
}

impl Method {
    /// Methods are case-sensitive: `get` is `_OTHER`.
    #[must_use]
    pub fn from_bytes(method: &[u8]) -> Self {
        match method {
            b"GET" => Self::Get,
            b"HEAD" => Self::Head,
            b"POST" => Self::Post,
            b"PUT" => Self::Put,
            b"DELETE" => Self::Delete,
            b"CONNECT" => Self::Connect,
            b"OPTIONS" => Self::Options,
            b"TRACE" => Self::Trace,
            b"PATCH" => Self::Patch,
            _ => Self::Other,
        }
    }

    /// The label text: `GET` … `PATCH`, or `_OTHER`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
            Self::Options => "OPTIONS",
            Self::Trace => "TRACE",
            Self::Patch => "PATCH",
            Self::Other => "_OTHER",
        }
    }
}

/// Normalises a method to its label (`GET` … `PATCH` or `_OTHER`); for the collector.
#[must_use]
pub fn normalize_method(method: &str) -> &'static str {
    Method::from_bytes(method.as_bytes()).as_str()
}

/// The label for `*` and absolute-form targets that carry no path.
pub const ENDPOINT_ASTERISK: &str = "*";
/// The segment that replaces an id-like or unsafe segment.
pub const ID_SEGMENT: &str = "{id}";
/// Appended when the endpoint was cut at the depth or length cap.
pub const TRUNCATED_SUFFIX: &str = "/*";

/// One segment of a route template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternSegment {
    Literal(String),
    /// `{name}`: exactly one segment.
    Param,
    /// `*` as the last segment: any number of further segments (zero included).
    Rest,
}

/// A configured route template, e.g. `/register/{client_id}` or `/static/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    template: String,
    segments: Vec<PatternSegment>,
}

impl RoutePattern {
    /// Parses a template. It starts with `/`; segments are literals (the URL's unreserved
    /// characters and `%`), `{name}` (one segment) or a final `*` (the rest). Returns what was
    /// wrong on error.
    pub fn parse(template: &str) -> Result<Self, String> {
        if template.len() > 256 {
            return Err(format!(
                "a route template of at most 256 characters, got {}",
                shown(template)
            ));
        }
        let Some(body) = template.strip_prefix('/') else {
            return Err(format!(
                "a route template starting with \"/\", got {}",
                shown(template)
            ));
        };
        let mut segments = Vec::new();
        let parts: Vec<&str> = body.split('/').filter(|s| !s.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            if *part == "*" {
                if i + 1 != parts.len() {
                    return Err(format!(
                        "\"*\" only as the last segment, got {}",
                        shown(template)
                    ));
                }
                segments.push(PatternSegment::Rest);
            } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!(
                        "a parameter like {{name}}, got {} in {}",
                        shown(part),
                        shown(template)
                    ));
                }
                segments.push(PatternSegment::Param);
            } else if part.bytes().all(is_literal_byte) {
                segments.push(PatternSegment::Literal((*part).to_string()));
            } else {
                return Err(format!(
                    "literal segments of letters, digits, \"-._~%\" only, got {} in {}",
                    shown(part),
                    shown(template)
                ));
            }
        }
        Ok(Self {
            template: template.to_string(),
            segments,
        })
    }

    /// The template text, used as the endpoint label when it matches.
    #[must_use]
    pub fn template(&self) -> &str {
        &self.template
    }

    /// Whether the path (query already removed) matches this template. Empty segments
    /// (`//`, a trailing `/`) are ignored on both sides.
    #[must_use]
    pub fn matches(&self, path: &[u8]) -> bool {
        let mut parts = path_segments(path);
        for segment in &self.segments {
            match segment {
                PatternSegment::Rest => return true,
                PatternSegment::Param => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                PatternSegment::Literal(text) => {
                    if parts.next() != Some(text.as_bytes()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

/// A template (or part) quoted for an error message: at most 40 characters, escaped.
fn shown(text: &str) -> String {
    match text.char_indices().nth(40) {
        None => format!("\"{}\"", text.escape_debug()),
        Some((cut, _)) => format!("\"{}…\"", text[..cut].escape_debug()),
    }
}

fn is_literal_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%')
}

/// The non-empty `/`-separated segments of a path.
fn path_segments(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|s| !s.is_empty())
}

/// Limits on a computed endpoint label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointLimits {
    /// Most path segments kept.
    pub max_depth: usize,
    /// Most bytes in the label (the truncation marker included).
    pub max_length: usize,
}

impl Default for EndpointLimits {
    fn default() -> Self {
        Self {
            max_depth: 8,
            max_length: 128,
        }
    }
}

/// The path of a request target without query or fragment; absolute-form targets
/// (`http://host/p`) give their path. Never fails: returns `b""` for a target with no path.
#[must_use]
pub fn strip_query(target: &[u8]) -> &[u8] {
    let end = target
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(target.len());
    let path = &target[..end];
    if path.first() == Some(&b'/') {
        return path;
    }
    if let Some(scheme_end) = find(path, b"://") {
        let after = &path[scheme_end + 3..];
        return after
            .iter()
            .position(|&b| b == b'/')
            .map_or(&[], |i| &after[i..]);
    }
    path
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `endpoint` label of a request target: the first configured template that matches the
/// path, else the path with id-like or unsafe segments replaced by `{id}`, capped to
/// `limits`. Query strings never appear in it; the result is printable ASCII.
#[must_use]
pub fn endpoint(target: &[u8], templates: &[RoutePattern], limits: EndpointLimits) -> String {
    let path = strip_query(target);
    if path == b"*" {
        return ENDPOINT_ASTERISK.to_string();
    }
    if let Some(pattern) = templates.iter().find(|p| p.matches(path)) {
        return pattern.template.clone();
    }
    let max_length = limits.max_length.max(TRUNCATED_SUFFIX.len() + 1);
    let mut label = String::with_capacity(path.len().min(max_length));
    for (depth, segment) in path_segments(path).enumerate() {
        let text = if is_id_like(segment) {
            ID_SEGMENT
        } else {
            // Safe segments are ASCII (checked by is_id_like), so this never falls back.
            core::str::from_utf8(segment).unwrap_or(ID_SEGMENT)
        };
        if depth >= limits.max_depth.max(1)
            || label.len() + 1 + text.len() > max_length - TRUNCATED_SUFFIX.len()
        {
            label.push_str(TRUNCATED_SUFFIX);
            return label;
        }
        label.push('/');
        label.push_str(text);
    }
    if label.is_empty() {
        label.push('/');
    }
    label
}

/// Whether a path segment should become `{id}`: numbers, UUIDs, hex of 8+ characters with a
/// digit, anything of 16+ characters with a digit, anything over 32 characters, and any
/// segment with a character outside letters, digits and `-._~` (percent-encoding included).
#[must_use]
pub fn is_id_like(segment: &[u8]) -> bool {
    if segment.len() > 32
        || !segment
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return true;
    }
    let has_digit = segment.iter().any(u8::is_ascii_digit);
    if !has_digit {
        return false;
    }
    if segment.iter().all(u8::is_ascii_digit) || segment.len() >= 16 {
        return true;
    }
    let hex_digits = segment.iter().filter(|b| b.is_ascii_hexdigit()).count();
    let dashes = segment.iter().filter(|&&b| b == b'-').count();
    segment.len() >= 8 && hex_digits + dashes == segment.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(target: &str) -> String {
        endpoint(target.as_bytes(), &[], EndpointLimits::default())
    }

    #[test]
    fn methods_normalise() {
        for m in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
        ] {
            assert_eq!(normalize_method(m), m);
        }
        for m in ["get", "PROPFIND", "", "GET ", "G\u{e9}T"] {
            assert_eq!(normalize_method(m), "_OTHER");
        }
        assert_eq!(Method::from_bytes(b"\xff\x00"), Method::Other);
    }

    #[test]
    fn query_and_fragment_are_always_stripped() {
        assert_eq!(label("/mcp?token=secret"), "/mcp");
        assert_eq!(label("/a#frag?x"), "/a");
        assert_eq!(label("/?access_token=x"), "/");
        assert_eq!(label("http://h.example/x/y?q=1"), "/x/y");
        assert_eq!(label("https://h.example?q=1"), "/");
        assert_eq!(label("*"), "*");
        assert_eq!(label(""), "/");
    }

    #[test]
    fn id_like_segments_collapse() {
        assert_eq!(label("/users/12345/orders"), "/users/{id}/orders");
        assert_eq!(label("/s/550e8400-e29b-41d4-a716-446655440000"), "/s/{id}");
        assert_eq!(label("/blob/9f86d081884c7d65"), "/blob/{id}");
        assert_eq!(label("/t/eyJhbGciOiJIUzI1NiJ9x"), "/t/{id}");
        assert_eq!(label("/files/my%20doc"), "/files/{id}");
        assert_eq!(label("/v1/api2/oauth2"), "/v1/api2/oauth2");
        assert_eq!(
            label("/.well-known/oauth-authorization-server"),
            "/.well-known/oauth-authorization-server"
        );
        assert_eq!(label("//a///b/"), "/a/b");
        assert_eq!(label("/caf\u{e9}/x"), "/{id}/x");
        assert_eq!(label("/a\"b/\n/\0"), "/{id}/{id}/{id}");
    }

    #[test]
    fn templates_come_first() {
        let templates = [
            RoutePattern::parse("/register/{client_id}").expect("valid"),
            RoutePattern::parse("/static/*").expect("valid"),
        ];
        let limits = EndpointLimits::default();
        assert_eq!(
            endpoint(b"/register/abc?x=1", &templates, limits),
            "/register/{client_id}"
        );
        assert_eq!(endpoint(b"/register", &templates, limits), "/register");
        assert_eq!(endpoint(b"/static/a/b/c", &templates, limits), "/static/*");
        assert_eq!(endpoint(b"/static", &templates, limits), "/static/*");
        assert_eq!(
            endpoint(b"/register/a/b", &templates, limits),
            "/register/a/b"
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in ["register", "/a/*/b", "/{}", "/{a b}", "/a b", "/a\"b"] {
            assert!(RoutePattern::parse(bad).is_err(), "{bad}");
        }
        assert!(RoutePattern::parse(&format!("/{}", "a".repeat(300))).is_err());
        for hostile in [
            "x".repeat(10_000),
            format!("/{}", "\u{1}".repeat(250)),
            format!("/a b{}", "c".repeat(250)),
        ] {
            let message = RoutePattern::parse(&hostile).expect_err("refused");
            assert!(
                message.len() < 1024,
                "error messages stay short: {}",
                message.len()
            );
        }
    }

    #[test]
    fn depth_and_length_are_capped() {
        let deep = "/a".repeat(50);
        assert_eq!(
            label(&deep),
            format!("{}{TRUNCATED_SUFFIX}", "/a".repeat(8))
        );
        let limits = EndpointLimits {
            max_depth: 100,
            max_length: 40,
        };
        let long = "/abcdefghij".repeat(20);
        let got = endpoint(long.as_bytes(), &[], limits);
        assert!(got.len() <= 40, "{got}");
        assert!(got.ends_with(TRUNCATED_SUFFIX));
    }

    #[test]
    fn hostile_paths_stay_bounded() {
        let megabyte = vec![b'/'; 1 << 20];
        assert_eq!(endpoint(&megabyte, &[], EndpointLimits::default()), "/");
        let mut mixed = Vec::with_capacity(1 << 20);
        while mixed.len() < 1 << 20 {
            mixed.extend_from_slice(b"/seg\xff\xfe%00");
        }
        let got = endpoint(&mixed, &[], EndpointLimits::default());
        assert!(got.len() <= 128 && got.is_ascii(), "{got}");
        let long_segment = format!("/{}", "x".repeat(1 << 20));
        assert_eq!(label(&long_segment), "/{id}");
    }
}
