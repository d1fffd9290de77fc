//! The one header-map read made without the SDK, whose reader builds a `String` and a `Vec`
//! per header (≈ 13 k of the 34 k wasm instructions of a plain request) and panics on an
//! unexpected status; this one hands back the host's bytes, parsed in place by the caller.

use proxy_wasm::types::{MapType, Status};

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    // Plain `u32`s, not the SDK's enums: a value outside an enum would be undefined behaviour.
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

/// The header map `map` serialized as the host sends it (`gatetrace_abi::proxy_wasm`'s pairs
/// layout); empty when the host has none or refuses.
pub fn bytes(map: MapType) -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the import writes at most a pointer and a length through the two out-pointers,
    // which point at the locals above.
    let status = unsafe { proxy_get_header_map_pairs(map as u32, &raw mut data, &raw mut size) };
    if status != Status::Ok as u32 || data.is_null() {
        return Vec::new();
    }
    // SAFETY: the host got these `size` bytes from the SDK's `proxy_on_memory_allocate`
    // export (a boxed slice of exactly `size` bytes, leaked) and filled them; the guest owns
    // them now, as the SDK's own reader assumes (`Vec::from_raw_parts(data, size, size)`).
    unsafe { Vec::from_raw_parts(data, size, size) }
}
