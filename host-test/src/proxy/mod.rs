//! The proxy-wasm 0.2.1 host with `envoy` and `kong` profiles: root and HTTP contexts, header
//! maps, properties, ticks on a virtual clock, `proxy_http_call` (scripted or real loopback
//! HTTP), shared data, queues, metrics and context lifecycles.

mod abi;
mod net;
pub mod pairs;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::{Instance, Linker, Memory, Store, Val};

use crate::guest::{self, FUEL, HostCalls, LogLine};
use crate::headers::Headers;
use crate::http_wasm::{BackendResponse, ClientResponse, HttpRequest, UpstreamRequest};
use crate::wasi::{GuestWasi, VirtualClock, WasiOptions};

/// proxy-wasm 0.2.1 imports that ngx_wasm_module does not define at all.
const KONG_LACKS: [&str; 2] = ["proxy_get_header_map_size", "proxy_get_buffer_status"];

/// Which proxy-wasm host to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Envoy: binary properties, dispatch from any context, `on_log` after the response.
    Envoy,
    /// Kong's ngx_wasm_module: string properties; dispatch only from request headers/body,
    /// ticks and dispatch responses (elsewhere it traps); several calls not implemented (trap).
    Kong,
}

impl Profile {
    /// Parses `envoy` or `kong`.
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "envoy" => Ok(Self::Envoy),
            "kong" => Ok(Self::Kong),
            other => anyhow::bail!("unknown proxy-wasm profile {other:?} (expected envoy or kong)"),
        }
    }
}

/// How the proxy-wasm host is set up.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Host to play.
    pub profile: Profile,
    /// Bytes of `PLUGIN_CONFIGURATION`.
    pub plugin_config: Vec<u8>,
    /// Bytes of `VM_CONFIGURATION`.
    pub vm_config: Vec<u8>,
    /// Clusters whose calls become real HTTP requests to these addresses; every other call
    /// waits for the test to answer it.
    pub real_clusters: BTreeMap<String, SocketAddr>,
    /// Clusters Envoy knows (calls to others get BAD_ARGUMENT); the real ones count too.
    pub clusters: Vec<String>,
    /// The harness clock (WASI wall clock, `proxy_get_current_time_nanoseconds`, ticks).
    pub clock: VirtualClock,
    /// WASI setup; by default deterministic on `clock`.
    pub wasi: WasiOptions,
    /// `plugin_name` property.
    pub plugin_name: String,
    /// `plugin_root_id` property.
    pub root_id: String,
    /// `plugin_vm_id` property.
    pub vm_id: String,
    /// Level `proxy_get_log_level` reports (2 = info).
    pub log_level: u32,
}

impl ProxyOptions {
    /// Defaults for a profile: empty configs, a deterministic clock, no clusters.
    #[must_use]
    pub fn new(profile: Profile) -> Self {
        let clock = VirtualClock::default();
        Self {
            profile,
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            real_clusters: BTreeMap::new(),
            clusters: Vec::new(),
            wasi: WasiOptions::deterministic(&clock),
            clock,
            plugin_name: "gatetrace".into(),
            root_id: "gatetrace".into(),
            vm_id: "gatetrace-vm".into(),
            log_level: 2,
        }
    }
}

/// What happened to a dispatched call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    /// Waiting for an answer.
    Pending,
    /// Answered with this status.
    Answered(u16),
    /// Failed (connection error or [`ProxyHost::fail_call`]).
    Failed(String),
    /// Its timeout ran out on the harness clock.
    TimedOut,
    /// Its context was gone when the answer came (the host drops it).
    Dropped(String),
}

/// One `proxy_http_call`.
#[derive(Debug, Clone)]
pub struct DispatchedCall {
    /// Call id returned to the guest.
    pub id: u32,
    /// Upstream (cluster) name.
    pub cluster: String,
    /// Headers, pseudo-headers included.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
    /// Trailers.
    pub trailers: Headers,
    /// Timeout in milliseconds.
    pub timeout_ms: u32,
    /// Context that dispatched it (its answer goes there).
    pub context_id: u32,
    /// Callback it was dispatched from (`on_tick`, `on_request_headers`, ...).
    pub from_callback: &'static str,
    /// Harness time of dispatch (ns).
    pub at_nanos: u64,
    /// Outcome so far.
    pub state: CallState,
}

/// An answer for a dispatched call.
#[derive(Debug, Clone)]
pub struct CallResponse {
    /// Status (`:status`).
    pub status: u16,
    /// Headers (without `:status`).
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

impl CallResponse {
    /// A response with only a status.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Headers::default(),
            body: Vec::new(),
        }
    }
}

/// A metric the guest defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    /// Name.
    pub name: String,
    /// 0 counter, 1 gauge, 2 histogram.
    pub kind: u32,
    /// Current value (counter/gauge) or last recorded (histogram).
    pub value: i64,
}

