//! Shared data: a key-value store with compare-and-swap versions.

use gatetrace_abi::proxy_wasm::HOST_MODULE;
use wasmtime::{Linker, Result};

use super::common::{C, CAS_MISMATCH, NOT_FOUND, OK, give};
use crate::guest::{read, read_str, write_u32};
use crate::proxy::state::ProxyState;

pub(super) fn link(linker: &mut Linker<ProxyState>) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
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
        HOST_MODULE,
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
    Ok(())
}
