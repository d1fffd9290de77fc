//! W3C Trace Context: parsing `traceparent` and `tracestate`, continuing or starting a trace,
//! parent-based sampling with a ratio for new traces, and the outgoing `traceparent`.

use crate::hex::{hex_into, hex_string, parse_lower_hex};

/// Length of a version-00 `traceparent` value.
pub const TRACEPARENT_LEN: usize = 55;
/// Most list members a valid `tracestate` has; a header with more is dropped whole.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;
/// Longest `tracestate` key (W3C Trace Context Level 2: first character plus 255 more).
pub const MAX_TRACESTATE_KEY: usize = 256;
/// Longest `tracestate` value.
pub const MAX_TRACESTATE_VALUE: usize = 256;
/// Longest joined `tracestate` input looked at; longer input is dropped as hostile.
pub const MAX_TRACESTATE_INPUT: usize = 8192;

const FLAG_SAMPLED: u8 = 0x01;

/// A 16-byte trace id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    /// All-zero ids are invalid.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 16]
    }

    /// 32 lowercase hex characters.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex_string(&self.0)
    }

    /// Parses 32 lowercase hex characters; `None` if malformed or all zero.
    #[must_use]
    pub fn from_hex(text: &[u8]) -> Option<Self> {
        let mut id = [0u8; 16];
        (parse_lower_hex(text, &mut id) && id != [0; 16]).then_some(Self(id))
    }
}

impl SpanId {
    /// All-zero ids are invalid.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 8]
    }

    /// 16 lowercase hex characters.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex_string(&self.0)
    }

    /// 16 lowercase hex characters, without allocating.
    #[must_use]
    pub fn to_hex_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        hex_into(&self.0, &mut out);
        out
    }

    /// Parses 16 lowercase hex characters; `None` if malformed or all zero.
    #[must_use]
    pub fn from_hex(text: &[u8]) -> Option<Self> {
        let mut id = [0u8; 8];
        (parse_lower_hex(text, &mut id) && id != [0; 8]).then_some(Self(id))
    }
}

/// A valid incoming `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub version: u8,
    pub trace_id: TraceId,
    /// The caller's span id: the parent of the gateway's span.
    pub parent_id: SpanId,
    pub flags: u8,
}

impl TraceParent {
    /// Whether the caller sampled this trace.
    #[must_use]
    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }
}

/// Parses one `traceparent` value. `None` when invalid: wrong length, uppercase or non-hex,
/// all-zero ids, version `ff`, or extra data on version `00`. Versions above `00` are parsed
/// by the `00` layout and may carry `-`-prefixed extra data.
#[must_use]
pub fn parse_traceparent(value: &[u8]) -> Option<TraceParent> {
    let value = trim_ows(value);
    if value.len() < TRACEPARENT_LEN {
        return None;
    }
    let mut version = [0u8; 1];
    if !parse_lower_hex(&value[0..2], &mut version) || version[0] == 0xff {
        return None;
    }
    let version = version[0];
    if version == 0 && value.len() != TRACEPARENT_LEN {
        return None;
    }
    if value.len() > TRACEPARENT_LEN && value[TRACEPARENT_LEN] != b'-' {
        return None;
    }
    if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let trace_id = TraceId::from_hex(&value[3..35])?;
    let parent_id = SpanId::from_hex(&value[36..52])?;
    let mut flags = [0u8; 1];
    if !parse_lower_hex(&value[53..55], &mut flags) {
        return None;
    }
    Some(TraceParent {
        version,
        trace_id,
        parent_id,
        flags: flags[0],
    })
}

/// The incoming `traceparent` from the header's values, pushed one at a time as the host
/// hands them over: exactly one valid value continues the trace; none, an invalid one, or
/// two or more give `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct IncomingTraceparent {
    /// The first value, parsed (`None` before any value).
    first: Option<Option<TraceParent>>,
    repeated: bool,
}

impl IncomingTraceparent {
    /// Adds one header value (only the first is parsed).
    pub fn push(&mut self, value: &[u8]) {
        match self.first {
            None => self.first = Some(parse_traceparent(value)),
            Some(_) => self.repeated = true,
        }
    }

