//! The outcome of an MCP operation from its response body: a complete `application/json` body,
//! or a `text/event-stream` read chunk by chunk (SSE framing per the WHATWG rules) whose last
//! JSON-RPC response decides. Memory is bounded by one body or one event (`limit`); a longer one
//! gives an unknown outcome, never a longer buffer.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Outcome, UnknownOutcome, trim_ows};

/// The `resultType` of a 2026-07-28 result that asks the client for input and a retry.
pub const INPUT_REQUIRED: &str = "input_required";

const BOM: &[u8; 3] = b"\xef\xbb\xbf";
const DATA_FIELD: &[u8] = b"data";

/// The outcome of a complete response body. `limit` bounds what is read: a JSON body or one
/// SSE event longer than it gives [`UnknownOutcome::TooLarge`]. A JSON body is read in place.
#[must_use]
pub fn scan_response(content_type: Option<&[u8]>, body: &[u8], limit: usize) -> Outcome {
    match BodyKind::of(content_type) {
        BodyKind::Json if body.len() > limit => Outcome::Unknown(UnknownOutcome::TooLarge),
        BodyKind::Json => json_outcome(body),
        BodyKind::Sse | BodyKind::Other => {
            let mut scanner = ResponseScanner::new(content_type, limit);
            scanner.push(body);
            scanner.finish()
        }
    }
}

/// Reads a response body chunk by chunk, keeping at most `limit` bytes (one JSON body, or the
/// data of one SSE event), so a stream can be watched as it passes without being held back.
/// Any split of a body into chunks gives the same outcome.
#[derive(Debug, Clone)]
pub struct ResponseScanner {
    limit: usize,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    Json {
        buf: Vec<u8>,
        over: bool,
    },
    Sse(Box<SseState>),
    /// Neither JSON nor SSE: remembers only whether any byte came.
    Other {
        any: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Sse,
    Other,
}

impl BodyKind {
    /// By media type (parameters ignored, case-insensitive).
    fn of(content_type: Option<&[u8]>) -> Self {
        let Some(content_type) = content_type else {
            return Self::Other;
        };
        let media = content_type
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default();
        let media = trim_ows(media);
        if media.eq_ignore_ascii_case(b"application/json") {
            Self::Json
        } else if media.eq_ignore_ascii_case(b"text/event-stream") {
            Self::Sse
        } else {
            Self::Other
        }
    }
}

impl ResponseScanner {
    /// A scanner for a response of `content_type` (`None` when the response has none).
    #[must_use]
    pub fn new(content_type: Option<&[u8]>, limit: usize) -> Self {
        let body = match BodyKind::of(content_type) {
            BodyKind::Json => Body::Json {
                buf: Vec::new(),
                over: false,
            },
            BodyKind::Sse => Body::Sse(Box::default()),
            BodyKind::Other => Body::Other { any: false },
        };
        Self { limit, body }
    }

    /// Reads the next chunk of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        match &mut self.body {
            Body::Json { buf, over } if !*over => {
                if buf.len() + chunk.len() > self.limit {
                    *over = true;
                    *buf = Vec::new();
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            Body::Json { .. } => {}
            Body::Sse(sse) => sse.push(chunk, self.limit),
            Body::Other { any } => *any |= !chunk.is_empty(),
        }
    }

    /// The outcome once the body has ended. An SSE event not ended by a blank line is not
    /// read (as the WHATWG rules say of a stream that ends mid-event).
    #[must_use]
    pub fn finish(self) -> Outcome {
        match self.body {
            Body::Json { over: true, .. } => Outcome::Unknown(UnknownOutcome::TooLarge),
            Body::Json { buf, .. } => json_outcome(&buf),
            Body::Sse(sse) => sse.finish(),
            Body::Other { any: false } => Outcome::Unknown(UnknownOutcome::NoResponse),
            Body::Other { any: true } => Outcome::Unknown(UnknownOutcome::ContentType),
        }
    }
}

/// Where the SSE parser is within a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Line {
    #[default]
    Start,
    /// Reading a field name (only `data` matters).
    Field,
    /// Just after `data:`: one leading space is dropped.
    DataValueStart,
    DataValue,
    /// A comment, or a field other than `data`: skipped to the end of the line.
    Skip,
}

#[derive(Debug, Clone, Default)]
struct SseState {
    line: Line,
    /// The field name so far, up to one byte more than `data` (enough to tell it apart).
    field: [u8; 5],
    field_len: usize,
    /// The previous line ended with CR: a following LF belongs to it.
    after_cr: bool,
    /// Bytes of a leading byte order mark matched so far; 3 once decided.
    bom_matched: usize,
    /// The current event's data lines, joined with LF (each line followed by LF).
    data: Vec<u8>,
    /// The current event's data went past the limit (and was dropped).
    data_over: bool,
    /// The outcome of the last event that was a response or could not be read.
    last: Option<Outcome>,
}

