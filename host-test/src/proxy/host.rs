//! The proxy-wasm VM as a host runs it ([`ProxyHost`]): loading and starting the plugin
//! (`_initialize`, root context, `on_vm_start`, `on_configure`), calling guest exports, the
//! work that follows each step (queue notifications, real-network calls, `proxy_done`), and
//! what a test may inspect. Streams are in `stream`, dispatched calls and time in `calls`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use gatetrace_abi::proxy_wasm::HOST_MODULE;
use wasmtime::{Instance, Linker, Memory, Store, Val};

use super::imports;
use super::net;
use super::options::{KONG_LACKS, Profile, ProxyOptions};
use super::report::{CallResponse, CallState, DispatchedCall, Metric, StartFailed};
use super::state::{Ctx, Life, ProxyState, Step};
use crate::guest::{self, FUEL, HostCalls, LogLine};
use crate::wasi::VirtualClock;

/// A proxy-wasm host (one VM, one root context) for one plugin.
pub struct ProxyHost {
    pub(super) store: Store<ProxyState>,
    pub(super) instance: Instance,
    pub(super) memory: Memory,
    pub(super) real_clusters: BTreeMap<String, SocketAddr>,
    pub(super) next_context: u32,
    pub(super) last_tick_nanos: u64,
    pub(super) broken: Option<String>,
    pub(super) progress: HashMap<u32, Progress>,
}

/// Bookkeeping of one open stream.
#[derive(Debug, Default)]
pub(super) struct Progress {
    pub(super) first_call: usize,
    pub(super) callbacks: Vec<String>,
    pub(super) failure: Option<String>,
    pub(super) body_sent: bool,
    pub(super) paused: bool,
    /// The request body's pieces not yet handed to `on_request_body`.
    pub(super) request_pieces: Vec<Vec<u8>>,
}

impl fmt::Debug for ProxyHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHost")
            .field("profile", &self.store.data().profile)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
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
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut ProxyState| {
            s.calls.hit(guest::WASI_CALLS);
            &mut s.wasi.ctx
        })
        .map_err(|e| anyhow::anyhow!("link WASI: {e}"))?;
        imports::link(&mut linker).map_err(|e| anyhow::anyhow!("link env: {e}"))?;
        let mut load_warnings = Vec::new();
        if options.profile == Profile::Kong {
            for import in module.imports() {
                if import.module() == HOST_MODULE && KONG_LACKS.contains(&import.name()) {
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
    pub(super) fn invoke(
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
    pub(super) fn pump(&mut self) {
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

    /// Delivers a new plugin configuration to the running root context (`proxy_on_configure`
    /// again, as a host does on a configuration update without a new VM). Returns the guest's
    /// answer: `false` means it refused the configuration.
    ///
    /// # Errors
    /// A trap in `proxy_on_configure`.
    pub fn reconfigure(&mut self, plugin_config: Vec<u8>) -> anyhow::Result<bool> {
        let len = plugin_config.len() as i32;
        self.store.data_mut().plugin_config = plugin_config;
        let root = self.store.data().root;
        let answer = self.invoke(
            Step::Configure,
            root,
            "proxy_on_configure",
            &[Val::I32(root as i32), Val::I32(len)],
        );
        self.pump();
        answer
            .map(|accepted| accepted != Some(0))
            .map_err(|e| anyhow::anyhow!(e))
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
