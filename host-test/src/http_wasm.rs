//! The http-wasm host (`http_handler` imports) as Traefik 3.7 runs it: an eager first instance,
//! a pool with request pinning, per-request features, `buffer_response` rules, WASI quirks.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::{Caller, Linker, Memory, Module, Result, Store, TypedFunc, bail};

use crate::guest::{self, FUEL, HostCalls, LogLine, read, read_str, write};
use crate::headers::Headers;
use crate::wasi::{GuestWasi, WasiOptions};

/// `enable_features` bit: buffer the request body.
pub const BUFFER_REQUEST: u32 = 1;
/// `enable_features` bit: buffer the response (needed to read or change it after `next`).
pub const BUFFER_RESPONSE: u32 = 2;
/// `enable_features` bit: trailers.
pub const TRAILERS: u32 = 4;

/// How the Traefik host is set up.
#[derive(Debug, Clone)]
pub struct TraefikOptions {
    /// The middleware config as `get_config` returns it (JSON).
    pub config: Vec<u8>,
    /// WASI clocks, entropy and mounts.
    pub wasi: WasiOptions,
    /// Lowest level `log_enabled` accepts (-1 debug … 2 error; Traefik's default is error).
    pub log_level: i32,
}

impl Default for TraefikOptions {
    fn default() -> Self {
        Self {
            config: b"{}".to_vec(),
            wasi: WasiOptions::traefik(),
            log_level: -1,
        }
    }
}

/// Turns a config value into what Traefik's file provider hands a plugin: every scalar a
/// string (`true` → `"true"`, `5` → `"5"`).
#[must_use]
pub fn traefik_config(value: &serde_json::Value) -> Vec<u8> {
    fn stringify(value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::Bool(b) => Value::String(b.to_string()),
            Value::Number(n) => Value::String(n.to_string()),
            Value::Array(items) => Value::Array(items.iter().map(stringify).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), stringify(v))).collect())
            }
            other => other.clone(),
        }
    }
    serde_json::to_vec(&stringify(value)).unwrap_or_else(|_| b"{}".to_vec())
}

/// A request as the client sent it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: String,
    /// Request headers.
    pub headers: Headers,
    /// Request body.
    pub body: Vec<u8>,
    /// Client address, `ip:port`.
    pub source_addr: String,
}

impl HttpRequest {
    /// A GET of `uri` with no headers.
    #[must_use]
    pub fn get(uri: &str) -> Self {
        Self {
            method: "GET".into(),
            uri: uri.into(),
            protocol: "HTTP/1.1".into(),
            headers: Headers::default(),
            body: Vec::new(),
            source_addr: "192.0.2.10:50123".into(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.add(name, value);
        self
    }
}

/// What the next handler (the backend) answers.
#[derive(Debug, Clone)]
pub struct BackendResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
    /// Whether the backend streams (SSE): buffering then holds the stream until it ends.
    pub streamed: bool,
}

impl BackendResponse {
    /// A response with a status and nothing else.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Headers::default(),
            body: Vec::new(),
            streamed: false,
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.add(name, value);
        self
    }
}

/// The request as it left for the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

/// The response the client got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

/// A guest failure and what Traefik would make of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A new pool instance's start function trapped (the request gets a 500).
    InstanceInit(String),
    /// `handle_request` trapped: Traefik answers 500.
    RequestTrap(String),
    /// `handle_response` trapped: Traefik's handler panics.
    ResponseTrap(String),
    /// The guest did something that makes Traefik itself panic.
    WouldPanic(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InstanceInit(m) => write!(f, "new instance failed to start (500): {m}"),
            Self::RequestTrap(m) => write!(f, "handle_request trapped, Traefik answers 500: {m}"),
            Self::ResponseTrap(m) => {
                write!(f, "handle_response trapped, Traefik's handler panics: {m}")
            }
            Self::WouldPanic(m) => write!(f, "TRAEFIK WOULD PANIC HERE: {m}"),
        }
    }
}

