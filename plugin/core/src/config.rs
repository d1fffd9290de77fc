//! The plugin's configuration, shared by both adapters: parsed from the middleware's JSON
//! (camelCase keys, Traefik style), scalars also accepted as strings, unknown keys refused,
//! every error naming the key path and what was expected. `{}` gives all defaults.
//!
//! Keys (all optional):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `service` | `"gateway"` | the service the middleware guards (a metric label) |
//! | `requestIdHeader` | `"X-Request-Id"` | header carrying the request id |
//! | `requestIdPolicy` | `"validate"` | `trust` (any printable id ≤ max), `replace` (always new), `validate` (keep only `[A-Za-z0-9._:-]{1,max}`) |
//! | `requestIdMaxLength` | `128` | longest incoming id kept (1–1024) |
//! | `echoRequestId` | `false` | also set the request id header on the response |
//! | `sampleRatio` | `1.0` | share of new traces sampled (0–1); incoming sampled flags win |
//! | `routes` | `[]` | route templates tried first, e.g. `/register/{client_id}`, `/static/*` |
//! | `maxEndpointDepth` | `8` | most path segments in an endpoint label (1–32) |
//! | `maxEndpointLength` | `128` | most bytes in an endpoint label (16–1024) |
//! | `bufferResponses` | `"auto"` | `auto` (buffer unless the request looks like a stream), `always`, `never`; buffering is how Traefik learns the status |
//! | `bufferRoutes` | `[]` | templates buffered even when the request looks like a stream (`auto` only) |
//! | `tokenDefault` | `"optional"` | token rule for routes no `tokenRules` entry matches |
//! | `tokenRules` | `[{"route": "/mcp/*", "mode": "required"}]` | per-route token rule: `required` (no token → `missing`), `optional` (success/failure only), `off` (no token result) |
//! | `counters` | `[{"name": "client_registrations", "method": "POST", "route": "/register", "status": 201}]` | business counters: `name` plus optional `method`, `route` template, `status` (`201` or a class `2xx`) |
//! | `sessionId` | `"hash"` | MCP session id in records: `hash`, `raw` (printable ids ≤ 128 bytes only, else hashed), `off` |
//! | `recordClientAddr` | `false` | put the client address in records |
//! | `recordUserAgent` | `false` | put the user agent in records |
//! | `spool` | see [`SpoolConfig`] | Traefik adapter: `dir`, `windowSecs`, `graceSecs`, `maxWindows` |
//! | `collector` | see [`CollectorConfig`] | proxy-wasm adapter: `cluster`, `path`, `authority`, `token`, `timeoutMs`, `batchSize`, `maxBatchBytes`, `queueCapacity`, `tickMs`, `maxRetries` |
//!
//! Lists may also be given as one comma-separated string, or as an object with keys
//! `"0"`, `"1"`, …; `null` means "use the default". Keys match case-insensitively
//! (`sampleratio` works), since some Traefik providers lowercase them.

use std::fmt;

use serde_json::{Map, Value};

use crate::classify::{CounterRule, SessionIdMode, StatusMatch, TokenMode, TokenRule};
use crate::ids::{DEFAULT_REQUEST_ID_MAX_LENGTH, RequestIdPolicy};
use crate::record::MAX_LINE_BYTES;
use crate::route::{EndpointLimits, Method, RoutePattern};
use crate::spool::SpoolLayout;

/// Largest config document accepted.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

/// When the adapter asks the host to buffer a response (Traefik needs it to see the status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BufferMode {
    /// Buffer unless the request looks like a stream (SSE `Accept`, `Upgrade`, gRPC) and its
    /// route is not in `bufferRoutes`.
    #[default]
    Auto,
    /// Always buffer (streams then arrive in one piece at their end).
    Always,
    /// Never buffer (no status on Traefik).
    Never,
}

/// Where and how the Traefik adapter spools records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Spool directory as the plugin sees it (a Traefik mount), key `dir`, default `/spool`.
    pub dir: String,
    /// `windowSecs` (default 10, 1–3600), `graceSecs` (default 5, 0–3600), `maxWindows`
    /// (default 30, 2–100000).
    pub layout: SpoolLayout,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            dir: "/spool".to_string(),
            layout: SpoolLayout::default(),
        }
    }
}

