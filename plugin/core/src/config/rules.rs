//! Config values that name routes: route templates (`routes`, `bufferRoutes`) and the
//! classification rules (`tokenDefault`, `tokenRules`, `counters`), and the MCP buffering
//! allow-list (`mcpBufferMethods`).

use serde_json::Value;

use super::lenient_json::{ConfigError, ListItem, Obj, choice, expected, list, missing, objects};
use crate::classify::{CounterRule, StatusMatch, TokenMode, TokenRule};
use crate::mcp::policy::BufferPolicy;
use crate::route::{Method, RoutePattern};

fn pattern(path: &str, item: &Value) -> Result<RoutePattern, ConfigError> {
    let Value::String(s) = item else {
        return Err(expected(path, "a route template string", item));
    };
    RoutePattern::parse(s).map_err(|what| ConfigError {
        path: path.to_string(),
        message: format!("expected {what}"),
    })
}

pub(super) fn patterns(path: &str, value: &Value) -> Result<Vec<RoutePattern>, ConfigError> {
    let items = list(path, value)?;
    if items.len() > 256 {
        return Err(expected(path, "at most 256 route templates", value));
    }
    items
        .into_iter()
        .map(|(item_path, item)| match item {
            ListItem::Json(v) => pattern(&item_path, v),
            ListItem::Text(s) => pattern(&item_path, &Value::String(s.to_string())),
        })
        .collect()
}

/// `mcpBufferMethods`: a list of MCP methods, `notifications`, `responses`, `DELETE`; the
/// error names the refused entry's index and value.
pub(super) fn buffer_methods(path: &str, value: &Value) -> Result<BufferPolicy, ConfigError> {
    let items = list(path, value)?;
    let mut entries = Vec::with_capacity(items.len());
    for (item_path, item) in &items {
        let entry = match item {
            ListItem::Json(Value::String(s)) => s.as_str(),
            ListItem::Text(s) => s,
            ListItem::Json(other) => return Err(expected(item_path, "an MCP method name", other)),
        };
        BufferPolicy::from_entries([entry]).map_err(|message| ConfigError {
            path: item_path.clone(),
            message,
        })?;
        entries.push(entry);
    }
    BufferPolicy::from_entries(entries).map_err(|message| ConfigError {
        path: path.to_string(),
        message,
    })
}

pub(super) fn token_mode(path: &str, value: &Value) -> Result<TokenMode, ConfigError> {
    choice(
        path,
        value,
        &[
            ("required", TokenMode::Required),
            ("optional", TokenMode::Optional),
            ("off", TokenMode::Off),
        ],
    )
}

pub(super) fn token_rules(path: &str, value: &Value) -> Result<Vec<TokenRule>, ConfigError> {
    let mut rules = Vec::new();
    for (item_path, map) in objects(path, value)? {
        let mut obj = Obj::new(map, item_path.clone());
        let route = match obj.take("route") {
            Some(v) => pattern(&obj.path("route"), v)?,
            None => return Err(missing(&item_path, "route")),
        };
        let mode = match obj.take("mode") {
            Some(v) => token_mode(&obj.path("mode"), v)?,
            None => return Err(missing(&item_path, "mode")),
        };
        obj.finish()?;
        rules.push(TokenRule { route, mode });
    }
    Ok(rules)
}

pub(super) fn counter_rules(path: &str, value: &Value) -> Result<Vec<CounterRule>, ConfigError> {
    let mut rules = Vec::new();
    for (item_path, map) in objects(path, value)? {
        let mut obj = Obj::new(map, item_path.clone());
        let name = match obj.take("name") {
            Some(Value::String(s))
                if (1..=64).contains(&s.len())
                    && s.starts_with(|c: char| c.is_ascii_lowercase())
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
            {
                s.clone()
            }
            Some(v) => {
                return Err(expected(
                    &obj.path("name"),
                    "a name like client_registrations ([a-z][a-z0-9_]*, ≤ 64)",
                    v,
                ));
            }
            None => return Err(missing(&item_path, "name")),
        };
        let method = match obj.take("method") {
            Some(v @ Value::String(s)) => match Method::from_bytes(s.trim().as_bytes()) {
                Method::Other => {
                    return Err(expected(
                        &obj.path("method"),
                        "a standard HTTP method such as POST",
                        v,
                    ));
                }
                m => Some(m),
            },
            Some(v) => {
                return Err(expected(
                    &obj.path("method"),
                    "a standard HTTP method such as POST",
                    v,
                ));
            }
            None => None,
        };
        let route = match obj.take("route") {
            Some(v) => Some(pattern(&obj.path("route"), v)?),
            None => None,
        };
        let status = match obj.take("status") {
            Some(v) => Some(status_match(&obj.path("status"), v)?),
            None => None,
        };
        obj.finish()?;
        rules.push(CounterRule {
            name,
            method,
            route,
            status,
        });
    }
    Ok(rules)
}

fn status_match(path: &str, value: &Value) -> Result<StatusMatch, ConfigError> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_ascii_lowercase(),
        _ => String::new(),
    };
    let parsed = match text.as_bytes() {
        [d @ b'1'..=b'5', b'x', b'x'] => Some(StatusMatch::Class(d - b'0')),
        _ => text
            .parse::<u16>()
            .ok()
            .filter(|s| (100..=599).contains(s))
            .map(StatusMatch::Exact),
    };
    parsed.ok_or_else(|| expected(path, "a status code (100-599) or class like \"2xx\"", value))
}
