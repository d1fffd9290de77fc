//! The one JSON-RPC message walker behind the request and response scanners: a single serde
//! visitor reads only the members MCP needs (`method`, `id`, `params.name`, `params.uri`,
//! `result.isError`, `result.resultType`, `error.code`) and skips every other value with
//! `IgnoredAny` (iteratively, without UTF-8 or number checks). One visitor type means one copy
//! of serde_json's parser in the plugins: a visitor per member cost ≈ 45 KB of `.wasm` per
//! scanner when measured.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{
    INPUT_REQUIRED, MAX_REQUEST_ID_BYTES, MAX_URI_BYTES, Name, NameError, RequestId,
    is_notification_method, known_method, method,
};

/// What one JSON text holds, as far as MCP cares.
#[derive(Debug, Default)]
pub(super) struct Scanned<'a> {
    /// For a JSON array: whether it has any element (its elements are skipped).
    pub batch: Option<bool>,
    pub method: Option<MethodName>,
    pub id: Option<RequestId<'a>>,
    /// `params.name`, at most [`MAX_URI_BYTES`] (the caller applies the method's own bound).
    pub name: Option<Name<'a>>,
    /// `params.uri`, at most [`MAX_URI_BYTES`].
    pub uri: Option<Name<'a>>,
    pub result: Option<ResultFlags>,
    /// `Some(code)` for an `error` with an integer `code`, `Some(None)` for one without.
    pub error: Option<Option<i64>>,
    /// A read member has a type JSON-RPC forbids. (Flagged rather than returned as a serde
    /// error: building a custom serde_json error links its message parser, ≈ 3.6 KB.)
    invalid: bool,
}

/// A `method` member: its constant (or `_OTHER`), and whether it names a notification.
#[derive(Debug, Clone, Copy)]
pub(super) struct MethodName {
    pub name: &'static str,
    pub notification: bool,
}

/// What a `result` member says beyond "ok".
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ResultFlags {
    /// `isError: true`.
    pub tool_error: bool,
    /// `resultType: "input_required"`.
    pub input_required: bool,
}

/// Walks one JSON text. `None` when it is not JSON, is neither an object nor an array, or a
/// read member has a type JSON-RPC forbids (`method` not a string, `id` an object or boolean).
/// Later duplicates of a member win, as in the JSON parsers servers use.
pub(super) fn scan(json: &[u8]) -> Option<Scanned<'_>> {
    let mut scanned = Scanned::default();
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let top = Seed {
        at: At::Top,
        scanned: &mut scanned,
    }
    .deserialize(&mut deserializer)
    .ok()?;
    deserializer.end().ok()?;
    (matches!(top, Value::Container) && !scanned.invalid).then_some(scanned)
}

/// Where the walker is: the members read depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Top,
    Params,
    Result,
    Error,
    /// A member's value, returned to the object that holds it.
    Value,
}

/// A value as the walker returns it to its object.
#[derive(Debug)]
enum Value<'a> {
    /// At most [`MAX_URI_BYTES`] long; borrowed when it had no escapes.
    Str(Cow<'a, str>),
    /// A longer string, not copied.
    LongStr,
    Int(i64),
    UInt(u64),
    /// A number with a fraction or exponent, or an integer beyond 64 bits.
    Float,
    Bool(bool),
    Null,
    /// An object or array (walked or skipped).
    Container,
}

/// Member names the walker may read; any other is `Other`.
#[derive(Clone, Copy)]
enum Key {
    Method,
    Id,
    Params,
    Result,
    Error,
    Name,
    Uri,
    IsError,
    ResultType,
    Code,
    Other,
}

