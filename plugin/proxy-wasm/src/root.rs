//! The root context: validates the configuration in `on_configure`, owns the plugin's
//! [`PluginShared`] state, and is the only place batches are dispatched from (its tick) and
//! answered to.

use std::rc::Rc;
use std::time::Duration;

use gatetrace_core::config::Config;
use gatetrace_core::record::{BATCH_SEQUENCE_HEADER, BATCH_SOURCE_HEADER};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};

use crate::http::Http;
use crate::props;
use crate::shared::{PluginShared, log, now_unix_ns};
use crate::shipper::CallOutcome;

/// Registers the root context factory with the SDK (from `_initialize`).
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| Box::new(Root::new(context_id)));
}

/// The plugin's root context.
#[derive(Debug)]
struct Root {
    context_id: u32,
    shared: Option<Rc<PluginShared>>,
    /// Drops already logged, so each tick logs only new ones.
    logged_drops: u64,
}

impl Root {
    fn new(context_id: u32) -> Self {
        Self {
            context_id,
            shared: None,
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
        let Some(shared) = &self.shared else { return };
        let outcome = if num_headers == 0 {
            CallOutcome::Failed
        } else {
            match hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status") {
                Ok(Some(raw)) => {
                    props::status_header(&raw).map_or(CallOutcome::Failed, CallOutcome::Status)
                }
                _ => CallOutcome::Failed,
            }
        };
        shared.shipper.borrow_mut().on_response(token_id, outcome);
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
        let now = now_unix_ns();
        let shared = match &self.shared {
            // Configured again: the queue and its batches move to the new configuration.
            Some(previous) => PluginShared::reconfigured(previous, config, self.context_id, now),
            None => PluginShared::new(config, self.context_id, now),
        };
        self.shared = Some(Rc::new(shared));
        true
    }

    fn on_tick(&mut self) {
        let Some(shared) = &self.shared else { return };
        let c = &shared.config.collector;
        let timeout = Duration::from_millis(c.timeout_ms);
        let mut shipper = shared.shipper.borrow_mut();
        shipper.tick(now_unix_ns(), |batch| {
            let sequence = batch.sequence.to_string();
            let mut headers = vec![
                (":method", "POST"),
                (":path", c.path.as_str()),
                (":authority", c.authority.as_str()),
                ("content-type", "application/x-ndjson"),
                (BATCH_SOURCE_HEADER, shared.source.as_str()),
                (BATCH_SEQUENCE_HEADER, sequence.as_str()),
            ];
            if let Some(authorization) = &shared.authorization {
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
        Some(Box::new(Http::new(self.shared.clone(), context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
