//! The module's only unsafe code: the `_initialize` export that runs static constructors on
//! WASI and registers the root context with the proxy-wasm SDK; `header_map` reads a header
//! map without the SDK.
#![allow(unsafe_code)]

pub mod header_map;

#[cfg(target_os = "wasi")]
unsafe extern "C" {
    fn __wasm_call_ctors();
}

/// Reactor entry point the host calls once after instantiation.
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    #[cfg(target_os = "wasi")]
    // SAFETY: the linker-generated constructor runner, called once, before any other export.
    unsafe {
        __wasm_call_ctors();
    }
    crate::root::register();
}
