//! Properties (`proxy_get_property`, `proxy_set_property`), encoded as the profile's host does.

use gatetrace_abi::proxy_wasm::HOST_MODULE;
use wasmtime::{Linker, Result};

use super::common::{C, NOT_FOUND, OK, give};
use crate::guest::{read, read_str};
use crate::proxy::state::ProxyState;

pub(super) fn link(linker: &mut Linker<ProxyState>) -> Result<()> {
    linker.func_wrap(
        HOST_MODULE,
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
        HOST_MODULE,
        "proxy_set_property",
        |mut c: C<'_>, path: i32, path_len: i32, value: i32, value_len: i32| -> Result<i32> {
            c.data_mut().calls.hit("proxy_set_property");
            let path = read_str(&mut c, path, path_len)?.replace('\0', ".");
            let value = read(&mut c, value, value_len)?;
            c.data_mut().properties.insert(path, value);
            Ok(OK)
        },
    )?;
    Ok(())
}