/// How the proxy-wasm adapter sends batches to the collector.
#[derive(Clone, PartialEq, Eq)]
pub struct CollectorConfig {
    /// Upstream cluster name (`cluster`, default `gatetrace_collector`).
    pub cluster: String,
    /// Request path (`path`, default `/v1/records`).
    pub path: String,
    /// `:authority` of batch requests (`authority`, default `gatetrace-collector`).
    pub authority: String,
    /// Bearer token for the collector (`token`, default none). Never logged.
    pub token: Option<String>,
    /// Dispatch timeout (`timeoutMs`, default 2000, 1–60000).
    pub timeout_ms: u64,
    /// Most records in one batch (`batchSize`, default 100, 1–10000).
    pub batch_size: usize,
    /// Most bytes in one batch body (`maxBatchBytes`, default 262144, 4096–16777216).
    pub max_batch_bytes: usize,
    /// Records queued before the oldest are dropped (`queueCapacity`, default 10000, 1–1000000).
    pub queue_capacity: usize,
    /// Tick period (`tickMs`, default 1000, 10–60000).
    pub tick_ms: u64,
    /// Retries of a failed batch before it is dropped (`maxRetries`, default 3, 0–100).
    pub max_retries: u32,
}

impl fmt::Debug for CollectorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectorConfig")
            .field("cluster", &self.cluster)
            .field("path", &self.path)
            .field("authority", &self.authority)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .field("batch_size", &self.batch_size)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("queue_capacity", &self.queue_capacity)
            .field("tick_ms", &self.tick_ms)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            cluster: "gatetrace_collector".to_string(),
            path: "/v1/records".to_string(),
            authority: "gatetrace-collector".to_string(),
            token: None,
            timeout_ms: 2000,
            batch_size: 100,
            max_batch_bytes: 256 * 1024,
            queue_capacity: 10_000,
            tick_ms: 1000,
            max_retries: 3,
        }
    }
}

/// The parsed plugin configuration. Build it with [`Config::from_json`]; see the module
/// docs for the keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub service: String,
    /// Lowercase header name.
    pub request_id_header: String,
    pub request_id_policy: RequestIdPolicy,
    pub request_id_max_length: usize,
    pub echo_request_id: bool,
    pub sample_ratio: f64,
    pub routes: Vec<RoutePattern>,
    pub endpoint_limits: EndpointLimits,
    pub buffer_responses: BufferMode,
    pub buffer_routes: Vec<RoutePattern>,
    pub token_default: TokenMode,
    pub token_rules: Vec<TokenRule>,
    pub counters: Vec<CounterRule>,
    pub session_id: SessionIdMode,
    pub record_client_addr: bool,
    pub record_user_agent: bool,
    pub spool: SpoolConfig,
    pub collector: CollectorConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            service: "gateway".to_string(),
            request_id_header: "x-request-id".to_string(),
            request_id_policy: RequestIdPolicy::Validate,
            request_id_max_length: DEFAULT_REQUEST_ID_MAX_LENGTH,
            echo_request_id: false,
            sample_ratio: 1.0,
            routes: Vec::new(),
            endpoint_limits: EndpointLimits::default(),
            buffer_responses: BufferMode::Auto,
            buffer_routes: Vec::new(),
            token_default: TokenMode::Optional,
            token_rules: vec![TokenRule {
                route: RoutePattern::parse("/mcp/*").unwrap_or_else(|_| unreachable!()),
                mode: TokenMode::Required,
            }],
            counters: vec![CounterRule {
                name: "client_registrations".to_string(),
                method: Some(Method::Post),
                route: Some(RoutePattern::parse("/register").unwrap_or_else(|_| unreachable!())),
                status: Some(StatusMatch::Exact(201)),
            }],
            session_id: SessionIdMode::Hash,
            record_client_addr: false,
            record_user_agent: false,
            spool: SpoolConfig::default(),
            collector: CollectorConfig::default(),
        }
    }
}

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

