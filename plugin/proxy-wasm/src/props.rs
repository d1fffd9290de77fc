//! Host differences: Envoy answers integer properties as 8-byte little-endian values, Kong
//! (ngx_wasm_module) as decimal text; and which proxy-wasm host this is, by probing properties.

use gatetrace_core::record::HostKind;

/// A property path only Kong answers (ngx_wasm_module exposes nginx variables as `ngx.*`).
pub const KONG_PROBE: &[&str] = &["ngx", "hostname"];
/// The request start time: 8 little-endian bytes (ns) on Envoy, decimal text on Kong.
pub const TIME_PROBE: &[&str] = &["request", "time"];

/// Identifies the host from inside a request (where `request.time` exists): Kong if it
/// answers `ngx.hostname` or gives `request.time` as text, Envoy if it gives it as 8 binary
/// bytes, else an unnamed proxy-wasm host.
pub fn host_kind(mut property: impl FnMut(&[&str]) -> Option<Vec<u8>>) -> HostKind {
    if property(KONG_PROBE).is_some_and(|v| !v.is_empty()) {
        return HostKind::Kong;
    }
    match property(TIME_PROBE) {
        Some(raw) if is_decimal_text(&raw) => HostKind::Kong,
        Some(raw) if raw.len() == 8 => HostKind::Envoy,
        _ => HostKind::ProxyWasm,
    }
}

/// `123`, `1700000000.123`: digits with at most one dot.
fn is_decimal_text(raw: &[u8]) -> bool {
    !raw.is_empty()
        && raw.iter().all(|b| b.is_ascii_digit() || *b == b'.')
        && raw.iter().filter(|b| **b == b'.').count() <= 1
        && raw.iter().any(u8::is_ascii_digit)
}

/// Decodes an integer property such as `response.code`: Envoy's 8-byte little-endian form,
/// or decimal text (Kong and others). A host that is not Envoy may still send 8 raw bytes:
/// text is tried first there, binary first on Envoy.
#[must_use]
pub fn decode_u64(raw: &[u8], host: HostKind) -> Option<u64> {
    let binary = || -> Option<u64> { Some(u64::from_le_bytes(raw.try_into().ok()?)) };
    let text = || -> Option<u64> {
        let s = std::str::from_utf8(raw).ok()?.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if host == HostKind::Envoy {
        binary().or_else(text)
    } else {
        text().or_else(binary)
    }
}

/// An HTTP status from `:status` or `response.code`, if it is a valid status (100–999).
#[must_use]
pub fn decode_status(raw: &[u8], host: HostKind) -> Option<u16> {
    decode_u64(raw, host)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (100..=999).contains(n))
}

/// An HTTP status from a header (`:status`), which is always decimal text.
#[must_use]
pub fn status_header(raw: &[u8]) -> Option<u16> {
    decode_status(raw, HostKind::Kong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_ints_are_little_endian_and_kong_ints_are_text() {
        assert_eq!(
            decode_u64(&200u64.to_le_bytes(), HostKind::Envoy),
            Some(200)
        );
        assert_eq!(decode_u64(b"200", HostKind::Kong), Some(200));
        assert_eq!(
            decode_u64(b"200", HostKind::Envoy),
            Some(200),
            "text fallback"
        );
        // Eight ASCII digits are text on Kong, binary on Envoy.
        assert_eq!(decode_u64(b"12345678", HostKind::Kong), Some(12_345_678));
        assert_eq!(
            decode_u64(b"12345678", HostKind::Envoy),
            Some(u64::from_le_bytes(*b"12345678"))
        );
        assert_eq!(decode_u64(b"", HostKind::Kong), None);
        assert_eq!(decode_u64(b"-1", HostKind::Kong), None);
        assert_eq!(decode_u64(b"2x0", HostKind::ProxyWasm), None);
    }

    #[test]
    fn statuses_must_be_plausible() {
        assert_eq!(decode_status(b"503", HostKind::Kong), Some(503));
        assert_eq!(
            decode_status(&404u64.to_le_bytes(), HostKind::Envoy),
            Some(404)
        );
        assert_eq!(decode_status(b"0", HostKind::Kong), None);
        assert_eq!(
            decode_status(&70_000u64.to_le_bytes(), HostKind::Envoy),
            None
        );
        assert_eq!(status_header(b"201"), Some(201));
        assert_eq!(status_header(b"ok"), None);
    }

    #[test]
    fn host_kind_by_probes() {
        let none = |_: &[&str]| None;
        assert_eq!(host_kind(none), HostKind::ProxyWasm);
        let kong = |p: &[&str]| (p == KONG_PROBE).then(|| b"node-1".to_vec());
        assert_eq!(host_kind(kong), HostKind::Kong);
        let kong_time = |p: &[&str]| (p == TIME_PROBE).then(|| b"1700000000.123".to_vec());
        assert_eq!(host_kind(kong_time), HostKind::Kong);
        let envoy = |p: &[&str]| (p == TIME_PROBE).then(|| 1_700_000_000u64.to_le_bytes().to_vec());
        assert_eq!(host_kind(envoy), HostKind::Envoy);
        let odd = |p: &[&str]| (p == TIME_PROBE).then(|| b"soon".to_vec());
        assert_eq!(host_kind(odd), HostKind::ProxyWasm);
    }
}