/// Everything one HTTP stream did.
#[derive(Debug, Clone)]
pub struct ProxyExchange {
    /// The stream context id.
    pub context_id: u32,
    /// Callbacks run for this stream, with their return (`on_request_headers=Continue`).
    pub callbacks: Vec<String>,
    /// The request as it reached the upstream (None: answered locally or held).
    pub upstream: Option<UpstreamRequest>,
    /// What the client received.
    pub response: ClientResponse,
    /// Whether the guest answered with `proxy_send_local_response`.
    pub local_response: bool,
    /// Log lines since the stream began (any context).
    pub logs: Vec<LogLine>,
    /// Host calls since the stream began (any context).
    pub host_calls: HostCalls,
    /// Wasm instructions spent since the stream began.
    pub fuel: u64,
    /// Calls dispatched since the stream began (ids).
    pub dispatched: Vec<u32>,
    /// A trap, or the host refusing something by trapping.
    pub failure: Option<String>,
    /// Host behaviour the guest may not expect.
    pub warnings: Vec<String>,
}

/// The proxy-wasm VM failed to start or configure.
#[derive(Debug, Clone)]
pub struct StartFailed {
    /// What failed.
    pub reason: String,
    /// Guest log lines until then.
    pub logs: Vec<LogLine>,
}

impl fmt::Display for StartFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin failed to start: {}", self.reason)?;
        for line in &self.logs {
            write!(f, "\n  guest: {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StartFailed {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Idle,
    Start,
    ContextCreate,
    VmStart,
    Configure,
    RequestHeaders,
    RequestBody,
    ResponseHeaders,
    ResponseBody,
    Done,
    Log,
    Delete,
    Tick,
    CallResponse,
    QueueReady,
}

impl Step {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Idle => "host",
            Self::Start => "_initialize",
            Self::ContextCreate => "on_context_create",
            Self::VmStart => "on_vm_start",
            Self::Configure => "on_configure",
            Self::RequestHeaders => "on_request_headers",
            Self::RequestBody => "on_request_body",
            Self::ResponseHeaders => "on_response_headers",
            Self::ResponseBody => "on_response_body",
            Self::Done => "on_done",
            Self::Log => "on_log",
            Self::Delete => "on_delete",
            Self::Tick => "on_tick",
            Self::CallResponse => "on_http_call_response",
            Self::QueueReady => "on_queue_ready",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub(crate) request_headers: Headers,
    pub(crate) request_body: Vec<u8>,
    pub(crate) request_trailers: Headers,
    pub(crate) response_headers: Headers,
    pub(crate) response_body: Vec<u8>,
    pub(crate) response_trailers: Headers,
    pub(crate) local: Option<ClientResponse>,
    pub(crate) request_resumed: bool,
    pub(crate) response_resumed: bool,
    pub(crate) closed: bool,
    pub(crate) start_nanos: u64,
    pub(crate) end_nanos: Option<u64>,
    pub(crate) response_code: Option<u16>,
    pub(crate) source_addr: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    Alive,
    AwaitingDone,
    Deleted,
}

#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) stream: Option<Stream>,
    pub(crate) life: Life,
}

pub(crate) struct CallReply {
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: Headers,
}

pub(crate) struct ProxyState {
    pub(crate) wasi: GuestWasi,
    pub(crate) seen: (usize, usize),
    pub(crate) profile: Profile,
    pub(crate) plugin_config: Vec<u8>,
    pub(crate) vm_config: Vec<u8>,
    pub(crate) clusters: Vec<String>,
    pub(crate) plugin_name: String,
    pub(crate) root_id: String,
    pub(crate) vm_id: String,
    pub(crate) log_level: u32,
    pub(crate) clock: VirtualClock,
    pub(crate) contexts: BTreeMap<u32, Ctx>,
    pub(crate) root: u32,
    pub(crate) effective: u32,
    pub(crate) step: Step,
    pub(crate) calls: HostCalls,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) warnings: Vec<String>,
    pub(crate) refusal: Option<String>,
    pub(crate) dispatched: Vec<DispatchedCall>,
    pub(crate) reply: Option<CallReply>,
    pub(crate) shared: HashMap<String, (Vec<u8>, u32)>,
    pub(crate) next_cas: u32,
    pub(crate) queues: Vec<(String, String, VecDeque<Vec<u8>>)>,
    pub(crate) ready_queues: Vec<u32>,
    pub(crate) metrics: Vec<Metric>,
    pub(crate) tick_period_ms: u32,
    pub(crate) properties: HashMap<String, Vec<u8>>,
    pub(crate) done_requests: Vec<u32>,
}

impl ProxyState {
    fn collect_output(&mut self) {
        for (stream, line) in self.wasi.take_output(&mut self.seen) {
            self.logs.push(LogLine {
                level: stream,
                message: line,
            });
        }
    }

    pub(crate) fn stream_mut(&mut self) -> Option<&mut Stream> {
        self.contexts.get_mut(&self.effective)?.stream.as_mut()
    }

    pub(crate) fn stream(&self) -> Option<&Stream> {
        self.contexts.get(&self.effective)?.stream.as_ref()
    }

