//! The `env` imports of proxy-wasm 0.2.1, answering with the statuses the profile's host
//! returns (Kong traps where ngx_wasm_module does: not-yet-implemented calls, bad dispatch).

use wasmtime::{Caller, Linker, Result, bail};

use super::pairs;
use super::{CallState, DispatchedCall, Life, Metric, Profile, ProxyState, Step};
use crate::guest::{read, read_str, write, write_u32, write_u64};
use crate::headers::Headers;
use crate::http_wasm::ClientResponse;

const OK: i32 = 0;
const NOT_FOUND: i32 = 1;
const BAD_ARGUMENT: i32 = 2;
const EMPTY: i32 = 7;
const CAS_MISMATCH: i32 = 8;
const INTERNAL_FAILURE: i32 = 10;

type C<'a> = Caller<'a, ProxyState>;

/// Kong answers these with "host trap (function not yet implemented)".
fn kong_nyi(c: &mut C<'_>, name: &str) -> Result<()> {
    if c.data().profile == Profile::Kong {
        let why = format!("Kong refuses {name}: host trap (function not yet implemented)");
        c.data_mut().refusal = Some(why.clone());
        bail!(why);
    }
    Ok(())
}

/// Copies `bytes` into memory the guest allocates and writes its address and size;
/// empty data is a null pointer and size 0, as proxy-wasm-cpp-host does.
fn give(c: &mut C<'_>, bytes: &[u8], ptr_ptr: i32, size_ptr: i32) -> Result<()> {
    let mut addr = 0u32;
    if !bytes.is_empty() {
        let alloc = c
            .get_export("proxy_on_memory_allocate")
            .or_else(|| c.get_export("malloc"))
            .and_then(wasmtime::Extern::into_func)
            .ok_or_else(|| {
                wasmtime::format_err!("guest exports neither proxy_on_memory_allocate nor malloc")
            })?;
        let alloc = alloc.typed::<i32, i32>(&*c)?;
        addr = alloc.call(&mut *c, bytes.len() as i32)? as u32;
        if addr == 0 {
            bail!("proxy_on_memory_allocate({}) returned 0", bytes.len());
        }
        write(c, addr as i32, bytes)?;
    }
    write_u32(c, ptr_ptr, addr)?;
    write_u32(c, size_ptr, bytes.len() as u32)
}

/// The header map `map_type` names in the current context, if it exists there.
fn map_mut(state: &mut ProxyState, map_type: i32) -> Option<&mut Headers> {
    if matches!(map_type, 6 | 7) {
        let reply = state.reply.as_mut()?;
        return Some(if map_type == 6 {
            &mut reply.headers
        } else {
            &mut reply.trailers
        });
    }
    let s = state.stream_mut()?;
    match map_type {
        0 => Some(&mut s.request_headers),
        1 => Some(&mut s.request_trailers),
        2 if s.response_code.is_some() => Some(&mut s.response_headers),
        3 if s.response_code.is_some() => Some(&mut s.response_trailers),
        _ => None,
    }
}

fn buffer(state: &mut ProxyState, buffer_type: i32) -> Option<Vec<u8>> {
    match buffer_type {
        0 => Some(state.stream()?.request_body.clone()),
        1 => Some(state.stream()?.response_body.clone()),
        4 => Some(state.reply.as_ref()?.body.clone()),
        6 => Some(state.vm_config.clone()),
        7 => Some(state.plugin_config.clone()),
        _ => None,
    }
}

fn level_name(level: i32) -> &'static str {
    match level {
        0 => "trace",
        1 => "debug",
        2 => "info",
        3 => "warn",
        4 => "error",
        _ => "critical",
    }
}