/// Everything one request did.
#[derive(Debug, Clone)]
pub struct HttpExchange {
    /// Pool instance that served it (0 is the eager first instance).
    pub instance: usize,
    /// Whether the guest asked for the next handler.
    pub next: bool,
    /// The request the backend received (when `next`).
    pub upstream: Option<UpstreamRequest>,
    /// What the client received.
    pub response: ClientResponse,
    /// Features enabled for this request.
    pub features: u32,
    /// Guest log lines (ABI `log` and WASI stdout/stderr).
    pub logs: Vec<LogLine>,
    /// Host calls during this request.
    pub host_calls: HostCalls,
    /// Wasm instructions (fuel) spent in this request.
    pub fuel: u64,
    /// A trap or a Traefik panic, if any.
    pub failure: Option<Failure>,
    /// Things Traefik would silently ignore or do differently than the guest may expect.
    pub warnings: Vec<String>,
}

impl HttpExchange {
    /// Whether `buffer_response` was on for this request.
    #[must_use]
    pub fn buffered_response(&self) -> bool {
        self.features & BUFFER_RESPONSE != 0
    }
}

/// The middleware refused to start: its first instance's start function trapped.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The trap.
    pub reason: String,
    /// What the guest logged before it.
    pub logs: Vec<LogLine>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "middleware refused: {}", self.reason)?;
        for line in &self.logs {
            write!(f, "\n  guest: {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Request,
    Response,
}

struct ReqState {
    phase: Phase,
    features: u32,
    method: String,
    uri: String,
    protocol: String,
    source_addr: String,
    req_headers: Headers,
    req_trailers: Headers,
    req_body: Vec<u8>,
    req_read: usize,
    req_written: bool,
    status: u16,
    resp_headers: Headers,
    resp_trailers: Headers,
    resp_body: Vec<u8>,
    resp_read: usize,
    resp_written: bool,
}

impl ReqState {
    fn buffered(&self) -> bool {
        self.features & BUFFER_RESPONSE != 0
    }

    /// Response-side changes after `next` without buffering reach nobody.
    fn response_frozen(&self) -> bool {
        self.phase == Phase::Response && !self.buffered()
    }
}

struct HttpState {
    wasi: GuestWasi,
    seen: (usize, usize),
    config: Arc<Vec<u8>>,
    log_level: i32,
    default_features: u32,
    req: Option<ReqState>,
    calls: HostCalls,
    logs: Vec<LogLine>,
    warnings: Vec<String>,
    violation: Option<String>,
}

impl HttpState {
    fn req(&mut self, call: &str) -> Result<&mut ReqState> {
        match self.req.as_mut() {
            Some(r) => Ok(r),
            None => bail!("{call} called outside a request (during start): host-go would fail"),
        }
    }

    fn collect_output(&mut self) {
        for (stream, line) in self.wasi.take_output(&mut self.seen) {
            self.logs.push(LogLine {
                level: stream,
                message: line,
            });
        }
    }
}

struct GuestInstance {
    id: usize,
    store: Store<HttpState>,
    memory: Memory,
    handle_request: TypedFunc<(), i64>,
    handle_response: TypedFunc<(i32, i32), ()>,
}

impl GuestInstance {
    fn fuel_spent(&self) -> u64 {
        FUEL - self.store.get_fuel().unwrap_or(FUEL)
    }
}

/// A request between `handle_request` and `handle_response`, pinned to its instance.
pub struct Pending {
    instance: Option<GuestInstance>,
    ctx: i32,
    exchange: HttpExchange,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("instance", &self.exchange.instance)
            .field("next", &self.exchange.next)
            .finish_non_exhaustive()
    }
}

/// Traefik playing host to one http-wasm middleware.
pub struct TraefikHost {
    module: Module,
    linker: Linker<HttpState>,
    options: TraefikOptions,
    config: Arc<Vec<u8>>,
    idle: Vec<GuestInstance>,
    created: usize,
    startup_logs: Vec<LogLine>,
    startup_calls: HostCalls,
}

impl fmt::Debug for TraefikHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraefikHost")
            .field("instances_created", &self.created)
            .field("idle", &self.idle.len())
            .finish_non_exhaustive()
    }
}

