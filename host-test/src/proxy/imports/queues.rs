//! Shared queues: register, resolve, enqueue (Envoy then notifies `on_queue_ready`), dequeue.

use gatetrace_abi::proxy_wasm::HOST_MODULE;
use wasmtime::{Linker, Result};

use super::common::{C, EMPTY, NOT_FOUND, OK, give, kong_nyi};
use crate::guest::{read, read_str, write_u32};
use crate::proxy::options::Profile;
use crate::proxy::state::ProxyState;

pub(super) fn link(linker: &mut Linker<ProxyState>) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
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
        HOST_MODULE,
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
        HOST_MODULE,
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
        HOST_MODULE,
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
    Ok(())
}