impl Config {
    /// Parses the middleware's JSON config. Empty input and `null` mean `{}`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError {
                path: String::new(),
                message: format!("at most {MAX_CONFIG_BYTES} bytes, got {}", bytes.len()),
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ConfigError {
            path: String::new(),
            message: format!("expected a JSON object, got invalid JSON ({e})"),
        })?;
        match &value {
            Value::Null => Ok(Self::default()),
            Value::Object(map) => Self::from_object(map),
            other => Err(expected("", "a JSON object", other)),
        }
    }

    fn from_object(map: &Map<String, Value>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        let mut obj = Obj::new(map, String::new());
        if let Some(v) = obj.take("service") {
            config.service = text(&obj.path("service"), v, 1, 128)?;
        }
        if let Some(v) = obj.take("requestIdHeader") {
            let path = obj.path("requestIdHeader");
            let name = text(&path, v, 1, 64)?;
            let token = name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            let lower = name.to_ascii_lowercase();
            if !token
                || matches!(
                    lower.as_str(),
                    "authorization" | "cookie" | "set-cookie" | "proxy-authorization"
                )
            {
                return Err(expected(
                    &path,
                    "a header name (not a credential header)",
                    v,
                ));
            }
            config.request_id_header = lower;
        }
        if let Some(v) = obj.take("requestIdPolicy") {
            config.request_id_policy = choice(
                &obj.path("requestIdPolicy"),
                v,
                &[
                    ("trust", RequestIdPolicy::Trust),
                    ("replace", RequestIdPolicy::Replace),
                    ("validate", RequestIdPolicy::Validate),
                ],
            )?;
        }
        if let Some(v) = obj.take("requestIdMaxLength") {
            config.request_id_max_length =
                uint(&obj.path("requestIdMaxLength"), v, 1, 1024)? as usize;
        }
        if let Some(v) = obj.take("echoRequestId") {
            config.echo_request_id = boolean(&obj.path("echoRequestId"), v)?;
        }
        if let Some(v) = obj.take("sampleRatio") {
            config.sample_ratio = ratio(&obj.path("sampleRatio"), v)?;
        }
        if let Some(v) = obj.take("routes") {
            config.routes = patterns(&obj.path("routes"), v)?;
        }
        if let Some(v) = obj.take("maxEndpointDepth") {
            config.endpoint_limits.max_depth =
                uint(&obj.path("maxEndpointDepth"), v, 1, 32)? as usize;
        }
        if let Some(v) = obj.take("maxEndpointLength") {
            config.endpoint_limits.max_length =
                uint(&obj.path("maxEndpointLength"), v, 16, 1024)? as usize;
        }
        if let Some(v) = obj.take("bufferResponses") {
            config.buffer_responses = choice(
                &obj.path("bufferResponses"),
                v,
                &[
                    ("auto", BufferMode::Auto),
                    ("always", BufferMode::Always),
                    ("never", BufferMode::Never),
                ],
            )?;
        }
        if let Some(v) = obj.take("bufferRoutes") {
            config.buffer_routes = patterns(&obj.path("bufferRoutes"), v)?;
        }
        if let Some(v) = obj.take("tokenDefault") {
            config.token_default = token_mode(&obj.path("tokenDefault"), v)?;
        }
        if let Some(v) = obj.take("tokenRules") {
            config.token_rules = token_rules(&obj.path("tokenRules"), v)?;
        }
        if let Some(v) = obj.take("counters") {
            config.counters = counter_rules(&obj.path("counters"), v)?;
        }
        if let Some(v) = obj.take("sessionId") {
            config.session_id = choice(
                &obj.path("sessionId"),
                v,
                &[
                    ("hash", SessionIdMode::Hash),
                    ("raw", SessionIdMode::Raw),
                    ("off", SessionIdMode::Off),
                ],
            )?;
        }
        if let Some(v) = obj.take("recordClientAddr") {
            config.record_client_addr = boolean(&obj.path("recordClientAddr"), v)?;
        }
        if let Some(v) = obj.take("recordUserAgent") {
            config.record_user_agent = boolean(&obj.path("recordUserAgent"), v)?;
        }
        if let Some(v) = obj.take("spool") {
            config.spool = spool(&obj.path("spool"), v)?;
        }
        if let Some(v) = obj.take("collector") {
            config.collector = collector(&obj.path("collector"), v)?;
        }
        obj.finish()?;
        Ok(config)
    }
}

/// Walks one JSON object, remembering which keys were read so leftovers can be refused.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
    known: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    fn new(map: &'a Map<String, Value>, prefix: String) -> Self {
        Self {
            map,
            prefix,
            known: Vec::new(),
        }
    }

    /// The value of `key`, `None` when absent or `null`.
    /// Keys match case-insensitively: some Traefik providers (labels) change key case.
    fn take(&mut self, key: &'static str) -> Option<&'a Value> {
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

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn finish(self) -> Result<(), ConfigError> {
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

fn expected(path: &str, what: &str, got: &Value) -> ConfigError {
    ConfigError {
        path: path.to_string(),
        message: format!("expected {what}, got {}", describe(got)),
    }
}

fn text(path: &str, value: &Value, min: usize, max: usize) -> Result<String, ConfigError> {
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

fn boolean(path: &str, value: &Value) -> Result<bool, ConfigError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(expected(path, "true or false", other)),
    }
}

fn uint(path: &str, value: &Value, min: u64, max: u64) -> Result<u64, ConfigError> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    parsed
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| expected(path, &format!("a whole number from {min} to {max}"), value))
}

fn ratio(path: &str, value: &Value) -> Result<f64, ConfigError> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    parsed
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| expected(path, "a number between 0 and 1", value))
}

