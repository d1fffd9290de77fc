//! proxy-wasm 0.2.1 (Envoy, Istio, Kong, APISIX): the module the host functions come from,
//! the complete status table, the enums the host functions take, and the header-map wire
//! format.
//!
//! The Rust SDK's `Status` (proxy-wasm 0.2.5) lacks [`Status::InvalidMemoryAccess`] (6) and
//! [`Status::Unimplemented`] (12) and panics on a status it does not expect, which is a trap
//! with `panic = "abort"`; real hosts do return 12 (APISIX for shared data, queues, metrics
//! and `proxy_done`), so a host double must be able to return every value here.

use alloc::vec::Vec;

/// The module the host functions are imported from.
pub const HOST_MODULE: &str = "env";

/// Declares a `#[repr(u32)]` ABI enum with `from_abi` (the value as the ABI passes it).
macro_rules! abi_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value,)+
        }

        impl $name {
            /// Every variant, in value order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The variant an ABI value names, if any.
            #[must_use]
            pub const fn from_abi(value: i32) -> Option<Self> {
                match value {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The value as the ABI's `i32`.
            #[must_use]
            pub const fn to_abi(self) -> i32 {
                self as i32
            }
        }
    };
}

abi_enum! {
    /// `proxy_status_t`: what every host function returns. The 0.2.1 spec lists 0–4, 6–8, 10
    /// and 12; proxy-wasm-cpp-host (Envoy's host) also defines 5, 9 and 11.
    Status {
        Ok = 0,
        NotFound = 1,
        BadArgument = 2,
        SerializationFailure = 3,
        ParseFailure = 4,
        /// proxy-wasm-cpp-host only.
        BadExpression = 5,
        /// A pointer or length the guest passed is outside its memory.
        InvalidMemoryAccess = 6,
        Empty = 7,
        CasMismatch = 8,
        /// proxy-wasm-cpp-host only.
        ResultMismatch = 9,
        InternalFailure = 10,
        /// proxy-wasm-cpp-host only.
        BrokenConnection = 11,
        /// The host does not implement this function (APISIX: shared data, queues, metrics,
        /// `proxy_done`).
        Unimplemented = 12,
    }
}

abi_enum! {
    /// `proxy_log_level_t`.
    LogLevel {
        Trace = 0,
        Debug = 1,
        Info = 2,
        Warn = 3,
        Error = 4,
        Critical = 5,
    }
}

impl LogLevel {
    /// Lowercase name (`trace` … `critical`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

abi_enum! {
    /// `proxy_action_t`: what a stream callback returns.
    Action {
        Continue = 0,
        Pause = 1,
    }
}

abi_enum! {
    /// `proxy_buffer_type_t`: the buffers of `proxy_get_buffer_bytes` and friends.
    BufferType {
        HttpRequestBody = 0,
        HttpResponseBody = 1,
        DownstreamData = 2,
        UpstreamData = 3,
        HttpCallResponseBody = 4,
        GrpcCallMessage = 5,
        VmConfiguration = 6,
        PluginConfiguration = 7,
        ForeignFunctionArguments = 8,
    }
}

abi_enum! {
    /// `proxy_map_type_t`: the header maps of the `proxy_*_header_map_*` functions.
    MapType {
        HttpRequestHeaders = 0,
        HttpRequestTrailers = 1,
        HttpResponseHeaders = 2,
        HttpResponseTrailers = 3,
        GrpcCallInitialMetadata = 4,
        GrpcCallTrailingMetadata = 5,
        HttpCallResponseHeaders = 6,
        HttpCallResponseTrailers = 7,
    }
}

abi_enum! {
    /// `proxy_peer_type_t`.
    PeerType {
        Unknown = 0,
        Local = 1,
        Remote = 2,
    }
}

abi_enum! {
    /// `proxy_stream_type_t`: the streams of `proxy_continue_stream` / `proxy_close_stream`.
    StreamType {
        HttpRequest = 0,
        HttpResponse = 1,
        Downstream = 2,
        Upstream = 3,
    }
}

abi_enum! {
    /// `proxy_metric_type_t`.
    MetricType {
        Counter = 0,
        Gauge = 1,
        Histogram = 2,
    }
}

/// Serializes header pairs as 0.2.1 lays them out (`proxy_get_header_map_pairs`,
/// `proxy_set_header_map_pairs`, `proxy_http_call`, `proxy_send_local_response`): a
/// little-endian `u32` count, then a (`u32` key length, `u32` value length) pair per entry,
/// then every key and value, each followed by a NUL byte.
#[must_use]
pub fn serialize_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let data: usize = pairs
        .iter()
        .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + data);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.as_ref().len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