impl TraefikHost {
    /// Loads a module from a file and builds the eager first instance.
    ///
    /// # Errors
    /// Unreadable or invalid wasm, missing exports, or [`Refused`] when the start function traps.
    pub fn from_file(path: &Path, options: TraefikOptions) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        Self::new(&bytes, options).with_context(|| format!("load {}", path.display()))
    }

    /// Compiles `wasm` (binary or WAT) and builds the eager first instance, as Traefik does
    /// when it creates the middleware.
    ///
    /// # Errors
    /// Invalid wasm, missing exports, or [`Refused`] when the start function traps.
    pub fn new(wasm: &[u8], options: TraefikOptions) -> anyhow::Result<Self> {
        let module = guest::compile(wasm)?;
        let mut linker = Linker::new(module.engine());
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut HttpState| &mut s.wasi.ctx)
            .map_err(|e| anyhow::anyhow!("link WASI: {e}"))?;
        link(&mut linker).map_err(|e| anyhow::anyhow!("link http_handler: {e}"))?;
        let config = Arc::new(options.config.clone());
        let mut host = Self {
            module,
            linker,
            options,
            config,
            idle: Vec::new(),
            created: 0,
            startup_logs: Vec::new(),
            startup_calls: HostCalls::default(),
        };
        let first = host.instantiate()?;
        host.idle.push(first);
        Ok(host)
    }

    fn instantiate(&mut self) -> anyhow::Result<GuestInstance> {
        let state = HttpState {
            wasi: self.options.wasi.build()?,
            seen: (0, 0),
            config: Arc::clone(&self.config),
            log_level: self.options.log_level,
            default_features: 0,
            req: None,
            calls: HostCalls::default(),
            logs: Vec::new(),
            warnings: Vec::new(),
            violation: None,
        };
        let mut store = Store::new(self.module.engine(), state);
        store.set_fuel(FUEL).map_err(|e| anyhow::anyhow!("{e}"))?;
        let refuse = |store: &mut Store<HttpState>, reason: String| {
            store.data_mut().collect_output();
            Refused {
                reason,
                logs: std::mem::take(&mut store.data_mut().logs),
            }
        };
        let instance = match self.linker.instantiate(&mut store, &self.module) {
            Ok(i) => i,
            Err(e) => return Err(refuse(&mut store, guest::describe(&e)).into()),
        };
        for start in ["_start", "_initialize"] {
            if let Ok(func) = instance.get_typed_func::<(), ()>(&mut store, start)
                && let Err(e) = func.call(&mut store, ())
            {
                let exited_ok = e
                    .downcast_ref::<wasmtime_wasi::I32Exit>()
                    .is_some_and(|exit| exit.0 == 0);
                if !exited_ok {
                    let reason = format!("{start} trapped: {}", guest::describe(&e));
                    return Err(refuse(&mut store, reason).into());
                }
            }
        }
        let exports = (
            instance.get_memory(&mut store, "memory"),
            instance.get_typed_func::<(), i64>(&mut store, "handle_request"),
            instance.get_typed_func::<(i32, i32), ()>(&mut store, "handle_response"),
        );
        let (Some(memory), Ok(handle_request), Ok(handle_response)) = exports else {
            anyhow::bail!(
                "not an http-wasm guest: it must export memory, handle_request() -> i64 and handle_response(i32, i32)"
            );
        };
        store.data_mut().collect_output();
        self.startup_logs.append(&mut store.data_mut().logs);
        let calls = store.data_mut().calls.take();
        self.startup_calls.merge(&calls);
        let id = self.created;
        self.created += 1;
        Ok(GuestInstance {
            id,
            store,
            memory,
            handle_request,
            handle_response,
        })
    }

    /// Runs one request through `handle_request`, the backend and `handle_response`.
    pub fn handle(&mut self, request: &HttpRequest, backend: &BackendResponse) -> HttpExchange {
        let pending = self.begin(request);
        self.complete(pending, backend)
    }

    /// Runs `handle_request` on a pooled instance (a new one when all are busy) and keeps the
    /// instance pinned to this request until [`TraefikHost::complete`].
    pub fn begin(&mut self, request: &HttpRequest) -> Pending {
        let mut exchange = HttpExchange {
            instance: 0,
            next: false,
            upstream: None,
            response: ClientResponse {
                status: 500,
                headers: Headers::default(),
                body: Vec::new(),
            },
            features: 0,
            logs: Vec::new(),
            host_calls: HostCalls::default(),
            fuel: 0,
            failure: None,
            warnings: Vec::new(),
        };
        let mut inst = match self.idle.pop() {
            Some(inst) => inst,
            None => match self.instantiate() {
                Ok(inst) => inst,
                Err(e) => {
                    if let Some(refused) = e.downcast_ref::<Refused>() {
                        exchange.logs.clone_from(&refused.logs);
                    }
                    exchange.failure = Some(Failure::InstanceInit(format!("{e:#}")));
                    return Pending {
                        instance: None,
                        ctx: 0,
                        exchange,
                    };
                }
            },
        };
        exchange.instance = inst.id;
        let _ = inst.store.set_fuel(FUEL);
        let state = inst.store.data_mut();
        state.req = Some(ReqState {
            phase: Phase::Request,
            features: state.default_features,
            method: request.method.clone(),
            uri: request.uri.clone(),
            protocol: request.protocol.clone(),
            source_addr: request.source_addr.clone(),
            req_headers: request.headers.clone(),
            req_trailers: Headers::default(),
            req_body: request.body.clone(),
            req_read: 0,
            req_written: false,
            status: 200,
            resp_headers: Headers::default(),
            resp_trailers: Headers::default(),
            resp_body: Vec::new(),
            resp_read: 0,
            resp_written: false,
        });
        let result = inst.handle_request.call(&mut inst.store, ());
        let state = inst.store.data_mut();
        let mut ctx = 0;
        match result {
            Ok(packed) => {
                ctx = (packed >> 32) as i32;
                exchange.next = packed as u32 & 1 == 1;
                if let Some(r) = &state.req {
                    exchange.features = r.features;
                    if exchange.next {
                        if r.req_read > 0 && !r.req_written && r.features & BUFFER_REQUEST == 0 {
                            state.warnings.push(
                                "the guest read the request body without buffer_request: the backend would get only the unread rest".into(),
                            );
                        }
                        exchange.upstream = Some(UpstreamRequest {
                            method: r.method.clone(),
                            uri: r.uri.clone(),
                            headers: r.req_headers.clone(),
                            body: r.req_body.clone(),
                        });
                    } else {
                        exchange.response = ClientResponse {
                            status: r.status,
                            headers: r.resp_headers.clone(),
                            body: r.resp_body.clone(),
                        };
                    }
                }
            }
            Err(e) => {
                let message = guest::describe(&e);
                exchange.failure = Some(match state.violation.take() {
                    Some(v) => Failure::WouldPanic(v),
                    None => Failure::RequestTrap(message),
                });
            }
        }
        Pending {
            instance: Some(inst),
            ctx,
            exchange,
        }
    }

    /// Feeds the backend's response to `handle_response` on the request's own instance and
    /// returns the instance to the pool.
    pub fn complete(&mut self, pending: Pending, backend: &BackendResponse) -> HttpExchange {
        let Pending {
            instance,
            ctx,
            mut exchange,
        } = pending;
        let Some(mut inst) = instance else {
            return exchange;
        };
        if exchange.failure.is_none() && exchange.next {
            let state = inst.store.data_mut();
            if let Some(r) = state.req.as_mut() {
                r.phase = Phase::Response;
                r.status = backend.status;
                // As Go's reverse proxy does: the backend's headers are added to those the
                // guest set on the response writer before `next` (an echoed request id, say).
                for (name, value) in backend.headers.pairs() {
                    r.resp_headers.add(name, value);
                }
                r.resp_body = backend.body.clone();
                r.resp_read = 0;
                r.resp_written = false;
                if r.buffered() && backend.streamed {
                    state.warnings.push(
                        "buffer_response held a streamed response until it ended (Traefik cannot flush it)".into(),
                    );
                }
            }
            let result = inst.handle_response.call(&mut inst.store, (ctx, 0));
            let state = inst.store.data_mut();
            if let Err(e) = result {
                let message = guest::describe(&e);
                exchange.failure = Some(match state.violation.take() {
                    Some(v) => Failure::WouldPanic(v),
                    None => Failure::ResponseTrap(message),
                });
            }
            if let Some(r) = &state.req {
                exchange.response = ClientResponse {
                    status: r.status,
                    headers: r.resp_headers.clone(),
                    body: r.resp_body.clone(),
                };
            }
        }
        if matches!(
            exchange.failure,
            Some(Failure::RequestTrap(_) | Failure::WouldPanic(_))
        ) && exchange.response.status != 500
            && !exchange.next
        {
            exchange.response.status = 500;
        }
        exchange.fuel = inst.fuel_spent();
        let state = inst.store.data_mut();
        state.req = None;
        state.collect_output();
        exchange.logs.append(&mut state.logs);
        exchange.warnings.append(&mut state.warnings);
        exchange.host_calls = state.calls.take();
        if exchange.failure.is_none() {
            self.idle.push(inst);
        }
        exchange
    }

    /// How many instances were created (the eager one included).
    #[must_use]
    pub fn instances_created(&self) -> usize {
        self.created
    }

    /// Log lines from the instances' start functions.
    #[must_use]
    pub fn startup_logs(&self) -> &[LogLine] {
        &self.startup_logs
    }

    /// Host calls made by the instances' start functions.
    #[must_use]
    pub fn startup_calls(&self) -> &HostCalls {
        &self.startup_calls
    }

    /// Largest linear memory among the idle instances, in bytes.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.idle
            .iter()
            .map(|i| i.memory.data_size(&i.store))
            .max()
            .unwrap_or(0)
    }
}