#[allow(clippy::too_many_lines)]
pub(super) fn link(linker: &mut Linker<ProxyState>) -> Result<()> {
    const M: &str = "env";
    linker.func_wrap(
        M,
        "proxy_log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_log");
            let message = read_str(&mut c, ptr, len)?;
            c.data_mut().logs.push(crate::LogLine {
                level: level_name(level),
                message,
            });
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_get_log_level",
        |mut c: C<'_>, ret: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_log_level");
            kong_nyi(&mut c, "proxy_get_log_level")?;
            let level = c.data().log_level;
            write_u32(&mut c, ret, level)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_current_time_nanoseconds");
            let now = c.data().clock.now_nanos();
            write_u64(&mut c, ret, now)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, period: i32| -> i32 {
            let state = c.data_mut();
            state.calls.hit("proxy_set_tick_period_milliseconds");
            state.tick_period_ms = period as u32;
            OK
        },
    )?;
    linker.func_wrap(
        M,
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
    linker.func_wrap(M, "proxy_done", |mut c: C<'_>| -> Result<i32> {
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
        M,
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
        M,
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
        M,
        "proxy_set_buffer_bytes",
        |mut c: C<'_>, kind: i32, start: i32, size: i32, ptr: i32, len: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_set_buffer_bytes");
            let bytes = read(&mut c, ptr, len)?;
            let state = c.data_mut();
            let Some(s) = state.stream_mut() else {
                return Ok(NOT_FOUND);
            };
            let body = match kind {
                0 => &mut s.request_body,
                1 => &mut s.response_body,
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
    linker.func_wrap(
        M,
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, map: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_header_map_pairs");
            let bytes = map_mut(c.data_mut(), map)
                .map_or_else(|| pairs::serialize(&[]), |h| pairs::serialize(h.pairs()));
            give(&mut c, &bytes, ptr_ptr, size_ptr)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_get_header_map_size",
        |mut c: C<'_>, map: i32, size_ptr: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_header_map_size");
            let size = map_mut(c.data_mut(), map).map_or(4, |h| pairs::serialize(h.pairs()).len());
            write_u32(&mut c, size_ptr, size as u32)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, map: i32, ptr: i32, len: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_set_header_map_pairs");
            let bytes = read(&mut c, ptr, len)?;
            let Some(parsed) = pairs::deserialize(&bytes) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(h) = map_mut(c.data_mut(), map) else {
                return Ok(BAD_ARGUMENT);
            };
            *h = Headers::from_pairs(parsed);
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_get_header_map_value",
        |mut c: C<'_>,
         map: i32,
         key: i32,
         key_len: i32,
         ptr_ptr: i32,
         size_ptr: i32|
         -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_header_map_value");
            let key = read_str(&mut c, key, key_len)?;
            let Some(value) =
                map_mut(c.data_mut(), map).and_then(|h| h.get(&key).map(str::to_owned))
            else {
                return Ok(NOT_FOUND);
            };
            give(&mut c, value.as_bytes(), ptr_ptr, size_ptr)?;
            Ok(OK)
        },
    )?;
    for (name, op) in [
        ("proxy_add_header_map_value", 0),
        ("proxy_replace_header_map_value", 1),
    ] {
        linker.func_wrap(
            M,
            name,
            move |mut c: C<'_>,
                  map: i32,
                  key: i32,
                  key_len: i32,
                  value: i32,
                  value_len: i32|
                  -> Result<i32> {
                c.data_mut().calls.hit(name);
                let key = read_str(&mut c, key, key_len)?;
                let value = read_str(&mut c, value, value_len)?;
                let Some(h) = map_mut(c.data_mut(), map) else {
                    return Ok(BAD_ARGUMENT);
                };
                if op == 0 {
                    h.add(&key.to_ascii_lowercase(), &value);
                } else {
                    h.set(&key.to_ascii_lowercase(), &value);
                }
                Ok(OK)
            },
        )?;
    }
    linker.func_wrap(
        M,
        "proxy_remove_header_map_value",
        |mut c: C<'_>, map: i32, key: i32, key_len: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_remove_header_map_value");
            let key = read_str(&mut c, key, key_len)?;
            let Some(h) = map_mut(c.data_mut(), map) else {
                return Ok(BAD_ARGUMENT);
            };
            h.remove(&key);
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_get_property",
        |mut c: C<'_>, path: i32, path_len: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_property");
            let path = read_str(&mut c, path, path_len)?.replace('\0', ".");
            let Some(value) = c.data().property(&path) else {
                return Ok(NOT_FOUND);
            };
            give(&mut c, &value, ptr_ptr, size_ptr)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_set_property",
        |mut c: C<'_>, path: i32, path_len: i32, value: i32, value_len: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_set_property");
            let path = read_str(&mut c, path, path_len)?.replace('\0', ".");
            let value = read(&mut c, value, value_len)?;
            c.data_mut().properties.insert(path, value);
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_continue_stream",
        |mut c: C<'_>, kind: i32| -> i32 {
            let state = c.data_mut();
            state.calls.hit("proxy_continue_stream");
            let Some(s) = state.stream_mut() else {
                return NOT_FOUND;
            };
            match kind {
                0 => s.request_resumed = true,
                1 => s.response_resumed = true,
                _ => return BAD_ARGUMENT,
            }
            OK
        },
    )?;
    linker.func_wrap(
        M,
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
        M,
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
            let Some(parsed) = pairs::deserialize(&raw) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(s) = c.data_mut().stream_mut() else {
                return Ok(BAD_ARGUMENT);
            };
            s.local = Some(ClientResponse {
                status: status as u16,
                headers: Headers::from_pairs(parsed),
                body,
            });
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
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
            let (Some(headers), Some(trailers)) = (pairs::deserialize(&raw), pairs::deserialize(&raw_trailers)) else {
                return Ok(BAD_ARGUMENT);
            };
            let headers = Headers::from_pairs(headers);
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
                trailers: Headers::from_pairs(trailers),
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
        M,
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
        M,
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
        M,
        "proxy_grpc_send",
        |mut c: C<'_>, _id: i32, _p: i32, _l: i32, _end: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_grpc_send");
            kong_nyi(&mut c, "proxy_grpc_send")?;
            Ok(NOT_FOUND)
        },
    )?;
    for name in ["proxy_grpc_cancel", "proxy_grpc_close"] {
        linker.func_wrap(M, name, move |mut c: C<'_>, _id: i32| -> Result<i32> {
            c.data_mut().calls.hit(name);
            kong_nyi(&mut c, name)?;
            Ok(NOT_FOUND)
        })?;
    }
    linker.func_wrap(
        M,
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
    linker.func_wrap(
        M,
        "proxy_get_shared_data",
        |mut c: C<'_>,
         key: i32,
         key_len: i32,
         ptr_ptr: i32,
         size_ptr: i32,
         cas_ptr: i32|
         -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_shared_data");
            let key = read_str(&mut c, key, key_len)?;
            let Some((value, cas)) = c.data().shared.get(&key).cloned() else {
                return Ok(NOT_FOUND);
            };
            give(&mut c, &value, ptr_ptr, size_ptr)?;
            write_u32(&mut c, cas_ptr, cas)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_set_shared_data",
        |mut c: C<'_>,
         key: i32,
         key_len: i32,
         value: i32,
         value_len: i32,
         cas: i32|
         -> Result<i32> {
            c.data_mut().calls.hit("proxy_set_shared_data");
            let key = read_str(&mut c, key, key_len)?;
            let value = read(&mut c, value, value_len)?;
            let state = c.data_mut();
            if cas != 0
                && state
                    .shared
                    .get(&key)
                    .is_some_and(|(_, current)| *current != cas as u32)
            {
                return Ok(CAS_MISMATCH);
            }
            let next = state.next_cas;
            state.next_cas += 1;
            state.shared.insert(key, (value, next));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_register_shared_queue",
        |mut c: C<'_>, name: i32, name_len: i32, ret: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_register_shared_queue");
            let name = read_str(&mut c, name, name_len)?;
            let state = c.data_mut();
            let vm = state.vm_id.clone();
            let id = match state.queues.iter().position(|q| q.0 == vm && q.1 == name) {
                Some(i) => i + 1,
                None => {
                    state
                        .queues
                        .push((vm, name, std::collections::VecDeque::new()));
                    state.queues.len()
                }
            };
            write_u32(&mut c, ret, id as u32)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_resolve_shared_queue",
        |mut c: C<'_>, vm: i32, vm_len: i32, name: i32, name_len: i32, ret: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_resolve_shared_queue");
            kong_nyi(&mut c, "proxy_resolve_shared_queue")?;
            let vm = read_str(&mut c, vm, vm_len)?;
            let name = read_str(&mut c, name, name_len)?;
            let Some(i) = c
                .data()
                .queues
                .iter()
                .position(|q| q.0 == vm && q.1 == name)
            else {
                return Ok(NOT_FOUND);
            };
            write_u32(&mut c, ret, i as u32 + 1)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_enqueue_shared_queue",
        |mut c: C<'_>, id: i32, ptr: i32, len: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_enqueue_shared_queue");
            let value = read(&mut c, ptr, len)?;
            let state = c.data_mut();
            let Some(q) = (id as usize)
                .checked_sub(1)
                .and_then(|i| state.queues.get_mut(i))
            else {
                return Ok(NOT_FOUND);
            };
            q.2.push_back(value);
            // Envoy tells the registering root context; ngx_wasm_module never calls on_queue_ready.
            if state.profile == Profile::Envoy && !state.ready_queues.contains(&(id as u32)) {
                state.ready_queues.push(id as u32);
            }
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_dequeue_shared_queue",
        |mut c: C<'_>, id: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_dequeue_shared_queue");
            let state = c.data_mut();
            let Some(q) = (id as usize)
                .checked_sub(1)
                .and_then(|i| state.queues.get_mut(i))
            else {
                return Ok(NOT_FOUND);
            };
            let Some(value) = q.2.pop_front() else {
                return Ok(EMPTY);
            };
            give(&mut c, &value, ptr_ptr, size_ptr)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_define_metric",
        |mut c: C<'_>, kind: i32, name: i32, name_len: i32, ret: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_define_metric");
            if !(0..=2).contains(&kind) {
                return Ok(BAD_ARGUMENT);
            }
            let name = read_str(&mut c, name, name_len)?;
            let state = c.data_mut();
            let id = match state.metrics.iter().position(|m| m.name == name) {
                Some(i) => i + 1,
                None => {
                    state.metrics.push(Metric {
                        name,
                        kind: kind as u32,
                        value: 0,
                    });
                    state.metrics.len()
                }
            };
            write_u32(&mut c, ret, id as u32)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_record_metric",
        |mut c: C<'_>, id: i32, value: i64| -> i32 {
            let state = c.data_mut();
            state.calls.hit("proxy_record_metric");
            match (id as usize)
                .checked_sub(1)
                .and_then(|i| state.metrics.get_mut(i))
            {
                Some(m) => {
                    m.value = value;
                    OK
                }
                None => NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_increment_metric",
        |mut c: C<'_>, id: i32, delta: i64| -> i32 {
            let state = c.data_mut();
            state.calls.hit("proxy_increment_metric");
            match (id as usize)
                .checked_sub(1)
                .and_then(|i| state.metrics.get_mut(i))
            {
                Some(m) if m.kind == 2 || (m.kind == 0 && delta < 0) => BAD_ARGUMENT,
                Some(m) => {
                    m.value += delta;
                    OK
                }
                None => NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        M,
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, ret: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_get_metric");
            let metric = (id as usize)
                .checked_sub(1)
                .and_then(|i| c.data().metrics.get(i))
                .cloned();
            match metric {
                Some(m) if m.kind == 2 => Ok(BAD_ARGUMENT),
                Some(m) => {
                    write_u64(&mut c, ret, m.value as u64)?;
                    Ok(OK)
                }
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        M,
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
