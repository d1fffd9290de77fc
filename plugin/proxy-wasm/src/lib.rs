//! gatetrace plugin for proxy-wasm hosts (Envoy, Istio, Kong): the root context batches
//! records to the collector from its tick; HTTP contexts run the core exchange and enqueue.

mod http;
mod plugin;
pub mod props;
pub mod shipper;
mod sys;