/// Writes `bytes` if they fit in `limit`; returns the full length either way.
fn write_limited(
    caller: &mut Caller<'_, HttpState>,
    buf: i32,
    limit: i32,
    bytes: &[u8],
) -> Result<i32> {
    if bytes.len() <= limit as u32 as usize {
        write(caller, buf, bytes)?;
    }
    Ok(bytes.len() as i32)
}

/// NUL-terminated values, and their count packed as `count << 32 | len`.
fn write_multi(
    caller: &mut Caller<'_, HttpState>,
    buf: i32,
    limit: i32,
    values: &[&str],
) -> Result<i64> {
    let mut joined = Vec::new();
    for v in values {
        joined.extend_from_slice(v.as_bytes());
        joined.push(0);
    }
    let len = write_limited(caller, buf, limit, &joined)?;
    Ok(((values.len() as i64) << 32) | i64::from(len as u32))
}

fn headers_mut(r: &mut ReqState, kind: i32) -> Result<&mut Headers> {
    Ok(match kind {
        0 => &mut r.req_headers,
        1 => &mut r.resp_headers,
        2 => &mut r.req_trailers,
        3 => &mut r.resp_trailers,
        other => bail!("unknown header kind {other}"),
    })
}

/// Applies a header change, or records that Traefik would drop it.
fn change_header(
    caller: &mut Caller<'_, HttpState>,
    call: &'static str,
    kind: i32,
    edit: impl FnOnce(&mut Headers),
) -> Result<()> {
    let state = caller.data_mut();
    let r = state.req(call)?;
    if kind == 1 && r.response_frozen() {
        state.warnings.push(format!(
            "{call}(response) after next without buffer_response: headers are already sent, Traefik ignores it"
        ));
        return Ok(());
    }
    if kind == 0 && r.phase == Phase::Response {
        state.warnings.push(format!(
            "{call}(request) after next: the request already left"
        ));
        return Ok(());
    }
    edit(headers_mut(r, kind)?);
    Ok(())
}

