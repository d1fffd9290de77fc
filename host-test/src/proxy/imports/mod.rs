//! The `env` imports of proxy-wasm 0.2.1, one file per ABI area, answering with the statuses
//! the profile's host returns (Kong traps where ngx_wasm_module does: not-yet-implemented
//! calls, bad dispatch).

mod buffers;
mod common;
mod context;
mod grpc;
mod headers;
mod http_call;
mod log_time;
mod metrics;
mod properties;
mod queues;
mod shared_data;

use wasmtime::{Linker, Result};

use super::state::ProxyState;

/// Links every `env` function.
pub(super) fn link(linker: &mut Linker<ProxyState>) -> Result<()> {
    log_time::link(linker)?;
    context::link(linker)?;
    buffers::link(linker)?;
    headers::link(linker)?;
    properties::link(linker)?;
    http_call::link(linker)?;
    grpc::link(linker)?;
    shared_data::link(linker)?;
    queues::link(linker)?;
    metrics::link(linker)
}
