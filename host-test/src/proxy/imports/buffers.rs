//! Buffers: request and response bodies, the call response body, the VM and plugin
//! configurations (`proxy_get_buffer_bytes`, `proxy_get_buffer_status`, `proxy_set_buffer_bytes`).

use gatetrace_abi::proxy_wasm::{BufferType, HOST_MODULE};
use wasmtime::{Linker, Result};

use super::common::{BAD_ARGUMENT, C, NOT_FOUND, OK, give};
use crate::guest::{read, write_u32};
use crate::proxy::state::ProxyState;

/// The buffer `buffer_type` names in the current context, if it exists there.
fn buffer(state: &mut ProxyState, buffer_type: i32) -> Option<Vec<u8>> {
    match BufferType::from_abi(buffer_type)? {
        BufferType::HttpRequestBody => Some(state.stream()?.request_body.clone()),
        BufferType::HttpResponseBody => Some(state.stream()?.response_body.clone()),
        BufferType::HttpCallResponseBody => Some(state.reply.as_ref()?.body.clone()),
        BufferType::VmConfiguration => Some(state.vm_config.clone()),
        BufferType::PluginConfiguration => Some(state.plugin_config.clone()),
        _ => None,
    }
}

pub(super) fn link(linker: &mut Linker<ProxyState>) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        "proxy_get_buffer_bytes",
        |mut c: C<'_>,
         kind: i32,
         start: i32,
         max: i32,
         ptr_ptr: i32,
         size_ptr: i32|
         -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_buffer_bytes");
            let Some(data) = buffer(c.data_mut(), kind) else {
                return Ok(NOT_FOUND);
            };
            let start = start as u32 as usize;
            if start > data.len() {
                return Ok(BAD_ARGUMENT);
            }
            let end = start.saturating_add(max as u32 as usize).min(data.len());
            give(&mut c, &data[start..end], ptr_ptr, size_ptr)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_get_buffer_status",
        |mut c: C<'_>, kind: i32, size_ptr: i32, flags_ptr: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_buffer_status");
            let Some(data) = buffer(c.data_mut(), kind) else {
                return Ok(NOT_FOUND);
            };
            write_u32(&mut c, size_ptr, data.len() as u32)?;
            write_u32(&mut c, flags_ptr, 0)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_set_buffer_bytes",
        |mut c: C<'_>, kind: i32, start: i32, size: i32, ptr: i32, len: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_set_buffer_bytes");
            let bytes = read(&mut c, ptr, len)?;
            let state = c.data_mut();
            let Some(s) = state.stream_mut() else {
                return Ok(NOT_FOUND);
            };
            let body = match BufferType::from_abi(kind) {
                Some(BufferType::HttpRequestBody) => &mut s.request_body,
                Some(BufferType::HttpResponseBody) => &mut s.response_body,
                _ => return Ok(NOT_FOUND),
            };
            let (start, size) = (start as u32 as usize, size as u32 as usize);
            // proxy-wasm-cpp-host's rule: prepend, replace all, or append; nothing in between.
            if start == 0 && size == 0 {
                body.splice(0..0, bytes);
            } else if start == 0 && size >= body.len() {
                *body = bytes;
            } else if start >= body.len() {
                body.extend_from_slice(&bytes);
            } else {
                return Ok(BAD_ARGUMENT);
            }
            Ok(OK)
        },
    )?;
    Ok(())
}
