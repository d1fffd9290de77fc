//! http-wasm (the ABI Traefik's middleware plugins speak): the host module's name, feature
//! flags, header and body kinds, log levels, and the three `i64` packings, documented once.
//!
//! The host module is [`HOST_MODULE`]. The guest exports `memory`, `handle_request() -> i64`
//! and `handle_response(req_ctx: i32, is_error: i32)`. Getters follow the `buf_limit`
//! protocol: the host writes the value only when it fits in `buf_limit` bytes and always
//! returns its full length (call again with a bigger buffer). Multi-value results are
//! NUL-*terminated*, one after another (`"foo\0bar\0"`).

/// The module the host functions are imported from.
pub const HOST_MODULE: &str = "http_handler";

/// `enable_features` bits (a set; the call returns the set now enabled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features(pub u32);

impl Features {
    /// Buffer the request body, so the guest may read it and the backend still gets it.
    pub const BUFFER_REQUEST: Self = Self(1);
    /// Buffer the response, so its status (and body) can be read or changed after `next`.
    pub const BUFFER_RESPONSE: Self = Self(2);
    /// Trailers.
    pub const TRAILERS: Self = Self(4);

    /// Whether every bit of `other` is set here.
    #[must_use]
    #[inline]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets together.
    #[must_use]
    #[inline]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The bits as the ABI's `i32`.
    #[must_use]
    #[inline]
    pub const fn to_abi(self) -> i32 {
        self.0 as i32
    }

    /// A set from the ABI's `i32`.
    #[must_use]
    #[inline]
    pub const fn from_abi(bits: i32) -> Self {
        Self(bits as u32)
    }
}

/// Which header map a header call addresses (`kind` of the header functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum HeaderKind {
    Request = 0,
    Response = 1,
    RequestTrailers = 2,
    ResponseTrailers = 3,
}

impl HeaderKind {
    /// The kind an ABI value names, if any.
    #[must_use]
    pub const fn from_abi(kind: i32) -> Option<Self> {
        match kind {
            0 => Some(Self::Request),
            1 => Some(Self::Response),
            2 => Some(Self::RequestTrailers),
            3 => Some(Self::ResponseTrailers),
            _ => None,
        }
    }
}

/// Which body `read_body` / `write_body` address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum BodyKind {
    Request = 0,
    Response = 1,
}

impl BodyKind {
    /// The kind an ABI value names, if any.
    #[must_use]
    pub const fn from_abi(kind: i32) -> Option<Self> {
        match kind {
            0 => Some(Self::Request),
            1 => Some(Self::Response),
            _ => None,
        }
    }
}

/// Log levels of `log` and `log_enabled` (`None` disables logging).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum LogLevel {
    Debug = -1,
    Info = 0,
    Warn = 1,
    Error = 2,
    None = 3,
}

impl LogLevel {
    /// The level an ABI value names, if any.
    #[must_use]
    pub const fn from_abi(level: i32) -> Option<Self> {
        match level {
            -1 => Some(Self::Debug),
            0 => Some(Self::Info),
            1 => Some(Self::Warn),
            2 => Some(Self::Error),
            3 => Some(Self::None),
            _ => None,
        }
    }

    /// Lowercase name (`debug`, `info`, `warn`, `error`, `none`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::None => "none",
        }
    }
}

/// Two `u32` halves in one `i64`: `high << 32 | low`, the shape of every packed result.
#[inline]
const fn pack(high: u32, low: u32) -> i64 {
    (((high as u64) << 32) | low as u64) as i64
}

/// The halves of [`pack`]; neither sign-extends into the other.
#[inline]
const fn unpack(packed: i64) -> (u32, u32) {
    let bits = packed as u64;
    ((bits >> 32) as u32, bits as u32)
}

/// `get_header_names` / `get_header_values` result: `count << 32 | len`, the number of
/// NUL-terminated values and their total length in bytes (written only if `len` fit).
#[must_use]
#[inline]
pub const fn pack_count_len(count: u32, len: u32) -> i64 {
    pack(count, len)
}

/// `(count, len)` of a [`pack_count_len`] result.
#[must_use]
#[inline]
pub const fn unpack_count_len(packed: i64) -> (u32, u32) {
    unpack(packed)
}

/// `read_body` result: `eof << 32 | len`, whether the body ended with this chunk and the bytes
/// written.
#[must_use]
#[inline]
pub const fn pack_eof_len(eof: bool, len: u32) -> i64 {
    pack(eof as u32, len)
}

