//! gatetrace plugin for Traefik (http-wasm ABI): request ids, trace context, timing and
//! classification per request, records appended to a spool directory Traefik mounts.

pub mod abi;
pub mod adapter;
pub mod host;
pub mod spool;

// The wasm glue is built for wasm32 only; clippy also checks it natively (it never links).
#[cfg(any(target_arch = "wasm32", clippy))]
mod sys;
#[cfg(any(target_arch = "wasm32", clippy))]
mod wasm;
