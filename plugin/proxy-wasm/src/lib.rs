//! gatetrace plugin for proxy-wasm hosts (Envoy, Istio, Kong): the root context batches
//! records to the collector from its tick; HTTP contexts run the core exchange and enqueue.
//!
//! `sys` (the `_initialize` export) → `root` (root context) → `http` (HTTP contexts; header
//! maps read through `sys::header_map`) → `shared` (what both share: config, ids, the
//! `shipper` queue) → `props` (host differences).

mod http;
pub mod props;
mod root;
mod shared;
pub use gatetrace_core::shipper;
mod sys;
