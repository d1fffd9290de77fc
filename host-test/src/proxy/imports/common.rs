//! What every `env` import shares: the status codes (from the one table in `gatetrace-abi`),
//! Kong's "not yet implemented" trap, and handing data to the guest in memory it allocates.

use gatetrace_abi::proxy_wasm::Status;
use wasmtime::{Caller, Result, bail};

use crate::guest::{write, write_u32};
use crate::proxy::options::Profile;
use crate::proxy::state::ProxyState;

/// A host function's caller.
pub(super) type C<'a> = Caller<'a, ProxyState>;

pub(super) const OK: i32 = Status::Ok.to_abi();
pub(super) const NOT_FOUND: i32 = Status::NotFound.to_abi();
pub(super) const BAD_ARGUMENT: i32 = Status::BadArgument.to_abi();
pub(super) const EMPTY: i32 = Status::Empty.to_abi();
pub(super) const CAS_MISMATCH: i32 = Status::CasMismatch.to_abi();
pub(super) const INTERNAL_FAILURE: i32 = Status::InternalFailure.to_abi();

/// Kong answers these with "host trap (function not yet implemented)".
pub(super) fn kong_nyi(c: &mut C<'_>, name: &str) -> Result<()> {
    if c.data().profile == Profile::Kong {
        let why = format!("Kong refuses {name}: host trap (function not yet implemented)");
        c.data_mut().refusal = Some(why.clone());
        bail!(why);
    }
    Ok(())
}

/// Copies `bytes` into memory the guest allocates and writes its address and size;
/// empty data is a null pointer and size 0, as proxy-wasm-cpp-host does.
pub(super) fn give(c: &mut C<'_>, bytes: &[u8], ptr_ptr: i32, size_ptr: i32) -> Result<()> {
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
