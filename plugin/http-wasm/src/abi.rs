//! http-wasm ABI constants and byte formats (module `http_handler`): header kinds, features,
//! log levels, the `count<<32|len` and `req_ctx<<32|next` packings, NUL-terminated lists.

/// Which header map a header call addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum HeaderKind {
    Request = 0,
    Response = 1,
}

/// `enable_features` bit: buffer the response so its status (and body) can be read.
pub const FEATURE_BUFFER_RESPONSE: i32 = 2;

/// Host log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum LogLevel {
    Debug = -1,
    Info = 0,
    Warn = 1,
    Error = 2,
}

/// Splits the `i64` returned by `get_header_names` / `get_header_values` into
/// `(count, len)`: the number of NUL-terminated values and their total byte length.
#[must_use]
pub fn unpack_count_len(packed: i64) -> (u32, u32) {
    let bits = packed as u64;
    ((bits >> 32) as u32, bits as u32)
}

/// The `i64` that `handle_request` returns: the guest's request context in the high half,
/// `next` (1 = call the next handler, then `handle_response`) in the low half.
#[must_use]
pub fn pack_ctx_next(req_ctx: u32, next: bool) -> i64 {
    ((u64::from(req_ctx) << 32) | u64::from(next)) as i64
}

/// Iterates the values of a NUL-terminated list (`"a\0bb\0"` → `a`, `bb`). A trailing
/// fragment without its NUL (a host that broke the format) is still yielded, never lost.
pub fn nul_terminated(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    let mut parts = body.split(|&b| b == 0);
    // An empty list is no values, not one empty value.
    if bytes.is_empty() {
        parts.next();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_len_packing() {
        // Two values "text/html" and "x" → 9+1 + 1+1 = 12 bytes: 0x0000_0002_0000_000c.
        assert_eq!(unpack_count_len(0x0000_0002_0000_000c), (2, 12));
        // No such header: both halves zero.
        assert_eq!(unpack_count_len(0), (0, 0));
        // A length with the top bit set must not sign-extend into the count.
        assert_eq!(unpack_count_len(0x0000_0001_8000_0000), (1, 0x8000_0000));
        // Count with the top bit set (as the host's u64 reinterpreted as i64).
        assert_eq!(unpack_count_len(i64::MIN | 3), (0x8000_0000, 3));
    }

    #[test]
    fn ctx_next_packing() {
        // req_ctx 7, next → 0x0000_0007_0000_0001.
        assert_eq!(pack_ctx_next(7, true), 0x0000_0007_0000_0001);
        assert_eq!(pack_ctx_next(7, false), 0x0000_0007_0000_0000);
        // The host reads req_ctx back as uint32(ctxNext >> 32): the full u32 survives.
        let packed = pack_ctx_next(u32::MAX, true) as u64;
        assert_eq!((packed >> 32) as u32, u32::MAX);
        assert_eq!(packed as u32, 1);
    }

    #[test]
    fn nul_terminated_lists() {
        let values: Vec<&[u8]> = nul_terminated(b"foo\0bar\0").collect();
        assert_eq!(values, [b"foo".as_slice(), b"bar".as_slice()]);
        // One empty value is a NUL alone.
        let values: Vec<&[u8]> = nul_terminated(b"\0").collect();
        assert_eq!(values, [b"".as_slice()]);
        assert_eq!(nul_terminated(b"").count(), 0);
        // Missing final NUL: the fragment is still a value.
        let values: Vec<&[u8]> = nul_terminated(b"a\0b").collect();
        assert_eq!(values, [b"a".as_slice(), b"b".as_slice()]);
    }
}
