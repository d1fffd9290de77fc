//! The lenient JSON reader under the config: scalars as strings (Traefik sends `"true"`,
//! `"0.5"`), lists as comma-separated strings or objects keyed `"0"`, `"1"`, …, keys in any
//! case; unknown keys are refused and every error names its key path.
//!
//! Hand-written: serde's derive matches keys exactly (aliases are fixed spellings, not case
//! folding), and helpers such as `serde_with`'s `PickFirst<(_, DisplayFromStr)>` or
//! `serde-aux` cover string scalars only, not the indexed-object lists nor the key-path
//! errors; deriving `Deserialize` for the config would also add its code to both plugins.

use std::fmt;

use serde_json::{Map, Value};

/// A config error: the key path (e.g. `collector.timeoutMs`, `counters[1].status`) and
/// what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path; empty for the document itself.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "config: {}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Walks one JSON object, remembering which keys were read so leftovers can be refused.
pub(super) struct Obj<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
    known: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    pub(super) fn new(map: &'a Map<String, Value>, prefix: String) -> Self {
        Self {
            map,
            prefix,
            known: Vec::new(),
        }
    }

    /// The value of `key`, `None` when absent or `null`.
    /// Keys match case-insensitively: some Traefik providers (labels) change key case.
    pub(super) fn take(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        let value = match self.map.get(key) {
            Some(exact) => Some(exact),
            None => self
                .map
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v),
        };
        value.filter(|v| !v.is_null())
    }

    pub(super) fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    pub(super) fn finish(self) -> Result<(), ConfigError> {
        let unknown = self
            .map
            .keys()
            .find(|k| !self.known.iter().any(|known| known.eq_ignore_ascii_case(k)));
        match unknown {
            None => Ok(()),
            Some(unknown) => Err(ConfigError {
                path: self.path(&shorten(unknown)),
                message: format!("unknown key (expected one of: {})", self.known.join(", ")),
            }),
        }
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    if text.len() <= MAX {
        return text.escape_debug().to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", text[..end].escape_debug())
}

/// How a found value is shown in an error.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("\"{}\"", shorten(s)),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

pub(super) fn expected(path: &str, what: &str, got: &Value) -> ConfigError {
    ConfigError {
        path: path.to_string(),
        message: format!("expected {what}, got {}", describe(got)),
    }
}

pub(super) fn text(
    path: &str,
    value: &Value,
    min: usize,
    max: usize,
) -> Result<String, ConfigError> {
    match value {
        Value::String(s) if (min..=max).contains(&s.len()) && !s.chars().any(char::is_control) => {
            Ok(s.clone())
        }
        other => Err(expected(
            path,
            &format!("a string of {min} to {max} bytes without control characters"),
            other,
        )),
    }
}

pub(super) fn boolean(path: &str, value: &Value) -> Result<bool, ConfigError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(expected(path, "true or false", other)),
    }
}

pub(super) fn uint(path: &str, value: &Value, min: u64, max: u64) -> Result<u64, ConfigError> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    parsed
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| expected(path, &format!("a whole number from {min} to {max}"), value))
}

pub(super) fn ratio(path: &str, value: &Value) -> Result<f64, ConfigError> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    parsed
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| expected(path, "a number between 0 and 1", value))
}

pub(super) fn choice<T: Copy>(
    path: &str,
    value: &Value,
    options: &[(&str, T)],
) -> Result<T, ConfigError> {
    if let Value::String(s) = value
        && let Some((_, found)) = options
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s.trim()))
    {
        return Ok(*found);
    }
    let names: Vec<String> = options
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    Err(expected(
        path,
        &format!("one of {}", names.join(", ")),
        value,
    ))
}

/// A list: a JSON array, an object keyed `"0"`, `"1"`, … (in index order), or — for lists of
/// strings — one comma-separated string.
pub(super) fn list<'a>(
    path: &str,
    value: &'a Value,
) -> Result<Vec<(String, ListItem<'a>)>, ConfigError> {
    match value {
        Value::Array(items) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}[{i}]"), ListItem::Json(v)))
            .collect()),
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .enumerate()
            .map(|(i, part)| (format!("{path}[{i}]"), ListItem::Text(part)))
            .collect()),
        Value::Object(map) => {
            let mut indexed = Vec::with_capacity(map.len());
            for (key, v) in map {
                match key.parse::<usize>() {
                    Ok(i) if i < map.len() && key.bytes().all(|b| b.is_ascii_digit()) => {
                        indexed.push((i, v));
                    }
                    _ => return Err(expected(path, "a list", value)),
                }
            }
            indexed.sort_by_key(|(i, _)| *i);
            Ok(indexed
                .into_iter()
                .map(|(i, v)| (format!("{path}[{i}]"), ListItem::Json(v)))
                .collect())
        }
        other => Err(expected(path, "a list", other)),
    }
}

pub(super) enum ListItem<'a> {
    Json(&'a Value),
    Text(&'a str),
}

pub(super) fn missing(path: &str, key: &str) -> ConfigError {
    ConfigError {
        path: format!("{path}.{key}"),
        message: "expected a value, got nothing (this key is required)".to_string(),
    }
}

/// Rule objects of a list, each with its key path.
pub(super) type RuleObjects<'a> = Vec<(String, &'a Map<String, Value>)>;

pub(super) fn objects<'a>(path: &str, value: &'a Value) -> Result<RuleObjects<'a>, ConfigError> {
    let items = list(path, value)?;
    if items.len() > 256 {
        return Err(expected(path, "at most 256 rules", value));
    }
    items
        .into_iter()
        .map(|(item_path, item)| match item {
            ListItem::Json(Value::Object(map)) => Ok((item_path, map)),
            ListItem::Json(v) => Err(expected(&item_path, "an object", v)),
            ListItem::Text(s) => Err(expected(
                &item_path,
                "an object",
                &Value::String(s.to_string()),
            )),
        })
        .collect()
}

pub(super) fn section<'a>(path: &str, value: &'a Value) -> Result<Obj<'a>, ConfigError> {
    match value {
        Value::Object(map) => Ok(Obj::new(map, path.to_string())),
        other => Err(expected(path, "an object", other)),
    }
}