    /// The trace to continue, if any.
    #[must_use]
    pub fn finish(self) -> Option<TraceParent> {
        if self.repeated {
            None
        } else {
            self.first.flatten()
        }
    }
}

/// Joins `tracestate` header values one at a time, so a host's values need not be collected
/// first: empty members dropped, member text and order unchanged, duplicate keys passed on as
/// they came (the standard allows passing them on or dropping one; a proxy passes on). Nothing
/// to pass on, any member malformed, or more than [`MAX_TRACESTATE_MEMBERS`] members drops the
/// whole header.
#[derive(Debug, Clone, Default)]
pub struct TracestateBuilder {
    out: String,
    members: usize,
    input: usize,
    values: usize,
    invalid: bool,
    unchanged: bool,
}

impl TracestateBuilder {
    /// Adds one header value.
    pub fn push(&mut self, value: &[u8]) {
        self.values += 1;
        self.input += value.len() + 1;
        if self.invalid || self.input > MAX_TRACESTATE_INPUT {
            self.invalid = true;
            return;
        }
        let before = self.out.len();
        for member in value.split(|&b| b == b',') {
            let member = trim_ows(member);
            if member.is_empty() {
                continue;
            }
            if self.members == MAX_TRACESTATE_MEMBERS || !valid_tracestate_member(member) {
                self.invalid = true;
                return;
            }
            if !self.out.is_empty() {
                self.out.push(',');
            }
            // Validated members are printable ASCII, so this is never lossy.
            self.out.push_str(&String::from_utf8_lossy(member));
            self.members += 1;
        }
        self.unchanged = self.values == 1 && before == 0 && self.out.as_bytes() == value;
    }

    /// How many header values were pushed.
    #[must_use]
    pub fn values(&self) -> usize {
        self.values
    }

    /// Whether the result is exactly the one value pushed (so the header can stay as it is).
    #[must_use]
    pub fn unchanged(&self) -> bool {
        self.values == 1 && self.unchanged && !self.invalid
    }

    /// The joined value, or `None` when empty or malformed.
    #[must_use]
    pub fn finish(self) -> Option<String> {
        (!self.invalid && self.members > 0).then_some(self.out)
    }
}

/// Whether a list member is a well-formed `key=value`.
fn valid_tracestate_member(member: &[u8]) -> bool {
    member.iter().position(|&b| b == b'=').is_some_and(|eq| {
        valid_tracestate_key(&member[..eq]) && valid_tracestate_value(&member[eq + 1..])
    })
}

/// W3C Trace Context Level 2 key: `( lcalpha / DIGIT ) 0*255( keychar )`, where `keychar` is
/// `lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`. Level 2 dropped Level 1's
/// `tenant@system` form with its 241/14 limits: `foo@`, `foo@@bar`, `t@` + 15 characters are
/// keys; a key may not start with `@`, and is at most 256 characters.
fn valid_tracestate_key(key: &[u8]) -> bool {
    let key_char = |b: u8| {
        b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
    };
    (1..=MAX_TRACESTATE_KEY).contains(&key.len())
        && (key[0].is_ascii_lowercase() || key[0].is_ascii_digit())
        && key.iter().all(|&b| key_char(b))
}

