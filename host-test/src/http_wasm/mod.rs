//! The http-wasm host (`http_handler` imports) as Traefik 3.7 runs it: an eager first instance,
//! a pool with request pinning, per-request features, `buffer_response` rules, WASI quirks.
//!
//! `mod.rs` holds the options, the report types and the instance pool with its request
//! lifecycle; `state` what the host keeps per instance and request; `imports` the host
//! functions.

mod imports;
mod state;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use gatetrace_abi::http_wasm::{Features, unpack_ctx_next};
use wasmtime::{Linker, Memory, Module, Store, TypedFunc};

use crate::guest::{self, FUEL, HostCalls, LogLine};
use crate::headers::Headers;
pub use crate::model::{BackendResponse, ClientResponse, HttpRequest, UpstreamRequest};
use crate::wasi::WasiOptions;
use state::{HttpState, Phase, ReqState};

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
    pub features: Features,
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
        self.features.contains(Features::BUFFER_RESPONSE)
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
/// One pooled guest instance: its store and the exports the host calls.
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
pub struct PinnedRequest {
    instance: Option<GuestInstance>,
    ctx: i32,
    exchange: HttpExchange,
}

impl fmt::Debug for PinnedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedRequest")
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
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut HttpState| {
            s.calls.hit(guest::WASI_CALLS);
            &mut s.wasi.ctx
        })
        .map_err(|e| anyhow::anyhow!("link WASI: {e}"))?;
        imports::link(&mut linker).map_err(|e| anyhow::anyhow!("link http_handler: {e}"))?;
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
            default_features: Features::default(),
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
    pub fn begin(&mut self, request: &HttpRequest) -> PinnedRequest {
        let mut exchange = HttpExchange {
            instance: 0,
            next: false,
            upstream: None,
            response: ClientResponse {
                status: 500,
                headers: Headers::default(),
                body: Vec::new(),
            },
            features: Features::default(),
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
                    return PinnedRequest {
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
            req_part_ends: request
                .body_parts
                .iter()
                .scan(0, |end, &len| {
                    *end += len;
                    Some(*end)
                })
                .collect(),
            req_read: 0,
            req_eof: false,
            req_eof_piece: Vec::new(),
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
                let (req_ctx, next) = unpack_ctx_next(packed);
                ctx = req_ctx as i32;
                exchange.next = next;
                if let Some(r) = &state.req {
                    exchange.features = r.features;
                    if exchange.next {
                        if r.req_read > 0
                            && !r.req_written
                            && !r.features.contains(Features::BUFFER_REQUEST)
                        {
                            state.warnings.push(
                                "the guest read the request body without buffer_request: the backend would get only the unread rest".into(),
                            );
                        }
                        exchange.upstream = Some(UpstreamRequest {
                            method: r.method.clone(),
                            uri: r.uri.clone(),
                            headers: r.req_headers.clone(),
                            body: r.upstream_request_body(),
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
        PinnedRequest {
            instance: Some(inst),
            ctx,
            exchange,
        }
    }

    /// Feeds the backend's response to `handle_response` on the request's own instance and
    /// returns the instance to the pool.
    pub fn complete(&mut self, pending: PinnedRequest, backend: &BackendResponse) -> HttpExchange {
        let PinnedRequest {
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
