//! gRPC calls and streams: the harness configures no gRPC upstream, so each is refused as the
//! profile's host refuses it.

use gatetrace_abi::proxy_wasm::HOST_MODULE;
use wasmtime::{Linker, Result};

use super::common::{BAD_ARGUMENT, C, NOT_FOUND, kong_nyi};
use crate::proxy::state::ProxyState;

pub(super) fn link(linker: &mut Linker<ProxyState>) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        "proxy_grpc_call",
        |mut c: C<'_>,
         _a: i32,
         _b: i32,
         _c2: i32,
         _d: i32,
         _e: i32,
         _f: i32,
         _g: i32,
         _h: i32,
         _i: i32,
         _j: i32,
         _timeout: i32,
         _ret: i32|
         -> Result<i32> {
            c.data_mut().calls.hit("proxy_grpc_call");
            kong_nyi(&mut c, "proxy_grpc_call")?;
            // The harness configures no gRPC upstreams: Envoy rejects an unknown one.
            Ok(BAD_ARGUMENT)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_grpc_stream",
        |mut c: C<'_>,
         _a: i32,
         _b: i32,
         _c2: i32,
         _d: i32,
         _e: i32,
         _f: i32,
         _g: i32,
         _h: i32,
         _ret: i32|
         -> Result<i32> {
            c.data_mut().calls.hit("proxy_grpc_stream");
            kong_nyi(&mut c, "proxy_grpc_stream")?;
            Ok(BAD_ARGUMENT)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_grpc_send",
        |mut c: C<'_>, _id: i32, _p: i32, _l: i32, _end: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_grpc_send");
            kong_nyi(&mut c, "proxy_grpc_send")?;
            Ok(NOT_FOUND)
        },
    )?;
    for name in ["proxy_grpc_cancel", "proxy_grpc_close"] {
        linker.func_wrap(
            HOST_MODULE,
            name,
            move |mut c: C<'_>, _id: i32| -> Result<i32> {
                c.data_mut().calls.hit(name);
                kong_nyi(&mut c, name)?;
                Ok(NOT_FOUND)
            },
        )?;
    }
    Ok(())
}