struct Seed<'s, 'a> {
    at: At,
    scanned: &'s mut Scanned<'a>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_, 'de> {
    type Value = Value<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, 'de> {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value<'de>, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value<'de>, E> {
        Ok(Value::Int(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value<'de>, E> {
        Ok(Value::UInt(n))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value<'de>, E> {
        Ok(Value::Float)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Value<'de>, E> {
        Ok(if text.len() > MAX_URI_BYTES {
            Value::LongStr
        } else {
            Value::Str(Cow::Borrowed(text))
        })
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Value<'de>, E> {
        Ok(if text.len() > MAX_URI_BYTES {
            Value::LongStr
        } else {
            Value::Str(Cow::Owned(text.to_owned()))
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        let mut any = false;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            any = true;
        }
        if self.at == At::Top {
            self.scanned.batch = Some(any);
        }
        Ok(Value::Container)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        let scanned = self.scanned;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let next = match (self.at, key) {
                (At::Top, Key::Params) => At::Params,
                (At::Top, Key::Result) => {
                    scanned.result = Some(ResultFlags::default());
                    At::Result
                }
                (At::Top, Key::Error) => {
                    scanned.error = Some(None);
                    At::Error
                }
                (At::Top, Key::Method | Key::Id)
                | (At::Params, Key::Name | Key::Uri)
                | (At::Result, Key::IsError | Key::ResultType)
                | (At::Error, Key::Code) => At::Value,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let value = map.next_value_seed(Seed {
                at: next,
                scanned: &mut *scanned,
            })?;
            if next != At::Value {
                continue;
            }
            match (self.at, key) {
                (At::Top, Key::Method) => {
                    scanned.method = method_name(value);
                    scanned.invalid |= scanned.method.is_none();
                }
                (At::Top, Key::Id) => {
                    scanned.id = request_id(value);
                    scanned.invalid |= scanned.id.is_none();
                }
                (At::Params, Key::Name) => scanned.name = Some(name(value)),
                (At::Params, Key::Uri) => scanned.uri = Some(name(value)),
                (At::Result, Key::IsError) => {
                    if let Some(flags) = &mut scanned.result {
                        flags.tool_error = matches!(value, Value::Bool(true));
                    }
                }
                (At::Result, Key::ResultType) => {
                    if let Some(flags) = &mut scanned.result {
                        flags.input_required =
                            matches!(value, Value::Str(text) if text == INPUT_REQUIRED);
                    }
                }
                (At::Error, Key::Code) => {
                    scanned.error = Some(match value {
                        Value::Int(n) => Some(n),
                        Value::UInt(n) => i64::try_from(n).ok(),
                        _ => None,
                    });
                }
                _ => {}
            }
        }
        Ok(Value::Container)
    }
}

/// A `method` value; `None` when it is not a string.
fn method_name(value: Value<'_>) -> Option<MethodName> {
    match value {
        Value::Str(text) => Some(MethodName {
            name: known_method(text.as_bytes()),
            notification: is_notification_method(text.as_bytes()),
        }),
        Value::LongStr => Some(MethodName {
            name: method::OTHER,
            notification: false,
        }),
        _ => None,
    }
}

/// An `id` value, bounded; `None` when it is not a string, number or null.
fn request_id(value: Value<'_>) -> Option<RequestId<'_>> {
    Some(match value {
        Value::Str(text)
            if text.len() <= MAX_REQUEST_ID_BYTES && !text.chars().any(char::is_control) =>
        {
            RequestId::Str(text)
        }
        Value::Str(_) | Value::LongStr => RequestId::LongStr,
        Value::Int(n) => RequestId::Int(n),
        Value::UInt(n) => RequestId::UInt(n),
        Value::Float => RequestId::OtherNumber,
        Value::Null => RequestId::Null,
        Value::Bool(_) | Value::Container => return None,
    })
}

fn name(value: Value<'_>) -> Name<'_> {
    match value {
        Value::Str(text) => Ok(text),
        Value::LongStr => Err(NameError::TooLong),
        _ => Err(NameError::NotText),
    }
}

/// Reads a member name into a [`Key`].
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "method" => Key::Method,
            "id" => Key::Id,
            "params" => Key::Params,
            "result" => Key::Result,
            "error" => Key::Error,
            "name" => Key::Name,
            "uri" => Key::Uri,
            "isError" => Key::IsError,
            "resultType" => Key::ResultType,
            "code" => Key::Code,
            _ => Key::Other,
        })
    }
}
