//! gatetrace's wasmtime harness: plays Traefik (http-wasm) and the proxy-wasm hosts (Envoy,
//! Kong) for a guest module, drives requests through it and shows what it did.

pub mod cli;
pub mod figures;
pub mod guest;
pub mod headers;
pub mod http_wasm;
pub mod model;
pub mod proxy;
pub mod requests;
pub mod wasi;

pub use guest::{HostCalls, LogLine};
pub use headers::Headers;
