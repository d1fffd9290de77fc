//! Contexts and streams: the effective context, `proxy_done`, continuing or closing a stream,
//! a local response, and foreign functions (none registered).

use gatetrace_abi::proxy_wasm::{HOST_MODULE, StreamType, deserialize_pairs};
use wasmtime::{Linker, Result};

use super::common::{BAD_ARGUMENT, C, NOT_FOUND, OK, kong_nyi};
use super::headers::headers_of;
use crate::guest::read;
use crate::model::ClientResponse;
use crate::proxy::state::{Life, ProxyState};

pub(super) fn link(linker: &mut Linker<ProxyState>) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        "proxy_set_effective_context",
        |mut c: C<'_>, ctx: i32| -> i32 {
            let state = c.data_mut();
            state.calls.hit("proxy_set_effective_context");
            let ctx = ctx as u32;
            if state
                .contexts
                .get(&ctx)
                .is_some_and(|x| x.life != Life::Deleted)
            {
                state.effective = ctx;
                OK
            } else {
                BAD_ARGUMENT
            }
        },
    )?;
    linker.func_wrap(HOST_MODULE, "proxy_done", |mut c: C<'_>| -> Result<i32> {
        c.data_mut().calls.hit("proxy_done");
        kong_nyi(&mut c, "proxy_done")?;
        let state = c.data_mut();
        let ctx = state.effective;
        if state
            .contexts
            .get(&ctx)
            .is_some_and(|x| x.life == Life::AwaitingDone)
            && !state.done_requests.contains(&ctx)
        {
            state.done_requests.push(ctx);
            Ok(OK)
        } else {
            Ok(NOT_FOUND)
        }
    })?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_continue_stream",
        |mut c: C<'_>, kind: i32| -> i32 {
            let state = c.data_mut();
            state.calls.hit("proxy_continue_stream");
            let Some(s) = state.stream_mut() else {
                return NOT_FOUND;
            };
            match StreamType::from_abi(kind) {
                Some(StreamType::HttpRequest) => s.request_resumed = true,
                Some(StreamType::HttpResponse) => s.response_resumed = true,
                _ => return BAD_ARGUMENT,
            }
            OK
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_close_stream",
        |mut c: C<'_>, _kind: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_close_stream");
            kong_nyi(&mut c, "proxy_close_stream")?;
            match c.data_mut().stream_mut() {
                Some(s) => {
                    s.closed = true;
                    Ok(OK)
                }
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_send_local_response",
        |mut c: C<'_>,
         status: i32,
         _d: i32,
         _dl: i32,
         body: i32,
         body_len: i32,
         hdrs: i32,
         hdrs_len: i32,
         _grpc: i32|
         -> Result<i32> {
            c.data_mut().calls.hit("proxy_send_local_response");
            let body = read(&mut c, body, body_len)?;
            let raw = read(&mut c, hdrs, hdrs_len)?;
            let Some(headers) = deserialize_pairs(&raw).map(headers_of) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(s) = c.data_mut().stream_mut() else {
                return Ok(BAD_ARGUMENT);
            };
            s.local = Some(ClientResponse {
                status: status as u16,
                headers,
                body,
            });
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_call_foreign_function",
        |mut c: C<'_>,
         _name: i32,
         _name_len: i32,
         _args: i32,
         _args_len: i32,
         _ret_ptr: i32,
         _ret_size: i32|
         -> i32 {
            c.data_mut().calls.hit("proxy_call_foreign_function");
            // The harness registers no foreign functions; both hosts answer NOT_FOUND then.
            NOT_FOUND
        },
    )?;
    Ok(())
}