fn valid_tracestate_value(value: &[u8]) -> bool {
    let non_blank = |b: u8| matches!(b, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    (1..=MAX_TRACESTATE_VALUE).contains(&value.len())
        && value.iter().all(|&b| b == b' ' || non_blank(b))
        && value.last().is_some_and(|&b| non_blank(b))
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// The gateway's place in a trace for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: TraceId,
    /// The gateway's own span.
    pub span_id: SpanId,
    /// The caller's span, when the trace was continued.
    pub parent_span_id: Option<SpanId>,
    pub sampled: bool,
}

impl SpanContext {
    /// Continues `incoming` with the gateway's `span_id` (honouring the caller's sampled flag),
    /// or starts a trace with `new_trace_id`, sampled when its bits fall under `sample_ratio`.
    #[must_use]
    pub fn continue_or_start(
        incoming: Option<&TraceParent>,
        new_trace_id: TraceId,
        span_id: SpanId,
        sample_ratio: f64,
    ) -> Self {
        match incoming {
            Some(parent) => Self {
                trace_id: parent.trace_id,
                span_id,
                parent_span_id: Some(parent.parent_id),
                sampled: parent.sampled(),
            },
            None => Self {
                trace_id: new_trace_id,
                span_id,
                parent_span_id: None,
                sampled: sampled_by_ratio(&new_trace_id, sample_ratio),
            },
        }
    }

    /// The outgoing `traceparent` (version 00, the gateway's span as parent; only the
    /// sampled flag is ever set, never "random").
    #[must_use]
    pub fn traceparent(&self) -> TraceparentHeader {
        let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
        hex_into(&self.trace_id.0, &mut out[3..35]);
        hex_into(&self.span_id.0, &mut out[36..52]);
        if self.sampled {
            out[54] = b'1';
        }
        TraceparentHeader(out)
    }
}

/// An outgoing `traceparent` value, without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceparentHeader([u8; TRACEPARENT_LEN]);

impl TraceparentHeader {
    /// The header value (55 ASCII characters).
    #[must_use]
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The header value as bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The trace id part: 32 lowercase hex characters.
    #[must_use]
    pub fn trace_id_hex(&self) -> &str {
        core::str::from_utf8(&self.0[3..35]).unwrap_or_default()
    }

    /// The span id part (the sender's span): 16 lowercase hex characters.
    #[must_use]
    pub fn span_id_hex(&self) -> &str {
        core::str::from_utf8(&self.0[36..52]).unwrap_or_default()
    }
}

/// Whether a new trace is sampled at `ratio` (0..=1), decided from the trace id's low 56 bits
/// so every component that sees the id decides the same way.
#[must_use]
pub fn sampled_by_ratio(trace_id: &TraceId, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio.is_nan() || ratio <= 0.0 {
        return false;
    }
    let mut low = [0u8; 8];
    low[1..].copy_from_slice(&trace_id.0[9..]);
    let bits = u64::from_be_bytes(low);
    let threshold = (ratio * (1u64 << 56) as f64) as u64;
    bits < threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_a_valid_version_00() {
        let tp = parse_traceparent(VALID.as_bytes()).expect("valid");
        assert_eq!(tp.version, 0);
        assert_eq!(tp.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id.to_hex(), "00f067aa0ba902b7");
        assert!(tp.sampled());
        let unsampled = VALID.replace("-01", "-00");
        assert!(
            !parse_traceparent(unsampled.as_bytes())
                .expect("valid")
                .sampled()
        );
    }

    #[test]
    fn rejects_malformed_version_00() {
        let bad = [
            VALID.to_uppercase(),
            VALID.replace("4bf9", "4BF9"),
            VALID[..54].to_string(),
            format!("{VALID}-"),
            format!("{VALID}-extra"),
            format!("{VALID}0"),
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01".to_string(),
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g".to_string(),
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
            format!("{VALID},{VALID}"),
            String::new(),
        ];
        for value in bad {
            assert_eq!(parse_traceparent(value.as_bytes()), None, "{value}");
        }
    }

    #[test]
    fn higher_versions_parse_by_the_00_layout() {
        let v1 = VALID.replacen("00", "01", 1);
        assert_eq!(parse_traceparent(v1.as_bytes()).expect("v1").version, 1);
        let extra = format!("{v1}-what-the-future-holds");
        assert!(parse_traceparent(extra.as_bytes()).is_some());
        let glued = format!("{v1}x");
        assert!(parse_traceparent(glued.as_bytes()).is_none());
        let short = &v1[..50];
        assert!(parse_traceparent(short.as_bytes()).is_none());
    }

    fn incoming(values: &[&[u8]]) -> Option<TraceParent> {
        let mut incoming = IncomingTraceparent::default();
        for value in values {
            incoming.push(value);
        }
        incoming.finish()
    }

    fn join_tracestate<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
        let mut builder = TracestateBuilder::default();
        for value in values {
            builder.push(value);
        }
        builder.finish()
    }

    #[test]
    fn two_traceparent_headers_are_invalid() {
        assert!(incoming(&[VALID.as_bytes()]).is_some());
        assert!(incoming(&[VALID.as_bytes(), VALID.as_bytes()]).is_none());
        assert!(incoming(&[b"garbage", VALID.as_bytes()]).is_none());
        assert!(incoming(&[]).is_none());
    }

    /// Joins header values given as `&str`.
    fn joined(values: &[&str]) -> Option<String> {
        join_tracestate(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn tracestate_joined_in_order_and_trimmed() {
        assert_eq!(
            joined(&["congo=t61rcWkgMzE, rojo=00f067aa0ba902b7", " ,a@b=1 "]).as_deref(),
            Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7,a@b=1")
        );
        assert_eq!(
            joined(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]).as_deref(),
            Some("foo=1,bar=2,rojo=1,congo=2,baz=3"),
            "several headers combine in order"
        );
        for ows in [
            "foo=1 \t , \t bar=2, \t baz=3",
            "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
        ] {
            assert_eq!(
                joined(&[ows]).as_deref(),
                Some("foo=1,bar=2,baz=3"),
                "{ows:?}"
            );
        }
        for ows in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
            assert_eq!(joined(&[ows]).as_deref(), Some("foo=1"), "{ows:?}");
        }
        assert_eq!(joined(&[" , "]), None);
        assert_eq!(joined(&[""]), None, "an empty header passes nothing on");
        assert_eq!(joined(&["foo=1", ""]).as_deref(), Some("foo=1"));
        assert_eq!(joined(&["", "foo=1"]).as_deref(), Some("foo=1"));
    }

    #[test]
    fn tracestate_member_count_limit_drops_the_header() {
        let members = |n: usize| {
            (1..=n)
                .map(|i| format!("bar{i:02}={i:02}"))
                .collect::<Vec<_>>()
        };
        let thirty_two = members(32);
        let split: Vec<String> = thirty_two.chunks(10).map(|c| c.join(",")).collect();
        let split: Vec<&str> = split.iter().map(String::as_str).collect();
        let kept = joined(&split).expect("32 members pass");
        assert_eq!(kept.split(',').count(), MAX_TRACESTATE_MEMBERS);
        assert!(kept.starts_with("bar01=01,") && kept.ends_with(",bar32=32"));

        let thirty_three = members(33);
        let split: Vec<String> = thirty_three.chunks(10).map(|c| c.join(",")).collect();
        let split: Vec<&str> = split.iter().map(String::as_str).collect();
        assert_eq!(joined(&split), None, "33 members drop the whole header");
        assert_eq!(joined(&[&thirty_three.join(",")]), None);
        assert_eq!(
            joined(&[&format!("{}, ,", thirty_two.join(","))]).map(|k| k.split(',').count()),
            Some(32),
            "empty members do not count"
        );
    }

    #[test]
    fn tracestate_duplicate_keys_are_passed_on() {
        assert_eq!(joined(&["foo=1,foo=1"]).as_deref(), Some("foo=1,foo=1"));
        assert_eq!(joined(&["foo=1,foo=2"]).as_deref(), Some("foo=1,foo=2"));
        assert_eq!(joined(&["foo=1", "foo=1"]).as_deref(), Some("foo=1,foo=1"));
        assert_eq!(joined(&["foo=1", "foo=2"]).as_deref(), Some("foo=1,foo=2"));
    }

    #[test]
    fn tracestate_all_allowed_characters() {
        let key: String = ('a'..='z').chain('0'..='9').chain("_-*/".chars()).collect();
        let value: String = (0x20u8..=0x2b)
            .chain(0x2d..=0x3c)
            .chain(0x3e..=0x7e)
            .map(char::from)
            .collect();
        for key in [key.clone(), format!("{key}@a-z0-9_-*/")] {
            let member = format!("{key}={value}");
            assert_eq!(joined(&[&member]), Some(member.clone()), "{member}");
        }
    }

    #[test]
    fn tracestate_key_grammar_is_level_2() {
        let valid = [
            "foo@=1,bar=2".to_string(),
            "foo@@bar=1,bar=2".to_string(),
            "foo@bar@baz=1,bar=2".to_string(),
            "0abc=1".to_string(),
            format!("foo=1,{}=1", "z".repeat(256)),
            format!("foo=1,{}@{}=1", "t".repeat(241), "v".repeat(14)),
            format!("foo=1,{}@v=1", "t".repeat(242)),
            format!("foo=1,t@{}=1", "v".repeat(15)),
        ];
        for member in valid {
            assert_eq!(joined(&[&member]), Some(member.clone()), "{member}");
        }
        let invalid = [
            "@foo=1,bar=2".to_string(),
            format!("foo=1,{}=1", "z".repeat(257)),
            "foo =1".to_string(),
            "FOO=1".to_string(),
            "foo.bar=1".to_string(),
            "_foo=1".to_string(),
        ];
        for member in invalid {
            assert_eq!(joined(&[&member]), None, "{member}");
        }
        assert_eq!(joined(&["foo=1", &format!("{}=1", "z".repeat(257))]), None);
    }

    #[test]
    fn tracestate_illegal_values_drop_the_header() {
        for bad in ["foo=bar=baz", "foo=,bar=3", "k=", "k=a\nb", "k=va\tl"] {
            assert_eq!(joined(&[bad]), None, "{bad:?}");
        }
        let longest = format!("k={}", "v".repeat(MAX_TRACESTATE_VALUE));
        assert_eq!(joined(&[&longest]), Some(longest.clone()));
        assert_eq!(joined(&[&format!("{longest}v")]), None);
        assert_eq!(joined(&["k=trailing "]).as_deref(), Some("k=trailing"));
        assert_eq!(joined(&["k=in ner"]).as_deref(), Some("k=in ner"));
    }

    #[test]
    fn malformed_tracestate_is_dropped() {
        for bad in [
            &b"Upper=1"[..],
            b"k=",
            b"k=a\nb",
            b"=v",
            b"k=v=w,",
            b"k=\xff",
            b"k=va\tl",
            b"k\xff=v",
        ] {
            assert_eq!(join_tracestate([bad]), None, "{bad:?}");
        }
        let huge = vec![b'a'; MAX_TRACESTATE_INPUT + 1];
        assert_eq!(join_tracestate([huge.as_slice()]), None);
        let keys: Vec<String> = (0..10_000).map(|i| format!("k{i}=v")).collect();
        assert_eq!(
            join_tracestate(keys.iter().map(String::as_bytes)),
            None,
            "10 000 headers"
        );
        let mut builder = TracestateBuilder::default();
        builder.push(b"a=1");
        assert!(builder.unchanged());
        builder.push(b"b=2");
        assert!(!builder.unchanged());
        assert_eq!(builder.values(), 2);
    }

    #[test]
    fn continuing_keeps_trace_and_parent() {
        let tp = parse_traceparent(VALID.as_bytes()).expect("valid");
        let span = SpanId([1; 8]);
        let ctx = SpanContext::continue_or_start(Some(&tp), TraceId([9; 16]), span, 0.0);
        assert_eq!(ctx.trace_id, tp.trace_id);
        assert_eq!(ctx.parent_span_id, Some(tp.parent_id));
        assert!(
            ctx.sampled,
            "parent-based: the caller's sampled flag wins over the ratio"
        );
        assert_eq!(
            ctx.traceparent().as_str(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0101010101010101-01"
        );
    }

    #[test]
    fn never_sets_the_random_flag() {
        let tp = parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03")
            .expect("valid");
        let ctx = SpanContext::continue_or_start(Some(&tp), TraceId([9; 16]), SpanId([1; 8]), 1.0);
        assert!(ctx.traceparent().as_str().ends_with("-01"));
    }

    #[test]
    fn new_traces_sample_by_ratio() {
        let span = SpanId([1; 8]);
        let ctx = SpanContext::continue_or_start(None, TraceId([0xff; 16]), span, 1.0);
        assert!(ctx.sampled && ctx.parent_span_id.is_none());
        assert!(!sampled_by_ratio(&TraceId([0xff; 16]), 0.0));
        assert!(sampled_by_ratio(&TraceId([0; 16]), 0.01));
        assert!(!sampled_by_ratio(&TraceId([0xff; 16]), 0.99));
        let mut generator = crate::ids::Instance::new(&[3]);
        let sampled = (0..10_000)
            .filter(|_| sampled_by_ratio(&generator.next_ids(0, &[]).trace_id, 0.25))
            .count();
        assert!((2_200..2_800).contains(&sampled), "{sampled}");
        let unsampled = SpanContext::continue_or_start(None, TraceId([0xff; 16]), span, 0.0);
        assert!(unsampled.traceparent().as_str().ends_with("-00"));
    }
}