    /// The property at `path` (segments joined by `.`) as this profile encodes it.
    pub(crate) fn property(&self, path: &str) -> Option<Vec<u8>> {
        if let Some(v) = self.properties.get(path) {
            return Some(v.clone());
        }
        let kong = self.profile == Profile::Kong;
        let text = |s: &str| Some(s.as_bytes().to_vec());
        let int = |n: i64| {
            if kong {
                Some(n.to_string().into_bytes())
            } else {
                Some(n.to_le_bytes().to_vec())
            }
        };
        match path {
            "plugin_name" => return text(&self.plugin_name),
            "plugin_root_id" => return text(&self.root_id),
            "plugin_vm_id" => return text(&self.vm_id),
            _ => {}
        }
        let s = self.stream()?;
        let secs =
            |nanos: u64| format!("{}.{:03}", nanos / 1_000_000_000, nanos / 1_000_000 % 1000);
        let (addr, port) = s
            .source_addr
            .rsplit_once(':')
            .map_or((s.source_addr.as_str(), "0"), |(a, p)| (a, p));
        match path {
            "request.path" => text(s.request_headers.get(":path")?),
            "request.url_path" => text(s.request_headers.get(":path")?.split('?').next()?),
            "request.host" => text(s.request_headers.get(":authority")?),
            "request.scheme" => text(s.request_headers.get(":scheme")?),
            "request.method" => text(s.request_headers.get(":method")?),
            "request.protocol" => text("HTTP/1.1"),
            "request.id" => text(s.request_headers.get("x-request-id")?),
            "request.useragent" => text(s.request_headers.get("user-agent")?),
            "request.time" if kong => text(&secs(s.start_nanos)),
            "request.time" => int(s.start_nanos as i64),
            "request.duration" => {
                let d = s.end_nanos.unwrap_or(self.clock.now_nanos()) - s.start_nanos;
                if kong { text(&secs(d)) } else { int(d as i64) }
            }
            "request.size" => int(s.request_body.len() as i64),
            "response.code" => int(i64::from(s.response_code?)),
            "response.size" => {
                s.response_code?;
                int(s.response_body.len() as i64)
            }
            "source.address" if kong => text(addr),
            "source.address" => text(&s.source_addr),
            "source.port" => int(port.parse().unwrap_or(0)),
            "request.headers" if !kong => Some(pairs::serialize(s.request_headers.pairs())),
            "response.headers" if !kong => Some(pairs::serialize(s.response_headers.pairs())),
            _ => {
                let (map, name) = if let Some(n) = path.strip_prefix("request.headers.") {
                    (&s.request_headers, n)
                } else {
                    (&s.response_headers, path.strip_prefix("response.headers.")?)
                };
                if kong { text(map.get(name)?) } else { None }
            }
        }
    }
}

/// A proxy-wasm host (one VM, one root context) for one plugin.
pub struct ProxyHost {
    store: Store<ProxyState>,
    instance: Instance,
    memory: Memory,
    real_clusters: BTreeMap<String, SocketAddr>,
    next_context: u32,
    last_tick_nanos: u64,
    broken: Option<String>,
    progress: HashMap<u32, Progress>,
}

/// Bookkeeping of one open stream.
#[derive(Debug, Default)]
struct Progress {
    first_call: usize,
    callbacks: Vec<String>,
    failure: Option<String>,
    body_sent: bool,
    paused: bool,
}

impl fmt::Debug for ProxyHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHost")
            .field("profile", &self.store.data().profile)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// Converts a request into the `:pseudo`-headed map a proxy hands a filter.
fn request_map(request: &HttpRequest) -> Headers {
    let authority = request
        .headers
        .get("host")
        .unwrap_or("gateway.local")
        .to_owned();
    let mut map = Headers::from_pairs([
        (":authority", authority.as_str()),
        (":path", request.uri.as_str()),
        (":method", request.method.as_str()),
        (":scheme", "http"),
    ]);
    for (k, v) in request.headers.pairs() {
        if !k.eq_ignore_ascii_case("host") {
            map.add(&k.to_ascii_lowercase(), v);
        }
    }
    map
}

fn response_map(status: u16, headers: &Headers) -> Headers {
    let mut map = Headers::from_pairs([(":status", status.to_string())]);
    for (k, v) in headers.pairs() {
        map.add(&k.to_ascii_lowercase(), v);
    }
    map
}

fn split_response(map: &Headers, body: Vec<u8>) -> ClientResponse {
    let status = map
        .get(":status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let headers = Headers::from_pairs(
        map.pairs()
            .iter()
            .filter(|(k, _)| !k.starts_with(':'))
            .cloned(),
    );
    ClientResponse {
        status,
        headers,
        body,
    }
}