fn choice<T: Copy>(path: &str, value: &Value, options: &[(&str, T)]) -> Result<T, ConfigError> {
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
fn list<'a>(path: &str, value: &'a Value) -> Result<Vec<(String, ListItem<'a>)>, ConfigError> {
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

enum ListItem<'a> {
    Json(&'a Value),
    Text(&'a str),
}

fn pattern(path: &str, item: &Value) -> Result<RoutePattern, ConfigError> {
    let Value::String(s) = item else {
        return Err(expected(path, "a route template string", item));
    };
    RoutePattern::parse(s).map_err(|what| ConfigError {
        path: path.to_string(),
        message: format!("expected {what}"),
    })
}

fn patterns(path: &str, value: &Value) -> Result<Vec<RoutePattern>, ConfigError> {
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

/// Rule objects of a list, each with its key path.
type RuleObjects<'a> = Vec<(String, &'a Map<String, Value>)>;

fn objects<'a>(path: &str, value: &'a Value) -> Result<RuleObjects<'a>, ConfigError> {
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

fn token_mode(path: &str, value: &Value) -> Result<TokenMode, ConfigError> {
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

fn token_rules(path: &str, value: &Value) -> Result<Vec<TokenRule>, ConfigError> {
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

fn missing(path: &str, key: &str) -> ConfigError {
    ConfigError {
        path: format!("{path}.{key}"),
        message: "expected a value, got nothing (this key is required)".to_string(),
    }
}

fn counter_rules(path: &str, value: &Value) -> Result<Vec<CounterRule>, ConfigError> {
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

fn section<'a>(path: &str, value: &'a Value) -> Result<Obj<'a>, ConfigError> {
    match value {
        Value::Object(map) => Ok(Obj::new(map, path.to_string())),
        other => Err(expected(path, "an object", other)),
    }
}

fn spool(path: &str, value: &Value) -> Result<SpoolConfig, ConfigError> {
    let mut obj = section(path, value)?;
    let mut spool = SpoolConfig::default();
    if let Some(v) = obj.take("dir") {
        let dir_path = obj.path("dir");
        let dir = text(&dir_path, v, 1, 512)?;
        if !dir.starts_with('/') {
            return Err(expected(&dir_path, "an absolute directory path", v));
        }
        spool.dir = dir;
    }
    if let Some(v) = obj.take("windowSecs") {
        spool.layout.window_secs = uint(&obj.path("windowSecs"), v, 1, 3600)?;
    }
    if let Some(v) = obj.take("graceSecs") {
        spool.layout.grace_secs = uint(&obj.path("graceSecs"), v, 0, 3600)?;
    }
    if let Some(v) = obj.take("maxWindows") {
        spool.layout.max_windows = uint(&obj.path("maxWindows"), v, 2, 100_000)?;
    }
    obj.finish()?;
    Ok(spool)
}

fn collector(path: &str, value: &Value) -> Result<CollectorConfig, ConfigError> {
    let mut obj = section(path, value)?;
    let mut c = CollectorConfig::default();
    if let Some(v) = obj.take("cluster") {
        c.cluster = text(&obj.path("cluster"), v, 1, 256)?;
    }
    if let Some(v) = obj.take("path") {
        let p = obj.path("path");
        let request_path = text(&p, v, 1, 256)?;
        if !request_path.starts_with('/') {
            return Err(expected(&p, "a path starting with \"/\"", v));
        }
        c.path = request_path;
    }
    if let Some(v) = obj.take("authority") {
        c.authority = text(&obj.path("authority"), v, 1, 256)?;
    }
    if let Some(v) = obj.take("token") {
        match v {
            Value::String(s)
                if (1..=4096).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                c.token = Some(s.clone());
            }
            // Never echo a token back in an error message.
            _ => {
                return Err(ConfigError {
                    path: obj.path("token"),
                    message: "expected a string of 1 to 4096 printable ASCII characters"
                        .to_string(),
                });
            }
        }
    }
    if let Some(v) = obj.take("timeoutMs") {
        c.timeout_ms = uint(&obj.path("timeoutMs"), v, 1, 60_000)?;
    }
    if let Some(v) = obj.take("batchSize") {
        c.batch_size = uint(&obj.path("batchSize"), v, 1, 10_000)? as usize;
    }
    if let Some(v) = obj.take("maxBatchBytes") {
        c.max_batch_bytes = uint(
            &obj.path("maxBatchBytes"),
            v,
            MAX_LINE_BYTES as u64,
            16 * 1024 * 1024,
        )? as usize;
    }
    if let Some(v) = obj.take("queueCapacity") {
        c.queue_capacity = uint(&obj.path("queueCapacity"), v, 1, 1_000_000)? as usize;
    }
    if let Some(v) = obj.take("tickMs") {
        c.tick_ms = uint(&obj.path("tickMs"), v, 10, 60_000)?;
    }
    if let Some(v) = obj.take("maxRetries") {
        c.max_retries = uint(&obj.path("maxRetries"), v, 0, 100)? as u32;
    }
    obj.finish()?;
    Ok(c)
}
