//! The outcome of an MCP operation from its response body: a complete `application/json` body,
//! or a `text/event-stream` read chunk by chunk (SSE framing per the WHATWG rules) whose last
//! JSON-RPC response decides (events are read whatever their `event:` type; MCP servers send
//! `message` or none). Memory is bounded by one body or one event (`limit`); a longer one gives
//! an unknown outcome, never a longer buffer.

use super::{Outcome, SSE_MEDIA_TYPE, UnknownOutcome, json, media_type_is};

const JSON_MEDIA_TYPE: &[u8] = b"application/json";
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
        match content_type {
            Some(ct) if media_type_is(ct, JSON_MEDIA_TYPE) => Self::Json,
            Some(ct) if media_type_is(ct, SSE_MEDIA_TYPE) => Self::Sse,
            _ => Self::Other,
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
    let Some(scanned) = json::scan(json) else {
        return Message::Invalid;
    };
    if scanned.batch.is_some() {
        return Message::Batch;
    }
    if scanned.method.is_some() {
        return Message::Other;
    }
    Message::Response(match (scanned.error, scanned.result) {
        (Some(Some(code)), _) => Outcome::Error(code),
        (Some(None), _) => Outcome::Unknown(UnknownOutcome::Invalid),
        (None, Some(flags)) if flags.input_required => Outcome::InputRequired,
        (None, Some(flags)) if flags.tool_error => Outcome::ToolError,
        (None, Some(_)) => Outcome::Ok,
        (None, None) => return Message::Invalid,
    })
}

fn trim_json_ws(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}