/// Parses [`serialize_pairs`]'s layout; `None` when lengths run past the end or a NUL is
/// missing. An empty input is an empty map (guests pass a null/empty buffer for "none").
#[must_use]
pub fn deserialize_pairs(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = word(0)?;
    let mut at = count.checked_mul(8)?.checked_add(4)?;
    if at > bytes.len() {
        return None;
    }
    let mut take = |len: usize| -> Option<&[u8]> {
        let end = at.checked_add(len)?;
        let text = bytes.get(at..end)?;
        if *bytes.get(end)? != 0 {
            return None;
        }
        at = end + 1;
        Some(text)
    };
    let mut pairs = Vec::with_capacity(count);
    for i in 0..count {
        let (key_len, value_len) = (word(4 + i * 8)?, word(8 + i * 8)?);
        let key = take(key_len)?;
        let value = take(value_len)?;
        pairs.push((key, value));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proxy_wasm::types as sdk;

    /// Every status the SDK's `Status` has, with the variant of ours it must equal. The SDK's
    /// enum is `#[non_exhaustive]`, so its variants cannot be enumerated from outside: this
    /// list is checked by hand against `proxy-wasm`'s `src/types.rs` on every SDK bump.
    const SDK_STATUSES: [(sdk::Status, Status); 8] = [
        (sdk::Status::Ok, Status::Ok),
        (sdk::Status::NotFound, Status::NotFound),
        (sdk::Status::BadArgument, Status::BadArgument),
        (
            sdk::Status::SerializationFailure,
            Status::SerializationFailure,
        ),
        (sdk::Status::ParseFailure, Status::ParseFailure),
        (sdk::Status::Empty, Status::Empty),
        (sdk::Status::CasMismatch, Status::CasMismatch),
        (sdk::Status::InternalFailure, Status::InternalFailure),
    ];

    #[test]
    fn every_sdk_status_matches_the_table_by_value_and_name() {
        for (theirs, ours) in SDK_STATUSES {
            assert_eq!(theirs as u32, ours as u32, "{theirs:?}");
            assert_eq!(alloc::format!("{theirs:?}"), alloc::format!("{ours:?}"));
            assert_eq!(Status::from_abi(theirs as i32), Some(ours));
        }
    }

    #[test]
    fn the_table_is_complete_and_has_what_the_sdk_lacks() {
        let values: Vec<u32> = Status::ALL.iter().map(|s| *s as u32).collect();
        assert_eq!(values, (0..=12).collect::<Vec<u32>>());
        let sdk_values: Vec<u32> = SDK_STATUSES.iter().map(|(s, _)| *s as u32).collect();
        for missing in [Status::InvalidMemoryAccess, Status::Unimplemented] {
            assert!(!sdk_values.contains(&(missing as u32)), "{missing:?}");
        }
        assert_eq!(Status::InvalidMemoryAccess.to_abi(), 6);
        assert_eq!(Status::Unimplemented.to_abi(), 12);
        assert_eq!(Status::from_abi(13), None);
    }

    #[test]
    fn the_other_enums_match_the_sdk() {
        for (theirs, ours) in [
            (sdk::LogLevel::Trace, LogLevel::Trace),
            (sdk::LogLevel::Debug, LogLevel::Debug),
            (sdk::LogLevel::Info, LogLevel::Info),
            (sdk::LogLevel::Warn, LogLevel::Warn),
            (sdk::LogLevel::Error, LogLevel::Error),
            (sdk::LogLevel::Critical, LogLevel::Critical),
        ] {
            assert_eq!(theirs as u32, ours as u32);
        }
        assert_eq!(
            (sdk::Action::Continue as u32, sdk::Action::Pause as u32),
            (Action::Continue as u32, Action::Pause as u32)
        );
        let buffers = [
            sdk::BufferType::HttpRequestBody,
            sdk::BufferType::HttpResponseBody,
            sdk::BufferType::DownstreamData,
            sdk::BufferType::UpstreamData,
            sdk::BufferType::HttpCallResponseBody,
            sdk::BufferType::GrpcReceiveBuffer,
            sdk::BufferType::VmConfiguration,
            sdk::BufferType::PluginConfiguration,
            sdk::BufferType::CallData,
        ];
        let ours: Vec<u32> = BufferType::ALL.iter().map(|b| *b as u32).collect();
        assert_eq!(buffers.map(|b| b as u32).to_vec(), ours);
        let maps = [
            sdk::MapType::HttpRequestHeaders,
            sdk::MapType::HttpRequestTrailers,
            sdk::MapType::HttpResponseHeaders,
            sdk::MapType::HttpResponseTrailers,
            sdk::MapType::GrpcReceiveInitialMetadata,
            sdk::MapType::GrpcReceiveTrailingMetadata,
            sdk::MapType::HttpCallResponseHeaders,
            sdk::MapType::HttpCallResponseTrailers,
        ];
        let ours: Vec<u32> = MapType::ALL.iter().map(|m| *m as u32).collect();
        assert_eq!(maps.map(|m| m as u32).to_vec(), ours);
        let streams = [
            sdk::StreamType::HttpRequest,
            sdk::StreamType::HttpResponse,
            sdk::StreamType::Downstream,
            sdk::StreamType::Upstream,
        ];
        let ours: Vec<u32> = StreamType::ALL.iter().map(|s| *s as u32).collect();
        assert_eq!(streams.map(|s| s as u32).to_vec(), ours);
        let peers = [
            sdk::PeerType::Unknown,
            sdk::PeerType::Local,
            sdk::PeerType::Remote,
        ];
        let ours: Vec<u32> = PeerType::ALL.iter().map(|p| *p as u32).collect();
        assert_eq!(peers.map(|p| p as u32).to_vec(), ours);
        let metrics = [
            sdk::MetricType::Counter,
            sdk::MetricType::Gauge,
            sdk::MetricType::Histogram,
        ];
        let ours: Vec<u32> = MetricType::ALL.iter().map(|m| *m as u32).collect();
        assert_eq!(metrics.map(|m| m as u32).to_vec(), ours);
    }

    /// Two pairs, `:path`=`/a` and `x`=`` (empty value), byte by byte.
    const FIXTURE: &[u8] = &[
        2, 0, 0, 0, // count = 2
        5, 0, 0, 0, 2, 0, 0, 0, // ":path" is 5 bytes, "/a" is 2
        1, 0, 0, 0, 0, 0, 0, 0, // "x" is 1 byte, "" is 0
        b':', b'p', b'a', b't', b'h', 0, // key 1 + NUL
        b'/', b'a', 0, // value 1 + NUL
        b'x', 0, // key 2 + NUL
        0, // empty value 2 + NUL
    ];

    const PAIRS: [(&str, &str); 2] = [(":path", "/a"), ("x", "")];

    #[test]
    fn pairs_serialize_exactly_as_the_spec_lays_out() {
        assert_eq!(serialize_pairs(&PAIRS), FIXTURE);
    }

    #[test]
    fn pairs_parse_the_fixture_back() {
        let parsed = deserialize_pairs(FIXTURE).unwrap();
        let expected: Vec<(&[u8], &[u8])> = PAIRS
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn an_empty_map_is_just_a_zero_count() {
        assert_eq!(serialize_pairs::<&str, &str>(&[]), [0, 0, 0, 0]);
        assert_eq!(deserialize_pairs(&[0, 0, 0, 0]), Some(Vec::new()));
        assert_eq!(deserialize_pairs(&[]), Some(Vec::new()));
    }

    #[test]
    fn pairs_refuse_truncated_or_unterminated_input() {
        assert_eq!(deserialize_pairs(&FIXTURE[..FIXTURE.len() - 1]), None);
        let mut no_nul = FIXTURE.to_vec();
        no_nul[25] = b'!'; // the NUL after ":path"
        assert_eq!(deserialize_pairs(&no_nul), None);
        assert_eq!(deserialize_pairs(&[9, 0, 0, 0]), None);
        // A count whose size table overflows never allocates or panics.
        assert_eq!(deserialize_pairs(&[0xff, 0xff, 0xff, 0xff]), None);
    }
}
