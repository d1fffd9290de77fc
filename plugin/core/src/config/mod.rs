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
//! | `recordHost` | `false` | put the request's `Host` / `:authority` in records (one more host call per request on Traefik) |
//! | `recordResponseSize` | `false` | put the response's `Content-Length` in records (on Traefik, two more host calls per request: the response header names and the value) |
//! | `mcpRoutes` | `["/mcp"]` | route templates of MCP endpoints (Streamable HTTP): their requests get MCP facts, and only their responses are read for a session's start (`Mcp-Session-Id`) |
//! | `mcpBodyLimit` | `65536` | largest MCP request body read (only with `Content-Length`) and response body or SSE event scanned (0–1048576) |
//! | `mcpServerStreams` | `true` | `false`: the MCP servers answer every `POST` with JSON, so any `POST` but `subscriptions/listen` may be buffered |
//! | `mcpBufferMethods` | see [`DEFAULT_BUFFERED_METHODS`] plus `notifications`, `responses`, `DELETE` | MCP operations whose response is buffered (Traefik learns status and outcome); `tools/call`, `resources/read`, `prompts/get`, `tasks/result`, `subscriptions/listen` are refused |
//! | `spool` | see [`SpoolConfig`] | Traefik adapter: `dir`, `windowSecs`, `graceSecs`, `maxWindows` |
//! | `collector` | see [`CollectorConfig`] | proxy-wasm adapter: `cluster`, `path`, `authority`, `token`, `timeoutMs`, `batchSize`, `maxBatchBytes`, `queueCapacity`, `tickMs`, `maxRetries` |
//!
//! Lists may also be given as one comma-separated string, or as an object with keys
//! `"0"`, `"1"`, …; `null` means "use the default". Keys match case-insensitively
//! (`sampleratio` works), since some Traefik providers lowercase them.
//!
//! This file holds the types, the defaults and the keys; `lenient_json.rs` reads the lenient
//! JSON forms, `rules.rs` the route templates and classification rules.

mod lenient_json;
mod rules;

use std::fmt;

use serde_json::{Map, Value};

pub use self::lenient_json::ConfigError;
use self::lenient_json::{Obj, boolean, choice, expected, ratio, section, text, uint};
use self::rules::{buffer_methods, counter_rules, patterns, token_mode, token_rules};
use crate::classify::{CounterRule, SessionIdMode, StatusMatch, TokenMode, TokenRule};
use crate::ids::{DEFAULT_REQUEST_ID_MAX_LENGTH, RequestIdPolicy};
use crate::mcp::policy::BufferPolicy;
#[cfg(doc)]
use crate::mcp::policy::DEFAULT_BUFFERED_METHODS;
use crate::record::MAX_LINE_BYTES;
use crate::route::{EndpointLimits, Method, RoutePattern};
use crate::spool::SpoolLayout;

/// Largest config document accepted.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

/// Default `mcpBodyLimit`: 64 KiB.
pub const DEFAULT_MCP_BODY_LIMIT: usize = 64 * 1024;
/// Largest `mcpBodyLimit` accepted.
pub const MAX_MCP_BODY_LIMIT: u64 = 1 << 20;
/// Default `mcpRoutes`.
pub const DEFAULT_MCP_ROUTE: &str = "/mcp";

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
    /// `recordHost`: the request authority in records.
    pub record_host: bool,
    /// `recordResponseSize`: the response `Content-Length` in records.
    pub record_response_size: bool,
    pub spool: SpoolConfig,
    pub collector: CollectorConfig,
    /// `mcpRoutes`: paths whose requests are MCP messages.
    pub mcp_routes: Vec<RoutePattern>,
    /// `mcpBodyLimit`: the most request body bytes read, and response body (or SSE event)
    /// bytes scanned.
    pub mcp_body_limit: usize,
    /// `mcpServerStreams`: whether MCP servers may answer a `POST` with a stream.
    pub mcp_server_streams: bool,
    /// `mcpBufferMethods`: which MCP operations have their response buffered.
    pub mcp_buffer_policy: BufferPolicy,
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
            record_host: false,
            record_response_size: false,
            spool: SpoolConfig::default(),
            collector: CollectorConfig::default(),
            mcp_routes: vec![
                RoutePattern::parse(DEFAULT_MCP_ROUTE).unwrap_or_else(|_| unreachable!()),
            ],
            mcp_body_limit: DEFAULT_MCP_BODY_LIMIT,
            mcp_server_streams: true,
            mcp_buffer_policy: BufferPolicy::default(),
        }
    }
}

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
        if let Some(v) = obj.take("recordHost") {
            config.record_host = boolean(&obj.path("recordHost"), v)?;
        }
        if let Some(v) = obj.take("recordResponseSize") {
            config.record_response_size = boolean(&obj.path("recordResponseSize"), v)?;
        }
        if let Some(v) = obj.take("mcpRoutes") {
            config.mcp_routes = patterns(&obj.path("mcpRoutes"), v)?;
        }
        if let Some(v) = obj.take("mcpBodyLimit") {
            config.mcp_body_limit =
                uint(&obj.path("mcpBodyLimit"), v, 0, MAX_MCP_BODY_LIMIT)? as usize;
        }
        if let Some(v) = obj.take("mcpServerStreams") {
            config.mcp_server_streams = boolean(&obj.path("mcpServerStreams"), v)?;
        }
        if let Some(v) = obj.take("mcpBufferMethods") {
            config.mcp_buffer_policy = buffer_methods(&obj.path("mcpBufferMethods"), v)?;
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
