//! How the proxy-wasm host is set up: which gateway it plays ([`Profile`]) and with what
//! configuration, clusters, clock and WASI world ([`ProxyOptions`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::wasi::{VirtualClock, WasiOptions};

/// proxy-wasm 0.2.1 imports that ngx_wasm_module does not define at all.
pub(super) const KONG_LACKS: [&str; 2] = ["proxy_get_header_map_size", "proxy_get_buffer_status"];

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
