//! The root context: validates the configuration in `on_configure`, owns the per-VM record
//! queue, and is the only place batches are dispatched from (its tick) and answered to.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use gatetrace_core::config::Config;
use gatetrace_core::ids::Instance;
use gatetrace_core::record::{
    BATCH_SEQUENCE_HEADER, BATCH_SOURCE_HEADER, HostKind, Record, RecordRef,
};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};

use crate::http::Http;
use crate::props;
use crate::shipper::{Limits, Outcome, Shipper};

/// Most batches in flight per VM. The collector remembers 128 sequences per source, so
/// retries arriving out of order within this window are still recognised.
pub const MAX_IN_FLIGHT: usize = 8;

/// Registers the root context factory with the SDK (from `_initialize`).
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| Box::new(Root::new(context_id)));
}

/// Logs through the host; a host that refuses a log line is ignored.
pub fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// The host's wall clock in nanoseconds since the Unix epoch (0 if it is before it).
pub fn now_unix_ns() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What the HTTP contexts of one plugin configuration share with its root context.
#[derive(Debug)]
pub struct Vm {
    /// The validated configuration.
    pub config: Config,
    /// Which proxy-wasm host runs us, once a request has shown it.
    host: Cell<Option<HostKind>>,
    /// Id generator, salted per root context.
    pub instance: RefCell<Instance>,
    /// The bounded record queue and its batches.
    pub shipper: RefCell<Shipper>,
    /// `x-gatetrace-source` of this VM's batches.
    source: String,
    /// `Bearer <token>` when a collector token is configured. Never logged.
    authorization: Option<String>,
}

impl Vm {
    fn new(config: Config, context_id: u32, now: u64) -> Self {
        let mut random = [0u8; 16];
        // Without WASI randomness the clock and context id still separate VMs.
        let _ = getrandom::fill(&mut random);
        let salt = [
            u64::from_le_bytes(random[..8].try_into().unwrap_or_default()),
            u64::from_le_bytes(random[8..].try_into().unwrap_or_default()),
            now,
            u64::from(context_id),
        ];
        let source = Instance::new(&[salt[0], salt[1], salt[2], salt[3], 0x736f_7572_6365])
            .next_ids(now, &random)
            .request_id_hex();
        let c = &config.collector;
        let limits = Limits {
            batch_max: c.batch_size,
            batch_max_bytes: c.max_batch_bytes,
            queue_capacity: c.queue_capacity,
            max_retries: c.max_retries,
            max_in_flight: MAX_IN_FLIGHT,
            // The host enforces the timeout; this only frees a slot a host never answered.
            call_deadline_ns: (c.timeout_ms + c.tick_ms + 1000) * 1_000_000,
        };
        Self {
            authorization: c.token.as_ref().map(|t| format!("Bearer {t}")),
            source: String::from_utf8_lossy(&source).into_owned(),
            shipper: RefCell::new(Shipper::new(limits, carry_drops)),
            instance: RefCell::new(Instance::new(&salt)),
            config,
            host: Cell::new(None),
        }
    }

    /// Which host runs us: probed once, from inside the first request (see
    /// [`props::host_kind`]).
    pub fn host(&self) -> HostKind {
        if let Some(kind) = self.host.get() {
            return kind;
        }
        let kind = props::host_kind(|path| hostcalls::get_property(path.to_vec()).ok().flatten());
        self.host.set(Some(kind));
        kind
    }

    /// Queues one finished record; never blocks, never fails (overflow drops the oldest).
    pub fn enqueue(&self, record: &RecordRef<'_>) {
        let mut line = Vec::with_capacity(512);
        record.write_ndjson_line(&mut line);
        if !line.is_empty() {
            self.shipper.borrow_mut().push(line);
        }
    }
}

/// Rewrites an encoded record to carry a drop count (`dropped`).
fn carry_drops(line: &[u8], drops: u64) -> Option<Vec<u8>> {
    let mut record = Record::from_ndjson_line(line).ok()?;
    record.dropped = record.dropped.saturating_add(drops);
    Some(record.to_ndjson_line())
}

/// The plugin's root context.
#[derive(Debug)]
struct Root {
    context_id: u32,
    vm: Option<Rc<Vm>>,
    /// Drops already logged, so each tick logs only new ones.
    logged_drops: u64,
}

impl Root {
    fn new(context_id: u32) -> Self {
        Self {
            context_id,
            vm: None,
            logged_drops: 0,
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(vm) = &self.vm else { return };
        let outcome = if num_headers == 0 {
            Outcome::Failed
        } else {
            match hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status") {
                Ok(Some(raw)) => {
                    props::status_header(&raw).map_or(Outcome::Failed, Outcome::Status)
                }
                _ => Outcome::Failed,
            }
        };
        vm.shipper.borrow_mut().on_response(token_id, outcome);
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let config = match Config::from_json(&raw) {
            Ok(config) => config,
            Err(error) => {
                log(
                    LogLevel::Error,
                    &format!("gatetrace: invalid plugin configuration: {error}"),
                );
                return false;
            }
        };
        let tick = Duration::from_millis(config.collector.tick_ms);
        if hostcalls::set_tick_period(tick).is_err() {
            log(LogLevel::Error, "gatetrace: the host refused a tick period");
            return false;
        }
        log(
            LogLevel::Info,
            &format!(
                "gatetrace: configured for service {}, batches to cluster {} path {} every {} ms",
                config.service,
                config.collector.cluster,
                config.collector.path,
                config.collector.tick_ms
            ),
        );
        self.vm = Some(Rc::new(Vm::new(config, self.context_id, now_unix_ns())));
        true
    }

    fn on_tick(&mut self) {
        let Some(vm) = &self.vm else { return };
        let c = &vm.config.collector;
        let timeout = Duration::from_millis(c.timeout_ms);
        let mut shipper = vm.shipper.borrow_mut();
        shipper.tick(now_unix_ns(), |batch| {
            let sequence = batch.sequence.to_string();
            let mut headers = vec![
                (":method", "POST"),
                (":path", c.path.as_str()),
                (":authority", c.authority.as_str()),
                ("content-type", "application/x-ndjson"),
                (BATCH_SOURCE_HEADER, vm.source.as_str()),
                (BATCH_SEQUENCE_HEADER, sequence.as_str()),
            ];
            if let Some(authorization) = &vm.authorization {
                headers.push(("authorization", authorization.as_str()));
            }
            hostcalls::dispatch_http_call(&c.cluster, headers, Some(&batch.body), vec![], timeout)
                .ok()
        });
        let dropped = shipper.stats().dropped;
        if dropped > self.logged_drops {
            log(
                LogLevel::Warn,
                &format!(
                    "gatetrace: {} records dropped ({dropped} in total): collector unreachable or queue full",
                    dropped - self.logged_drops
                ),
            );
            self.logged_drops = dropped;
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(self.vm.clone(), context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carrying_drops_rewrites_the_dropped_field_of_a_real_record_line() {
        let line = gatetrace_core::testing::example_line(1);
        let out = carry_drops(line.as_bytes(), 7).expect("a valid record");
        let record = Record::from_ndjson_line(&out).expect("still valid");
        assert_eq!(record.dropped, 7);
        assert!(out.ends_with(b"\n"));
        assert_eq!(carry_drops(b"not json\n", 1), None);
    }
}