#[allow(clippy::too_many_lines)]
fn link(linker: &mut Linker<HttpState>) -> Result<()> {
    const M: &str = "http_handler";
    linker.func_wrap(M, "enable_features", |mut c: Caller<'_, HttpState>, features: i32| -> Result<i32> {
        let state = c.data_mut();
        state.calls.hit("enable_features");
        let features = features as u32;
        let enabled = match state.req.as_mut() {
            None => {
                state.default_features |= features;
                state.default_features
            }
            Some(r) if r.phase == Phase::Request => {
                r.features |= features;
                r.features
            }
            Some(r) => {
                if features & !r.features != 0 {
                    state.warnings.push(format!(
                        "enable_features({features}) in handle_response is too late: the response is already flowing"
                    ));
                }
                r.features
            }
        };
        Ok(enabled as i32)
    })?;
    linker.func_wrap(
        M,
        "get_config",
        |mut c: Caller<'_, HttpState>, buf: i32, limit: i32| -> Result<i32> {
            c.data_mut().calls.hit("get_config");
            let config = Arc::clone(&c.data().config);
            write_limited(&mut c, buf, limit, &config)
        },
    )?;
    linker.func_wrap(
        M,
        "log_enabled",
        |mut c: Caller<'_, HttpState>, level: i32| -> i32 {
            let state = c.data_mut();
            state.calls.hit("log_enabled");
            i32::from(level >= state.log_level && level < 3)
        },
    )?;
    linker.func_wrap(
        M,
        "log",
        |mut c: Caller<'_, HttpState>, level: i32, ptr: i32, len: i32| {
            c.data_mut().calls.hit("log");
            // Traefik ignores log failures, so a bad pointer drops the line instead of trapping.
            let Ok(message) = read_str(&mut c, ptr, len) else {
                return;
            };
            let state = c.data_mut();
            if level >= state.log_level && level < 3 {
                let level = match level {
                    -1 => "debug",
                    0 => "info",
                    1 => "warn",
                    _ => "error",
                };
                state.logs.push(LogLine { level, message });
            }
        },
    )?;
    linker.func_wrap(
        M,
        "get_method",
        |mut c: Caller<'_, HttpState>, buf: i32, limit: i32| -> Result<i32> {
            let state = c.data_mut();
            state.calls.hit("get_method");
            let method = state.req("get_method")?.method.clone();
            write_limited(&mut c, buf, limit, method.as_bytes())
        },
    )?;
    linker.func_wrap(
        M,
        "set_method",
        |mut c: Caller<'_, HttpState>, ptr: i32, len: i32| -> Result<()> {
            c.data_mut().calls.hit("set_method");
            let method = read_str(&mut c, ptr, len)?;
            c.data_mut().req("set_method")?.method = method;
            Ok(())
        },
    )?;
    linker.func_wrap(
        M,
        "get_uri",
        |mut c: Caller<'_, HttpState>, buf: i32, limit: i32| -> Result<i32> {
            let state = c.data_mut();
            state.calls.hit("get_uri");
            let mut uri = state.req("get_uri")?.uri.clone();
            if uri.is_empty() {
                uri.push('/');
            }
            write_limited(&mut c, buf, limit, uri.as_bytes())
        },
    )?;
    linker.func_wrap(
        M,
        "set_uri",
        |mut c: Caller<'_, HttpState>, ptr: i32, len: i32| -> Result<()> {
            c.data_mut().calls.hit("set_uri");
            let uri = read_str(&mut c, ptr, len)?;
            c.data_mut().req("set_uri")?.uri = uri;
            Ok(())
        },
    )?;
    linker.func_wrap(
        M,
        "get_protocol_version",
        |mut c: Caller<'_, HttpState>, buf: i32, limit: i32| -> Result<i32> {
            let state = c.data_mut();
            state.calls.hit("get_protocol_version");
            let protocol = state.req("get_protocol_version")?.protocol.clone();
            write_limited(&mut c, buf, limit, protocol.as_bytes())
        },
    )?;
    linker.func_wrap(
        M,
        "get_source_addr",
        |mut c: Caller<'_, HttpState>, buf: i32, limit: i32| -> Result<i32> {
            let state = c.data_mut();
            state.calls.hit("get_source_addr");
            let addr = state.req("get_source_addr")?.source_addr.clone();
            write_limited(&mut c, buf, limit, addr.as_bytes())
        },
    )?;
    linker.func_wrap(
        M,
        "get_header_names",
        |mut c: Caller<'_, HttpState>, kind: i32, buf: i32, limit: i32| -> Result<i64> {
            let state = c.data_mut();
            state.calls.hit("get_header_names");
            let names = headers_mut(state.req("get_header_names")?, kind)?.names();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            write_multi(&mut c, buf, limit, &refs)
        },
    )?;
    linker.func_wrap(
        M,
        "get_header_values",
        |mut c: Caller<'_, HttpState>,
         kind: i32,
         name: i32,
         name_len: i32,
         buf: i32,
         limit: i32|
         -> Result<i64> {
            c.data_mut().calls.hit("get_header_values");
            let name = read_str(&mut c, name, name_len)?;
            let headers = headers_mut(c.data_mut().req("get_header_values")?, kind)?;
            let values: Vec<String> = headers
                .get_all(&name)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            write_multi(&mut c, buf, limit, &refs)
        },
    )?;
    for (call, op) in [("set_header_value", 0), ("add_header_value", 1)] {
        linker.func_wrap(
            M,
            call,
            move |mut c: Caller<'_, HttpState>,
                  kind: i32,
                  name: i32,
                  name_len: i32,
                  value: i32,
                  value_len: i32|
                  -> Result<()> {
                c.data_mut().calls.hit(call);
                let name = read_str(&mut c, name, name_len)?;
                let value = read_str(&mut c, value, value_len)?;
                change_header(&mut c, call, kind, |h| {
                    if op == 0 {
                        h.set(&name, &value);
                    } else {
                        h.add(&name, &value);
                    }
                })
            },
        )?;
    }
    linker.func_wrap(
        M,
        "remove_header",
        |mut c: Caller<'_, HttpState>, kind: i32, name: i32, name_len: i32| -> Result<()> {
            c.data_mut().calls.hit("remove_header");
            let name = read_str(&mut c, name, name_len)?;
            change_header(&mut c, "remove_header", kind, |h| h.remove(&name))
        },
    )?;
    linker.func_wrap(M, "read_body", |mut c: Caller<'_, HttpState>, kind: i32, buf: i32, limit: i32| -> Result<i64> {
        let state = c.data_mut();
        state.calls.hit("read_body");
        if limit <= 0 {
            bail!("read_body with buf_limit {limit}: http-wasm-host-go panics");
        }
        let r = state.req("read_body")?;
        let (body, offset) = match kind {
            0 => (&r.req_body, &mut r.req_read),
            1 => {
                if r.response_frozen() {
                    let v = "read_body(response) after next without buffer_response: there is no buffered body (Traefik would panic here)".to_owned();
                    state.violation = Some(v.clone());
                    bail!(v);
                }
                (&r.resp_body, &mut r.resp_read)
            }
            other => bail!("read_body: unknown body kind {other}"),
        };
        let end = (*offset + limit as usize).min(body.len());
        let chunk = body[*offset..end].to_vec();
        *offset = end;
        let eof = i64::from(end == body.len());
        write(&mut c, buf, &chunk)?;
        Ok((eof << 32) | chunk.len() as i64)
    })?;
    linker.func_wrap(M, "write_body", |mut c: Caller<'_, HttpState>, kind: i32, ptr: i32, len: i32| -> Result<()> {
        c.data_mut().calls.hit("write_body");
        let bytes = read(&mut c, ptr, len)?;
        let state = c.data_mut();
        let r = state.req("write_body")?;
        match kind {
            0 => {
                if !r.req_written {
                    r.req_body.clear();
                    r.req_written = true;
                }
                r.req_body.extend_from_slice(&bytes);
            }
            1 => {
                if r.response_frozen() {
                    r.resp_body.extend_from_slice(&bytes);
                    state.warnings.push(
                        "write_body(response) after next without buffer_response appends to the body already sent".into(),
                    );
                } else {
                    if !r.resp_written {
                        r.resp_body.clear();
                        r.resp_written = true;
                    }
                    r.resp_body.extend_from_slice(&bytes);
                }
            }
            other => bail!("write_body: unknown body kind {other}"),
        }
        Ok(())
    })?;
    linker.func_wrap(M, "get_status_code", |mut c: Caller<'_, HttpState>| -> Result<i32> {
        let state = c.data_mut();
        state.calls.hit("get_status_code");
        let r = state.req("get_status_code")?;
        if r.response_frozen() {
            let v = "get_status_code in handle_response without buffer_response: Traefik would panic here (unchecked type assertion in http-wasm-host-go)".to_owned();
            state.violation = Some(v.clone());
            bail!(v);
        }
        Ok(i32::from(r.status))
    })?;
    linker.func_wrap(M, "set_status_code", |mut c: Caller<'_, HttpState>, status: i32| -> Result<()> {
        let state = c.data_mut();
        state.calls.hit("set_status_code");
        let r = state.req("set_status_code")?;
        if r.response_frozen() {
            state.warnings.push(
                "set_status_code after next without buffer_response: the status is already sent, Traefik ignores it".into(),
            );
        } else {
            r.status = status as u16;
        }
        Ok(())
    })?;
    Ok(())
}
