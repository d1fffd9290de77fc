//! What the HTTP contexts of one plugin configuration share with its root context
//! ([`PluginShared`]: config, id generator, record queue), and the host helpers both use.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use gatetrace_core::config::Config;
use gatetrace_core::ids::Instance;
// Drops are written into a queued line's tail: the plugin carries no record decoder (serde's
// derived deserializers were a quarter of the module).
use gatetrace_core::record::{HostKind, RecordRef, add_dropped};
use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

use crate::props;
use crate::shipper::{Limits, Shipper};

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
pub struct PluginShared {
    /// The validated configuration.
    pub config: Config,
    /// Which proxy-wasm host runs us, once a request has shown it.
    host: Cell<Option<HostKind>>,
    /// Id generator, salted per root context.
    pub instance: RefCell<Instance>,
    /// The bounded record queue and its batches; one per root context, handed from each
    /// configuration to the next (HTTP contexts of an older one still enqueue into it).
    pub shipper: Rc<RefCell<Shipper>>,
    /// `x-gatetrace-source` of this plugin's batches.
    pub source: String,
    /// `Bearer <token>` when a collector token is configured. Never logged.
    pub authorization: Option<String>,
}

impl PluginShared {
    /// The state of a freshly configured root context `context_id` at wall clock `now`.
    pub fn new(config: Config, context_id: u32, now: u64) -> Self {
        let (random, salt) = salt(context_id, now);
        let source = Instance::new(&[salt[0], salt[1], salt[2], salt[3], 0x736f_7572_6365])
            .next_ids(now, &random)
            .request_id_hex();
        let shipper = Shipper::new(Limits::of_collector(&config.collector), add_dropped);
        Self::with(
            config,
            salt,
            String::from_utf8_lossy(&source).into_owned(),
            Rc::new(RefCell::new(shipper)),
        )
    }

    /// The state of root context `context_id` configured again (a second `on_configure`): the
    /// new configuration takes over the previous one's shipper — queued records, batches in
    /// flight or waiting for a retry, unreported drops — and its source id, so the batch
    /// sequence continues and nothing queued is lost uncounted. Records past the new queue
    /// capacity are dropped and counted ([`Shipper::set_limits`]).
    pub fn reconfigured(previous: &Self, config: Config, context_id: u32, now: u64) -> Self {
        let (_, salt) = salt(context_id, now);
        previous
            .shipper
            .borrow_mut()
            .set_limits(Limits::of_collector(&config.collector));
        Self::with(
            config,
            salt,
            previous.source.clone(),
            Rc::clone(&previous.shipper),
        )
    }

    fn with(config: Config, salt: [u64; 4], source: String, shipper: Rc<RefCell<Shipper>>) -> Self {
        Self {
            authorization: config
                .collector
                .token
                .as_ref()
                .map(|t| format!("Bearer {t}")),
            source,
            shipper,
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

/// WASI randomness (zero without it) and the id salt of root context `context_id` at `now`:
/// without randomness the clock and context id still separate plugins.
fn salt(context_id: u32, now: u64) -> ([u8; 16], [u64; 4]) {
    let mut random = [0u8; 16];
    let _ = getrandom::fill(&mut random);
    let salt = [
        u64::from_le_bytes(random[..8].try_into().unwrap_or_default()),
        u64::from_le_bytes(random[8..].try_into().unwrap_or_default()),
        now,
        u64::from(context_id),
    ];
    (random, salt)
}