impl SseState {
    fn push(&mut self, mut chunk: &[u8], limit: usize) {
        while self.bom_matched < BOM.len() {
            let Some((&b, rest)) = chunk.split_first() else {
                return;
            };
            if b == BOM[self.bom_matched] {
                self.bom_matched += 1;
                chunk = rest;
            } else {
                let matched = self.bom_matched;
                self.bom_matched = BOM.len();
                self.feed(&BOM[..matched], limit);
            }
        }
        self.feed(chunk, limit);
    }

    fn feed(&mut self, chunk: &[u8], limit: usize) {
        let mut i = 0;
        while i < chunk.len() {
            let b = chunk[i];
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    i += 1;
                    continue;
                }
            }
            match self.line {
                Line::Start => match b {
                    b'\r' | b'\n' => {
                        self.dispatch();
                        self.end_line(b);
                        i += 1;
                    }
                    b':' => {
                        self.line = Line::Skip;
                        i += 1;
                    }
                    _ => {
                        self.field_len = 0;
                        self.line = Line::Field;
                    }
                },
                Line::Field => {
                    match b {
                        b':' => {
                            self.line = if self.is_data_field() {
                                Line::DataValueStart
                            } else {
                                Line::Skip
                            };
                        }
                        b'\r' | b'\n' => {
                            // A line without a colon: the whole line is the field name, the
                            // value is empty.
                            if self.is_data_field() {
                                self.append_data(b"\n", limit);
                            }
                            self.end_line(b);
                        }
                        _ => {
                            if let Some(slot) = self.field.get_mut(self.field_len) {
                                *slot = b;
                            }
                            self.field_len = self.field_len.saturating_add(1);
                        }
                    }
                    i += 1;
                }
                Line::DataValueStart => {
                    if b == b' ' {
                        i += 1;
                    }
                    self.line = Line::DataValue;
                }
                Line::DataValue | Line::Skip => {
                    let rest = &chunk[i..];
                    let end = rest.iter().position(|&c| c == b'\r' || c == b'\n');
                    let value = &rest[..end.unwrap_or(rest.len())];
                    if self.line == Line::DataValue {
                        self.append_data(value, limit);
                    }
                    i += value.len();
                    if let Some(end) = end {
                        if self.line == Line::DataValue {
                            self.append_data(b"\n", limit);
                        }
                        self.end_line(rest[end]);
                        i += 1;
                    }
                }
            }
        }
    }

    fn is_data_field(&self) -> bool {
        self.field_len == DATA_FIELD.len() && &self.field[..DATA_FIELD.len()] == DATA_FIELD
    }

    fn end_line(&mut self, eol: u8) {
        self.line = Line::Start;
        self.after_cr = eol == b'\r';
    }

    fn append_data(&mut self, bytes: &[u8], limit: usize) {
        if self.data_over {
            return;
        }
        if self.data.len() + bytes.len() > limit {
            self.data_over = true;
            self.data.clear();
        } else {
            self.data.extend_from_slice(bytes);
        }
    }

    /// A blank line: the event's data (without its last LF) is read as one JSON-RPC message.
    fn dispatch(&mut self) {
        if self.data_over {
            self.last = Some(Outcome::Unknown(UnknownOutcome::TooLarge));
        } else if let Some((b'\n', data)) = self.data.split_last() {
            match classify(data) {
                Message::Response(outcome) => self.last = Some(outcome),
                Message::Batch => self.last = Some(Outcome::Unknown(UnknownOutcome::Batch)),
                Message::Invalid => self.last = Some(Outcome::Unknown(UnknownOutcome::Invalid)),
                Message::Other | Message::Empty => {}
            }
        }
        self.data.clear();
        self.data_over = false;
    }

    fn finish(self) -> Outcome {
        self.last
            .unwrap_or(Outcome::Unknown(UnknownOutcome::NoResponse))
    }
}

/// The outcome of a complete JSON body holding one JSON-RPC message.
fn json_outcome(body: &[u8]) -> Outcome {
    match classify(body) {
        Message::Response(outcome) => outcome,
        Message::Batch => Outcome::Unknown(UnknownOutcome::Batch),
        Message::Invalid => Outcome::Unknown(UnknownOutcome::Invalid),
        Message::Other | Message::Empty => Outcome::Unknown(UnknownOutcome::NoResponse),
    }
}

/// What one JSON text is, as a JSON-RPC message from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Message {
    Response(Outcome),
    /// A request or notification from the server (progress, logging, elicitation …).
    Other,
    Batch,
    /// Only whitespace (an SSE priming event has empty data).
    Empty,
    Invalid,
}

/// Classifies one JSON-RPC message. A `method` makes it a server request or notification;
/// else `error` (its integer `code`) wins over `result`; a `result` is `input_required` when
/// its `resultType` says so, a tool error when `isError` is `true`, else ok.
fn classify(json: &[u8]) -> Message {
    if trim_json_ws(json).is_empty() {
        return Message::Empty;
    }
    match serde_json::from_slice::<Top>(json) {
        Ok(Top::Batch) => Message::Batch,
        Ok(Top::Message(m)) if m.method => Message::Other,
        Ok(Top::Message(m)) => match (m.error, m.result) {
            (Some(Some(code)), _) => Message::Response(Outcome::Error(code)),
            (Some(None), _) => Message::Response(Outcome::Unknown(UnknownOutcome::Invalid)),
            (None, Some(ResultSummary::InputRequired)) => Message::Response(Outcome::InputRequired),
            (None, Some(ResultSummary::ToolError)) => Message::Response(Outcome::ToolError),
            (None, Some(ResultSummary::Ok)) => Message::Response(Outcome::Ok),
            (None, None) => Message::Invalid,
        },
        Err(_) => Message::Invalid,
    }
}

