//! The host ABIs gatetrace's plugins speak, spelled once for the plugins, the harness's fixture
//! guests and the harness itself: the http-wasm vocabulary ([`http_wasm`]) and proxy-wasm
//! 0.2.1's enums, complete status table and header-map wire format ([`proxy_wasm`]).
#![no_std]

extern crate alloc;

pub mod http_wasm;
pub mod proxy_wasm;
