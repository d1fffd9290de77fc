//! The guest exports Traefik calls (`_initialize`, `handle_request`, `handle_response`) and
//! the one plugin instance per module instance they drive. `#[unsafe(no_mangle)]` (exporting
//! a symbol by name) is the only unsafe-lint item here; every unsafe call lives in `sys`.
#![allow(unsafe_code)]

use std::cell::RefCell;

use gatetrace_abi::http_wasm::{LogLevel, pack_ctx_next};

use crate::adapter::{Env, Plugin};
use crate::host::Host;
use crate::sys;
use crate::wasm_host::{WasiDir, WasmHost};

thread_local! {
    static PLUGIN: RefCell<Option<Plugin<WasiDir>>> = const { RefCell::new(None) };
}

/// Reactor entry point: constructors first, then the config is read and validated. A bad
/// config is logged (naming the key) and traps, so Traefik refuses the middleware; nothing
/// else here traps.
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    sys::call_ctors();
    let mut host = WasmHost;
    match Plugin::new(&mut host, &Env::from_process(), WasiDir::open) {
        Ok(plugin) => PLUGIN.with(|p| *p.borrow_mut() = Some(plugin)),
        Err(message) => {
            host.log(LogLevel::Error, &message);
            std::process::abort();
        }
    }
}

/// Always continues to the next handler.
#[unsafe(no_mangle)]
pub extern "C" fn handle_request() -> i64 {
    PLUGIN.with(|p| match p.try_borrow_mut().ok().as_deref_mut() {
        Some(Some(plugin)) => plugin.on_request(&mut WasmHost),
        _ => pack_ctx_next(0, true),
    })
}

/// Finishes the request's record.
#[unsafe(no_mangle)]
pub extern "C" fn handle_response(req_ctx: i32, is_error: i32) {
    PLUGIN.with(|p| {
        if let Ok(mut guard) = p.try_borrow_mut()
            && let Some(plugin) = guard.as_mut()
        {
            plugin.on_response(&mut WasmHost, req_ctx as u32, is_error != 0);
        }
    });
}