fn trim_json_ws(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

enum Top {
    Message(Summary),
    Batch,
}

#[derive(Default)]
struct Summary {
    method: bool,
    /// `Some(code)` for an error with an integer code, `Some(None)` for one without.
    error: Option<Option<i64>>,
    result: Option<ResultSummary>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ResultSummary {
    Ok,
    ToolError,
    InputRequired,
}

/// Implements the scalar and sequence visits of a visitor as "some other value": the value is
/// skipped and `$value` returned, so only objects are looked into.
macro_rules! other_values_are {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($value)
        }
    };
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopVisitor;
        impl<'de> Visitor<'de> for TopVisitor {
            type Value = Top;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                let mut summary = Summary::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Method => {
                            map.next_value::<IgnoredAny>()?;
                            summary.method = true;
                        }
                        Key::Error => summary.error = Some(map.next_value::<ErrorCode>()?.0),
                        Key::Result => summary.result = Some(map.next_value()?),
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Top::Message(summary))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Top::Batch)
            }
        }
        deserializer.deserialize_any(TopVisitor)
    }
}

/// Object members the classifier reads; any other is skipped.
enum Key {
    Method,
    Error,
    Result,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "method" => Key::Method,
                    "error" => Key::Error,
                    "result" => Key::Result,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for ResultSummary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ResultVisitor;
        impl<'de> Visitor<'de> for ResultVisitor {
            type Value = ResultSummary;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a result")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut tool_error, mut input_required) = (false, false);
                while let Some(key) = map.next_key::<ResultKey>()? {
                    match key {
                        ResultKey::IsError => {
                            tool_error = map.next_value::<Probe>()? == Probe::True;
                        }
                        ResultKey::ResultType => {
                            input_required = map.next_value::<Probe>()? == Probe::InputRequired;
                        }
                        ResultKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(if input_required {
                    ResultSummary::InputRequired
                } else if tool_error {
                    ResultSummary::ToolError
                } else {
                    ResultSummary::Ok
                })
            }
            other_values_are!(ResultSummary::Ok);
        }
        deserializer.deserialize_any(ResultVisitor)
    }
}

enum ResultKey {
    IsError,
    ResultType,
    Other,
}

impl<'de> Deserialize<'de> for ResultKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ResultKeyVisitor;
        impl Visitor<'_> for ResultKeyVisitor {
            type Value = ResultKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a result member name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<ResultKey, E> {
                Ok(match key {
                    "isError" => ResultKey::IsError,
                    "resultType" => ResultKey::ResultType,
                    _ => ResultKey::Other,
                })
            }
        }
        deserializer.deserialize_identifier(ResultKeyVisitor)
    }
}

/// The integer `code` of an `error` object; `None` when absent, not an integer, or the error
/// is not an object.
struct ErrorCode(Option<i64>);

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ErrorVisitor;
        impl<'de> Visitor<'de> for ErrorVisitor {
            type Value = ErrorCode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an error")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut code = None;
                while let Some(key) = map.next_key::<ErrorKey>()? {
                    if key == ErrorKey::Code {
                        code = match map.next_value::<Probe>()? {
                            Probe::Int(n) => Some(n),
                            _ => None,
                        };
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(ErrorCode(code))
            }
            other_values_are!(ErrorCode(None));
        }
        deserializer.deserialize_any(ErrorVisitor)
    }
}

#[derive(PartialEq, Eq)]
enum ErrorKey {
    Code,
    Other,
}

impl<'de> Deserialize<'de> for ErrorKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ErrorKeyVisitor;
        impl Visitor<'_> for ErrorKeyVisitor {
            type Value = ErrorKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an error member name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<ErrorKey, E> {
                Ok(if key == "code" {
                    ErrorKey::Code
                } else {
                    ErrorKey::Other
                })
            }
        }
        deserializer.deserialize_identifier(ErrorKeyVisitor)
    }
}

/// What a member's value is, as far as the classifier cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    True,
    InputRequired,
    Int(i64),
    Other,
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProbeVisitor;
        impl<'de> Visitor<'de> for ProbeVisitor {
            type Value = Probe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Probe, E> {
                Ok(if b { Probe::True } else { Probe::Other })
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Probe, E> {
                Ok(Probe::Int(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Probe, E> {
                Ok(i64::try_from(n).map_or(Probe::Other, Probe::Int))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Probe, E> {
                Ok(Probe::Other)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Probe, E> {
                Ok(if text == INPUT_REQUIRED {
                    Probe::InputRequired
                } else {
                    Probe::Other
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Probe, E> {
                Ok(Probe::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Probe, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Probe::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Probe::Other)
            }
        }
        deserializer.deserialize_any(ProbeVisitor)
    }
}
