//! The gatetrace core for JavaScript (Node and `fetch`-handler runtimes), through
//! `wasm-bindgen`: the same exchange lifecycle the Traefik and proxy-wasm adapters drive, so one
//! exchange gives the same record, and the proxy-wasm plugin's shipper for batching.
//!
//! The host (the npm package's JS layer) passes in everything impure: the wall clock in
//! milliseconds, salt bytes from `crypto.getRandomValues`, headers, body bytes, call outcomes.
//! `tracer` (start-up, per-request calls, batches) → `headers` (the header string format).

mod headers;
mod tracer;

pub use tracer::{Batch, Exchange, Tracer};
