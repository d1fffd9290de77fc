//! The proxy-wasm 0.2.1 host with `envoy` and `kong` profiles: root and HTTP contexts, header
//! maps, properties, ticks on a virtual clock, `proxy_http_call` (scripted or real loopback
//! HTTP), shared data, queues, metrics and context lifecycles.
//!
//! `options` (how it is set up) → `host` (the VM and its start) with `stream` (one HTTP
//! stream) and `calls` (dispatched calls, ticks, time); `state` is what the host keeps,
//! `imports/` the `env` functions by ABI area, `net` the real-network mode, `report` what
//! a test gets back.

mod calls;
mod host;
mod imports;
mod net;
mod options;
mod report;
mod state;
mod stream;

pub use host::ProxyHost;
pub use options::{Profile, ProxyOptions};
pub use report::{CallResponse, CallState, DispatchedCall, Metric, ProxyExchange, StartFailed};
