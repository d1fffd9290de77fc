//! gatetrace plugin for Traefik (http-wasm ABI): request ids, trace context, timing and
//! classification per request, records appended to a spool directory Traefik mounts.
//!
//! `adapter` (the plugin, generic over [`host::Host`] and [`spool::SpoolDir`]) → `headers`
//! (header-name matching) → `host` (the host calls); `spool` appends the records and `drops`
//! keeps the count of those dropped where it outlives the instance. On wasm32
//! `exports` drives the adapter through `wasm_host`, which calls the imports in `sys`.

pub mod adapter;
pub mod drops;
mod headers;
pub mod host;
pub mod spool;

// The wasm glue is built for wasm32 only; clippy also checks it natively (it never links).
#[cfg(any(target_arch = "wasm32", clippy))]
mod exports;
#[cfg(any(target_arch = "wasm32", clippy))]
mod sys;
#[cfg(any(target_arch = "wasm32", clippy))]
mod wasm_host;
