//! Outgoing HTTP calls: `proxy_http_call` (with Kong's and Envoy's refusals) and
//! `proxy_get_status` of the answer being delivered.

use gatetrace_abi::proxy_wasm::{HOST_MODULE, deserialize_pairs};
use wasmtime::{Linker, Result, bail};

use super::common::{BAD_ARGUMENT, C, INTERNAL_FAILURE, OK, give, kong_nyi};
use super::headers::headers_of;
use crate::guest::{read, read_str, write_u32};
use crate::proxy::options::Profile;
use crate::proxy::report::{CallState, DispatchedCall};
use crate::proxy::state::{ProxyState, Step};

pub(super) fn link(linker: &mut Linker<ProxyState>) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        "proxy_http_call",
        |mut c: C<'_>, up: i32, up_len: i32, hdrs: i32, hdrs_len: i32, body: i32, body_len: i32, trl: i32, trl_len: i32, timeout: i32, ret: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_http_call");
            let step = c.data().step;
            let kong = c.data().profile == Profile::Kong;
            if kong && !matches!(step, Step::RequestHeaders | Step::RequestBody | Step::Tick | Step::CallResponse) {
                let why = format!(
                    "Kong refuses proxy_http_call from {}: host trap (bad usage): can only send HTTP dispatch during \"on_request_headers\", \"on_request_body\", \"on_tick\", \"on_dispatch_response\", \"on_foreign_function\"",
                    step.name()
                );
                c.data_mut().refusal = Some(why.clone());
                bail!(why);
            }
            let cluster = read_str(&mut c, up, up_len)?;
            let raw = read(&mut c, hdrs, hdrs_len)?;
            let body = read(&mut c, body, body_len)?;
            let raw_trailers = read(&mut c, trl, trl_len)?;
            let (Some(headers), Some(trailers)) = (
                deserialize_pairs(&raw).map(headers_of),
                deserialize_pairs(&raw_trailers).map(headers_of),
            ) else {
                return Ok(BAD_ARGUMENT);
            };
            let state = c.data_mut();
            if kong {
                if headers.get(":method").is_none() || headers.get(":path").is_none() {
                    return Ok(INTERNAL_FAILURE);
                }
            } else if !state.clusters.contains(&cluster)
                || [":method", ":path", ":authority"].iter().any(|h| headers.get(h).is_none())
            {
                return Ok(BAD_ARGUMENT);
            }
            let id = state.dispatched.len() as u32 + 1;
            let at_nanos = state.clock.now_nanos();
            state.dispatched.push(DispatchedCall {
                id,
                cluster,
                headers,
                body,
                trailers,
                timeout_ms: timeout as u32,
                context_id: state.effective,
                from_callback: state.step.name(),
                at_nanos,
                state: CallState::Pending,
            });
            write_u32(&mut c, ret, id)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "proxy_get_status",
        |mut c: C<'_>, code_ptr: i32, msg_ptr: i32, msg_size: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_status");
            kong_nyi(&mut c, "proxy_get_status")?;
            let code = c
                .data()
                .reply
                .as_ref()
                .and_then(|r| r.headers.get(":status").and_then(|s| s.parse().ok()))
                .unwrap_or(0u32);
            write_u32(&mut c, code_ptr, code)?;
            give(&mut c, &[], msg_ptr, msg_size)?;
            Ok(OK)
        },
    )?;
    Ok(())
}