/// `(eof, len)` of a [`pack_eof_len`] result.
#[must_use]
#[inline]
pub const fn unpack_eof_len(packed: i64) -> (bool, u32) {
    let (eof, len) = unpack(packed);
    (eof & 1 == 1, len)
}

/// `handle_request` result: `req_ctx << 32 | next`. The guest's request context comes back as
/// `handle_response`'s first argument; `next` (1) asks the host to call the next handler and
/// then `handle_response`, 0 means the guest answered itself.
#[must_use]
#[inline]
pub const fn pack_ctx_next(req_ctx: u32, next: bool) -> i64 {
    pack(req_ctx, next as u32)
}

/// `(req_ctx, next)` of a [`pack_ctx_next`] result (the host reads `next` from bit 0).
#[must_use]
#[inline]
pub const fn unpack_ctx_next(packed: i64) -> (u32, bool) {
    let (ctx, next) = unpack(packed);
    (ctx, next & 1 == 1)
}

/// Iterates the values of a NUL-terminated list (`"a\0bb\0"` → `a`, `bb`). A trailing
/// fragment without its NUL (a host that broke the format) is still yielded, never lost.
#[inline]
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
    use alloc::vec::Vec;

    #[test]
    fn count_len_packing() {
        // Two values "text/html" and "x" → 9+1 + 1+1 = 12 bytes: 0x0000_0002_0000_000c.
        assert_eq!(pack_count_len(2, 12), 0x0000_0002_0000_000c);
        assert_eq!(unpack_count_len(0x0000_0002_0000_000c), (2, 12));
        // No such header: both halves zero.
        assert_eq!(unpack_count_len(0), (0, 0));
        // A length with the top bit set must not sign-extend into the count.
        assert_eq!(unpack_count_len(0x0000_0001_8000_0000), (1, 0x8000_0000));
        assert_eq!(pack_count_len(1, 0x8000_0000), 0x0000_0001_8000_0000);
        // Count with the top bit set (as the host's u64 reinterpreted as i64).
        assert_eq!(unpack_count_len(i64::MIN | 3), (0x8000_0000, 3));
    }

    #[test]
    fn eof_len_packing() {
        assert_eq!(pack_eof_len(true, 16), 0x0000_0001_0000_0010);
        assert_eq!(pack_eof_len(false, 16), 0x10);
        assert_eq!(unpack_eof_len(0x0000_0001_0000_0010), (true, 16));
        assert_eq!(unpack_eof_len(0x10), (false, 16));
    }

    #[test]
    fn ctx_next_packing() {
        // req_ctx 7, next → 0x0000_0007_0000_0001.
        assert_eq!(pack_ctx_next(7, true), 0x0000_0007_0000_0001);
        assert_eq!(pack_ctx_next(7, false), 0x0000_0007_0000_0000);
        // The host reads req_ctx back as uint32(ctxNext >> 32): the full u32 survives.
        let packed = pack_ctx_next(u32::MAX, true);
        assert_eq!(unpack_ctx_next(packed), (u32::MAX, true));
        assert_eq!((packed as u64 >> 32) as u32, u32::MAX);
    }

    #[test]
    fn features_are_the_host_go_bits() {
        assert_eq!(
            (
                Features::BUFFER_REQUEST.0,
                Features::BUFFER_RESPONSE.0,
                Features::TRAILERS.0
            ),
            (1, 2, 4)
        );
        let both = Features::BUFFER_REQUEST.union(Features::BUFFER_RESPONSE);
        assert!(both.contains(Features::BUFFER_RESPONSE));
        assert!(!both.contains(Features::TRAILERS));
        assert_eq!(Features::from_abi(both.to_abi()), both);
    }

    #[test]
    fn kinds_and_levels_round_trip() {
        for kind in [
            HeaderKind::Request,
            HeaderKind::Response,
            HeaderKind::RequestTrailers,
            HeaderKind::ResponseTrailers,
        ] {
            assert_eq!(HeaderKind::from_abi(kind as i32), Some(kind));
        }
        assert_eq!(HeaderKind::from_abi(4), None);
        assert_eq!(BodyKind::from_abi(1), Some(BodyKind::Response));
        assert_eq!(BodyKind::from_abi(2), None);
        assert_eq!(LogLevel::from_abi(-1), Some(LogLevel::Debug));
        assert_eq!(LogLevel::from_abi(3).map(LogLevel::name), Some("none"));
        assert_eq!(LogLevel::from_abi(-2), None);
        assert!(LogLevel::Warn > LogLevel::Info);
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