impl ProxyHost {
    /// Loads a module from a file and starts it (see [`ProxyHost::new`]).
    ///
    /// # Errors
    /// As [`ProxyHost::new`], naming the file.
    pub fn from_file(path: &Path, options: ProxyOptions) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        Self::new(&bytes, options).with_context(|| format!("load {}", path.display()))
    }

    /// Compiles `wasm` (binary or WAT), runs its start function, creates the root context and
    /// calls `proxy_on_vm_start` and `proxy_on_configure`.
    ///
    /// # Errors
    /// Invalid wasm, an unsatisfiable import, or [`StartFailed`] (trap or `false`).
    pub fn new(wasm: &[u8], options: ProxyOptions) -> anyhow::Result<Self> {
        let module = guest::compile(wasm)?;
        let mut linker = Linker::new(module.engine());
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut ProxyState| &mut s.wasi.ctx)
            .map_err(|e| anyhow::anyhow!("link WASI: {e}"))?;
        abi::link(&mut linker).map_err(|e| anyhow::anyhow!("link env: {e}"))?;
        let mut load_warnings = Vec::new();
        if options.profile == Profile::Kong {
            for import in module.imports() {
                if import.module() == "env" && KONG_LACKS.contains(&import.name()) {
                    load_warnings.push(format!(
                        "imports env.{}, which ngx_wasm_module does not provide: a real Kong refuses to load this module",
                        import.name()
                    ));
                }
            }
        }
        let mut clusters = options.clusters.clone();
        clusters.extend(options.real_clusters.keys().cloned());
        let state = ProxyState {
            wasi: options.wasi.build()?,
            seen: (0, 0),
            profile: options.profile,
            plugin_config: options.plugin_config,
            vm_config: options.vm_config,
            clusters,
            plugin_name: options.plugin_name,
            root_id: options.root_id,
            vm_id: options.vm_id,
            log_level: options.log_level,
            clock: options.clock,
            contexts: BTreeMap::new(),
            root: 1,
            effective: 0,
            step: Step::Idle,
            calls: HostCalls::default(),
            logs: Vec::new(),
            warnings: load_warnings,
            refusal: None,
            dispatched: Vec::new(),
            reply: None,
            shared: HashMap::new(),
            next_cas: 1,
            queues: Vec::new(),
            ready_queues: Vec::new(),
            metrics: Vec::new(),
            tick_period_ms: 0,
            properties: HashMap::new(),
            done_requests: Vec::new(),
        };
        let mut store = Store::new(module.engine(), state);
        store.set_fuel(FUEL).map_err(|e| anyhow::anyhow!("{e}"))?;
        let fail = |store: &mut Store<ProxyState>, reason: String| -> anyhow::Error {
            store.data_mut().collect_output();
            StartFailed {
                reason,
                logs: std::mem::take(&mut store.data_mut().logs),
            }
            .into()
        };
        let instance = match linker.instantiate(&mut store, &module) {
            Ok(i) => i,
            Err(e) => return Err(fail(&mut store, guest::describe(&e))),
        };
        let Some(memory) = instance.get_memory(&mut store, "memory") else {
            anyhow::bail!("not a proxy-wasm guest: it exports no memory");
        };
        if instance
            .get_func(&mut store, "proxy_abi_version_0_2_1")
            .is_none()
        {
            store
                .data_mut()
                .warnings
                .push("module does not export proxy_abi_version_0_2_1: hosts may refuse it".into());
        }
        let mut host = Self {
            store,
            instance,
            memory,
            real_clusters: options.real_clusters,
            next_context: 2,
            last_tick_nanos: 0,
            broken: None,
            progress: HashMap::new(),
        };
        host.last_tick_nanos = host.store.data().clock.now_nanos();
        let start = if host
            .instance
            .get_func(&mut host.store, "_initialize")
            .is_some()
        {
            "_initialize"
        } else {
            "_start"
        };
        if let Err(e) = host.invoke(Step::Start, 0, start, &[]) {
            return Err(fail(&mut host.store, e));
        }
        host.store.data_mut().contexts.insert(
            1,
            Ctx {
                stream: None,
                life: Life::Alive,
            },
        );
        let vm_len = host.store.data().vm_config.len() as i32;
        let cfg_len = host.store.data().plugin_config.len() as i32;
        let steps = [
            (
                Step::ContextCreate,
                "proxy_on_context_create",
                vec![Val::I32(1), Val::I32(0)],
            ),
            (
                Step::VmStart,
                "proxy_on_vm_start",
                vec![Val::I32(1), Val::I32(vm_len)],
            ),
            (
                Step::Configure,
                "proxy_on_configure",
                vec![Val::I32(1), Val::I32(cfg_len)],
            ),
        ];
        for (step, export, args) in steps {
            match host.invoke(step, 1, export, &args) {
                Ok(Some(0)) if step != Step::ContextCreate => {
                    let reason = format!("{export} returned false");
                    return Err(fail(&mut host.store, reason));
                }
                Ok(_) => {}
                Err(e) => return Err(fail(&mut host.store, e)),
            }
        }
        host.pump();
        Ok(host)
    }

    /// Calls an optional guest export on context `ctx`; `Ok(None)` when it is absent or
    /// returns nothing. A trap marks the VM broken.
    fn invoke(
        &mut self,
        step: Step,
        ctx: u32,
        export: &str,
        args: &[Val],
    ) -> Result<Option<i32>, String> {
        if let Some(reason) = &self.broken {
            return Err(format!("VM is broken since an earlier trap: {reason}"));
        }
        let Some(func) = self.instance.get_func(&mut self.store, export) else {
            return Ok(None);
        };
        let mut results = vec![Val::I32(0); func.ty(&self.store).results().len()];
        {
            let state = self.store.data_mut();
            state.step = step;
            state.effective = ctx;
        }
        let outcome = func.call(&mut self.store, args, &mut results);
        let state = self.store.data_mut();
        state.step = Step::Idle;
        state.collect_output();
        match outcome {
            Ok(()) => Ok(results.first().and_then(Val::i32)),
            Err(e) => {
                let exited = e
                    .downcast_ref::<wasmtime_wasi::I32Exit>()
                    .is_some_and(|x| x.0 == 0);
                if exited && step == Step::Start {
                    return Ok(None);
                }
                let mut reason =
                    format!("trap in {export} (context {ctx}): {}", guest::describe(&e));
                if let Some(refusal) = state.refusal.take() {
                    reason = format!("{refusal} — {reason}");
                }
                self.broken = Some(reason.clone());
                Err(reason)
            }
        }
    }

    /// After a top-level step: queue notifications, real-network calls, pending `proxy_done`s.
    fn pump(&mut self) {
        for _ in 0..64 {
            let ready: Vec<u32> = std::mem::take(&mut self.store.data_mut().ready_queues);
            let done: Vec<u32> = std::mem::take(&mut self.store.data_mut().done_requests);
            let real: Vec<(u32, SocketAddr)> = self
                .store
                .data()
                .dispatched
                .iter()
                .filter(|c| c.state == CallState::Pending)
                .filter_map(|c| self.real_clusters.get(&c.cluster).map(|a| (c.id, *a)))
                .collect();
            if ready.is_empty() && done.is_empty() && real.is_empty() {
                return;
            }
            let root = self.store.data().root;
            for queue in ready {
                let _ = self.invoke(
                    Step::QueueReady,
                    root,
                    "proxy_on_queue_ready",
                    &[Val::I32(root as i32), Val::I32(queue as i32)],
                );
            }
            for ctx in done {
                self.finish_context(ctx);
            }
            for (id, addr) in real {
                // Answering one call runs guest code that may pump again and answer others:
                // send only calls that are still pending now.
                let call = self
                    .store
                    .data()
                    .dispatched
                    .iter()
                    .find(|c| c.id == id && c.state == CallState::Pending)
                    .cloned();
                let Some(call) = call else { continue };
                let timeout = Duration::from_millis(u64::from(call.timeout_ms.max(1)));
                match net::send(addr, &call.headers, &call.body, timeout) {
                    Ok(resp) => {
                        let _ = self.respond_call(
                            id,
                            &CallResponse {
                                status: resp.status,
                                headers: resp.headers,
                                body: resp.body,
                            },
                        );
                    }
                    Err(e) => {
                        let _ = self.fail_call(id, &e);
                    }
                }
            }
        }
    }

    /// Delivers a dispatched call's answer to the context that dispatched it.
    ///
    /// # Errors
    /// Unknown id, a call no longer pending, or a trap in `proxy_on_http_call_response`.
    pub fn respond_call(&mut self, id: u32, response: &CallResponse) -> anyhow::Result<()> {
        let headers = response_map(response.status, &response.headers);
        self.deliver(
            id,
            CallState::Answered(response.status),
            Some(CallReply {
                headers,
                body: response.body.clone(),
                trailers: Headers::default(),
            }),
        )
    }

    /// Fails a dispatched call (`proxy_on_http_call_response` with no headers).
    ///
    /// # Errors
    /// As [`ProxyHost::respond_call`].
    pub fn fail_call(&mut self, id: u32, reason: &str) -> anyhow::Result<()> {
        self.deliver(id, CallState::Failed(reason.to_owned()), None)
    }

    fn deliver(
        &mut self,
        id: u32,
        outcome: CallState,
        reply: Option<CallReply>,
    ) -> anyhow::Result<()> {
        let state = self.store.data_mut();
        let Some(call) = state.dispatched.iter_mut().find(|c| c.id == id) else {
            anyhow::bail!("no dispatched call {id}");
        };
        anyhow::ensure!(
            call.state == CallState::Pending,
            "call {id} is already {:?}",
            call.state
        );
        let ctx = call.context_id;
        let alive = state
            .contexts
            .get(&ctx)
            .is_some_and(|c| c.life != Life::Deleted);
        if !alive {
            let why = format!(
                "context {ctx} that dispatched it is gone (the host cancels its calls; the SDK would drop the answer)"
            );
            call.state = CallState::Dropped(why.clone());
            state.warnings.push(format!("call {id}: {why}"));
            return Ok(());
        }
        call.state = outcome;
        let (n_headers, body_len, n_trailers) = reply.as_ref().map_or((0, 0, 0), |r| {
            (r.headers.len(), r.body.len(), r.trailers.len())
        });
        state.reply = reply;
        let args = [
            Val::I32(ctx as i32),
            Val::I32(id as i32),
            Val::I32(n_headers as i32),
            Val::I32(body_len as i32),
            Val::I32(n_trailers as i32),
        ];
        let result = self.invoke(
            Step::CallResponse,
            ctx,
            "proxy_on_http_call_response",
            &args,
        );
        self.store.data_mut().reply = None;
        self.pump();
        result.map(|_| ()).map_err(|e| anyhow::anyhow!(e))
    }

    /// Lets a call's timeout run out: the guest sees a failed call.
    ///
    /// # Errors
    /// As [`ProxyHost::respond_call`].
    pub fn time_out_call(&mut self, id: u32) -> anyhow::Result<()> {
        self.deliver(id, CallState::TimedOut, None)
    }

    /// Calls `proxy_on_tick` once on the root context.
    ///
    /// # Errors
    /// A trap in `proxy_on_tick`.
    pub fn tick(&mut self) -> anyhow::Result<()> {
        let root = self.store.data().root;
        let r = self.invoke(Step::Tick, root, "proxy_on_tick", &[Val::I32(root as i32)]);
        self.pump();
        r.map(|_| ()).map_err(|e| anyhow::anyhow!(e))
    }

    /// Moves the harness clock forward, firing due ticks (at the period the guest set) and
    /// timing out calls whose timeout passed, in time order.
    ///
    /// # Errors
    /// The first trap.
    pub fn advance(&mut self, by: Duration) -> anyhow::Result<()> {
        let clock = self.store.data().clock.clone();
        let target = clock.now_nanos() + by.as_nanos() as u64;
        loop {
            let period = u64::from(self.store.data().tick_period_ms) * 1_000_000;
            let next_tick = (period > 0).then(|| self.last_tick_nanos + period);
            let next_timeout = self
                .store
                .data()
                .dispatched
                .iter()
                .filter(|c| {
                    c.state == CallState::Pending && !self.real_clusters.contains_key(&c.cluster)
                })
                .map(|c| (c.at_nanos + u64::from(c.timeout_ms) * 1_000_000, c.id))
                .min();
            let due_tick = next_tick.filter(|t| *t <= target);
            let due_timeout = next_timeout.filter(|(t, _)| *t <= target);
            match (due_tick, due_timeout) {
                (Some(t), Some((tt, id))) if tt < t => {
                    Self::set_clock(&clock, tt);
                    self.time_out_call(id)?;
                }
                (Some(t), _) => {
                    Self::set_clock(&clock, t);
                    self.last_tick_nanos = t;
                    self.tick()?;
                }
                (None, Some((tt, id))) => {
                    Self::set_clock(&clock, tt);
                    self.time_out_call(id)?;
                }
                (None, None) => break,
            }
        }
        Self::set_clock(&clock, target);
        if self.store.data().tick_period_ms == 0 {
            self.last_tick_nanos = target;
        }
        Ok(())
    }

    fn set_clock(clock: &VirtualClock, at: u64) {
        let now = clock.now_nanos();
        if at > now {
            clock.advance(Duration::from_nanos(at - now));
        }
    }

    /// Runs a whole HTTP stream: request headers and body, the upstream answering `upstream`,
    /// response headers and body, then the end-of-stream callbacks.
    pub fn http(&mut self, request: &HttpRequest, upstream: &BackendResponse) -> ProxyExchange {
        let ctx = self.begin_http(request);
        self.end_http(ctx, upstream)
    }

    /// Creates a stream context and runs the request callbacks; the stream stays open so a
    /// test can answer calls dispatched from them before [`ProxyHost::end_http`].
    pub fn begin_http(&mut self, request: &HttpRequest) -> u32 {
        let ctx = self.next_context;
        self.next_context += 1;
        let _ = self.store.set_fuel(FUEL);
        let root = self.store.data().root;
        let now = self.store.data().clock.now_nanos();
        let state = self.store.data_mut();
        state.calls.take();
        state.logs.clear();
        state.warnings.clear();
        state.contexts.insert(
            ctx,
            Ctx {
                stream: Some(Stream {
                    request_headers: request_map(request),
                    request_body: request.body.clone(),
                    start_nanos: now,
                    source_addr: request.source_addr.clone(),
                    ..Stream::default()
                }),
                life: Life::Alive,
            },
        );
        let first = self.store.data().dispatched.len();
        self.progress.insert(
            ctx,
            Progress {
                first_call: first,
                callbacks: Vec::new(),
                failure: None,
                body_sent: false,
                paused: false,
            },
        );
        self.run(
            ctx,
            Step::ContextCreate,
            "proxy_on_context_create",
            &[Val::I32(ctx as i32), Val::I32(root as i32)],
        );
        let n = self.headers_len(ctx, true);
        let body_len = request.body.len();
        let action = self.run(
            ctx,
            Step::RequestHeaders,
            "proxy_on_request_headers",
            &[
                Val::I32(ctx as i32),
                Val::I32(n),
                Val::I32(i32::from(body_len == 0)),
            ],
        );
        if action == Some(1) {
            self.progress(ctx).paused = true;
        } else if body_len > 0 {
            self.send_body(ctx);
        }
        self.pump();
        ctx
    }

    fn progress(&mut self, ctx: u32) -> &mut Progress {
        self.progress.entry(ctx).or_default()
    }

    /// Runs one stream callback, noting its return and a trap.
    fn run(&mut self, ctx: u32, step: Step, export: &str, args: &[Val]) -> Option<i32> {
        if let Some(reason) = self.broken.clone() {
            // A trapped VM runs nothing more; the stream fails with the first trap.
            self.progress(ctx)
                .failure
                .get_or_insert_with(|| format!("VM is broken since an earlier trap: {reason}"));
            return None;
        }
        let outcome = self.invoke(step, ctx, export, args);
        let progress = self.progress(ctx);
        match outcome {
            Ok(result) => {
                let shown = match (step, result) {
                    (
                        Step::RequestHeaders
                        | Step::RequestBody
                        | Step::ResponseHeaders
                        | Step::ResponseBody,
                        Some(0),
                    ) => "=Continue".to_owned(),
                    (
                        Step::RequestHeaders
                        | Step::RequestBody
                        | Step::ResponseHeaders
                        | Step::ResponseBody,
                        Some(1),
                    ) => "=Pause".to_owned(),
                    (_, Some(v)) => format!("={v}"),
                    (_, None) => String::new(),
                };
                progress.callbacks.push(format!("{}{shown}", step.name()));
                result
            }
            Err(e) => {
                progress.callbacks.push(format!("{}=TRAP", step.name()));
                progress.failure.get_or_insert(e);
                None
            }
        }
    }

    fn headers_len(&self, ctx: u32, request: bool) -> i32 {
        self.store
            .data()
            .contexts
            .get(&ctx)
            .and_then(|c| c.stream.as_ref())
            .map_or(0, |s| {
                if request {
                    s.request_headers.len()
                } else {
                    s.response_headers.len()
                }
            }) as i32
    }

    fn send_body(&mut self, ctx: u32) {
        let len = self
            .store
            .data()
            .contexts
            .get(&ctx)
            .and_then(|c| c.stream.as_ref())
            .map_or(0, |s| s.request_body.len());
        self.progress(ctx).body_sent = true;
        if self.run(
            ctx,
            Step::RequestBody,
            "proxy_on_request_body",
            &[Val::I32(ctx as i32), Val::I32(len as i32), Val::I32(1)],
        ) == Some(1)
        {
            self.progress(ctx).paused = true;
        }
    }

    fn stream_of(&mut self, ctx: u32) -> Option<&mut Stream> {
        self.store
            .data_mut()
            .contexts
            .get_mut(&ctx)?
            .stream
            .as_mut()
    }

    /// Lets the upstream answer, runs the response callbacks and ends the stream
    /// (Envoy: `on_done`, then `on_log` and `on_delete` once done; Kong: `on_log`, `on_done`,
    /// `on_delete`).
    pub fn end_http(&mut self, ctx: u32, upstream: &BackendResponse) -> ProxyExchange {
        let mut upstream_request = None;
        let held = {
            let paused = self.progress(ctx).paused;
            let resumed = self.stream_of(ctx).is_some_and(|s| s.request_resumed);
            paused && !resumed
        };
        let body_pending = !self.progress(ctx).body_sent
            && self
                .stream_of(ctx)
                .is_some_and(|s| !s.request_body.is_empty());
        if !held && body_pending && self.progress(ctx).failure.is_none() {
            self.send_body(ctx);
        }
        let local = self.stream_of(ctx).and_then(|s| s.local.clone());
        let mut warnings = Vec::new();
        let failed = self.progress(ctx).failure.is_some();
        if held && local.is_none() && !failed {
            warnings.push(
                "request paused and never resumed: the proxy holds it until its stream timeout"
                    .to_owned(),
            );
        }
        if !failed && (local.is_some() || !held) {
            if local.is_none()
                && let Some(s) = self.stream_of(ctx)
            {
                let h = &s.request_headers;
                upstream_request = Some(UpstreamRequest {
                    method: h.get(":method").unwrap_or("GET").to_owned(),
                    uri: h.get(":path").unwrap_or("/").to_owned(),
                    headers: h.clone(),
                    body: s.request_body.clone(),
                });
            }
            let (status, headers, body) = match &local {
                Some(l) => (l.status, l.headers.clone(), l.body.clone()),
                None => (
                    upstream.status,
                    upstream.headers.clone(),
                    upstream.body.clone(),
                ),
            };
            if let Some(s) = self.stream_of(ctx) {
                s.response_headers = response_map(status, &headers);
                s.response_body = body;
                s.response_code = Some(status);
            }
            let n = self.headers_len(ctx, false);
            let body_len = self.stream_of(ctx).map_or(0, |s| s.response_body.len());
            self.run(
                ctx,
                Step::ResponseHeaders,
                "proxy_on_response_headers",
                &[
                    Val::I32(ctx as i32),
                    Val::I32(n),
                    Val::I32(i32::from(body_len == 0)),
                ],
            );
            if body_len > 0 && self.progress(ctx).failure.is_none() {
                self.run(
                    ctx,
                    Step::ResponseBody,
                    "proxy_on_response_body",
                    &[Val::I32(ctx as i32), Val::I32(body_len as i32), Val::I32(1)],
                );
            }
        }
        let now = self.store.data().clock.now_nanos();
        if let Some(s) = self.stream_of(ctx) {
            s.end_nanos = Some(now);
        }
        self.end_stream(ctx);
        self.pump();
        let progress = self.progress.remove(&ctx).unwrap_or_default();
        let fuel = FUEL - self.store.get_fuel().unwrap_or(FUEL);
        let state = self.store.data_mut();
        let stream = state.contexts.get(&ctx).and_then(|c| c.stream.as_ref());
        let response = match (&progress.failure, stream) {
            (None, Some(s)) if s.closed => ClientResponse {
                status: 0,
                headers: Headers::default(),
                body: b"stream closed by the plugin (reset)".to_vec(),
            },
            (None, Some(s)) if s.response_code.is_some() => {
                split_response(&s.response_headers, s.response_body.clone())
            }
            _ => ClientResponse {
                status: 500,
                headers: Headers::default(),
                body: Vec::new(),
            },
        };
        warnings.append(&mut state.warnings);
        if state
            .contexts
            .get(&ctx)
            .is_some_and(|c| c.life == Life::Deleted)
        {
            state.contexts.remove(&ctx);
        }
        ProxyExchange {
            context_id: ctx,
            callbacks: progress.callbacks,
            upstream: upstream_request,
            response,
            local_response: local.is_some(),
            logs: std::mem::take(&mut state.logs),
            host_calls: state.calls.take(),
            fuel,
            dispatched: state.dispatched[progress.first_call..]
                .iter()
                .map(|c| c.id)
                .collect(),
            failure: progress.failure,
            warnings,
        }
    }

    fn end_stream(&mut self, ctx: u32) {
        let arg = [Val::I32(ctx as i32)];
        match self.store.data().profile {
            Profile::Kong => {
                self.run(ctx, Step::Log, "proxy_on_log", &arg);
                if self.run(ctx, Step::Done, "proxy_on_done", &arg) == Some(0) {
                    self.store.data_mut().warnings.push(format!(
                        "context {ctx}: on_done returned false; Kong ignores it (and proxy_done is not implemented there)"
                    ));
                }
                self.run(ctx, Step::Delete, "proxy_on_delete", &arg);
                self.mark_deleted(ctx);
            }
            Profile::Envoy => {
                if self.run(ctx, Step::Done, "proxy_on_done", &arg) == Some(0) {
                    if let Some(c) = self.store.data_mut().contexts.get_mut(&ctx) {
                        c.life = Life::AwaitingDone;
                    }
                } else {
                    self.finish_context(ctx);
                }
            }
        }
    }

    /// `on_log` then `on_delete`, after `on_done` said true or the guest called `proxy_done`.
    fn finish_context(&mut self, ctx: u32) {
        let arg = [Val::I32(ctx as i32)];
        self.run(ctx, Step::Log, "proxy_on_log", &arg);
        self.run(ctx, Step::Delete, "proxy_on_delete", &arg);
        self.mark_deleted(ctx);
    }

    fn mark_deleted(&mut self, ctx: u32) {
        let state = self.store.data_mut();
        if let Some(c) = state.contexts.get_mut(&ctx) {
            c.life = Life::Deleted;
        }
        // A deleted context's pending calls are cancelled by the host.
        for call in state
            .dispatched
            .iter_mut()
            .filter(|c| c.context_id == ctx && c.state == CallState::Pending)
        {
            call.state = CallState::Dropped(format!("context {ctx} deleted before the answer"));
        }
    }

    /// Contexts whose `on_done` returned false and that never called `proxy_done`: the guest
    /// never frees them (Envoy keeps them, and their memory, forever).
    #[must_use]
    pub fn unfinished_contexts(&self) -> Vec<u32> {
        self.store
            .data()
            .contexts
            .iter()
            .filter(|(_, c)| c.life == Life::AwaitingDone)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every call dispatched so far.
    #[must_use]
    pub fn dispatched(&self) -> &[DispatchedCall] {
        &self.store.data().dispatched
    }

    /// Calls still waiting for an answer.
    #[must_use]
    pub fn pending_calls(&self) -> Vec<DispatchedCall> {
        self.dispatched()
            .iter()
            .filter(|c| c.state == CallState::Pending)
            .cloned()
            .collect()
    }

    /// Log lines not yet returned by an exchange (root-context work: ticks, call answers).
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.store.data_mut().logs)
    }

    /// Host calls not yet returned by an exchange.
    pub fn take_host_calls(&mut self) -> HostCalls {
        self.store.data_mut().calls.take()
    }

    /// Warnings not yet returned by an exchange.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.store.data_mut().warnings)
    }

    /// Why the VM is broken (a trap), if it is.
    #[must_use]
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// The guest's linear memory size in bytes.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    /// A shared-data value and its CAS.
    #[must_use]
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.store.data().shared.get(key).cloned()
    }

    /// Items waiting in a shared queue (by name).
    #[must_use]
    pub fn queue_len(&self, name: &str) -> usize {
        self.store
            .data()
            .queues
            .iter()
            .find(|q| q.1 == name)
            .map_or(0, |q| q.2.len())
    }

    /// Metrics the guest defined.
    #[must_use]
    pub fn metrics(&self) -> &[Metric] {
        &self.store.data().metrics
    }

    /// The tick period the guest set (ms; 0 = none).
    #[must_use]
    pub fn tick_period_ms(&self) -> u32 {
        self.store.data().tick_period_ms
    }

    /// The harness clock.
    #[must_use]
    pub fn clock(&self) -> &VirtualClock {
        &self.store.data().clock
    }

    /// Fuel spent since the last exchange began.
    #[must_use]
    pub fn fuel_spent(&self) -> u64 {
        FUEL - self.store.get_fuel().unwrap_or(FUEL)
    }
}
