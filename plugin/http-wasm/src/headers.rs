//! Header access for the core over the host: one `get_header_names` per phase (made at the
//! phase's first lookup, none when it asks for no header) says which headers exist, matched
//! once against the names the phase may ask for by integer keys, so only present headers cost
//! a `get_header_values` call and a lookup is a bit test.

use gatetrace_abi::http_wasm::{HeaderKind, nul_terminated};
use gatetrace_core::exchange::HeaderLookup;

use crate::host::{Buf, Host};

/// A header name packed into integers, so matching names needs no byte comparison: for names
/// of up to 16 bytes the first and last eight bytes cover every byte, so equal keys mean equal
/// names; longer names (a long configured request id header) also compare their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NameKey {
    len: usize,
    head: u64,
    tail: u64,
}

impl NameKey {
    fn of(name: &[u8]) -> Self {
        // One load for eight bytes; a short name folds its bytes (no memcpy call in wasm).
        let word = |bytes: &[u8]| match <[u8; 8]>::try_from(bytes) {
            Ok(eight) => u64::from_le_bytes(eight),
            Err(_) => bytes.iter().fold(0, |word, &b| (word << 8) | u64::from(b)),
        };
        Self {
            len: name.len(),
            head: word(&name[..name.len().min(8)]),
            tail: word(&name[name.len().saturating_sub(8)..]),
        }
    }

    /// Whether `self` (the key of `name`) is the key of `other` and both are the same name.
    fn matches(self, name: &[u8], other: Self, other_name: &[u8]) -> bool {
        self == other && (self.len <= 16 || name == other_name)
    }
}

/// The header names a phase may ask for (lowercase), keyed once per instance.
#[derive(Debug)]
pub struct WantedNames {
    names: Vec<(NameKey, String)>,
    /// Bit `n` set when a wanted name is `n` bytes long (names of 64 bytes or more set none and
    /// are always compared): most headers a request carries are skipped by length alone.
    lengths: u64,
}

impl WantedNames {
    /// Keys `names` (lowercase); a lookup of the first 64 is a bit test.
    pub fn new<'n>(names: impl IntoIterator<Item = &'n str>) -> Self {
        let names: Vec<_> = names
            .into_iter()
            .map(|n| (NameKey::of(n.as_bytes()), n.to_owned()))
            .collect();
        let lengths = names
            .iter()
            .filter(|(k, _)| k.len < 64)
            .fold(0u64, |mask, (k, _)| mask | 1 << k.len);
        let long = names.iter().any(|(k, _)| k.len >= 64);
        Self {
            names,
            lengths: if long { u64::MAX } else { lengths },
        }
    }

    fn position(&self, key: NameKey, name: &[u8]) -> Option<usize> {
        if key.len < 64 && self.lengths & (1 << key.len) == 0 {
            return None;
        }
        self.names
            .iter()
            .position(|(k, n)| key.matches(name, *k, n.as_bytes()))
    }
}

/// The core's [`HeaderLookup`] over the host for one phase: the host's NUL-terminated name
/// list of `kind` is fetched at the first lookup (a phase that asks for no header makes no
/// call) and matched once against `wanted`.
pub struct HostHeaders<'a, H> {
    host: &'a mut H,
    kind: HeaderKind,
    names: &'a mut Buf,
    wanted: &'a WantedNames,
    /// Bit `i`: `wanted[i]` is among the names (for the first 64 wanted names); `None` until
    /// the names are fetched.
    present: Option<u64>,
    value: &'a mut Buf,
}

impl<'a, H: Host> HostHeaders<'a, H> {
    /// A lookup of headers `kind`, names fetched into `names` when first needed, values read
    /// into `value`.
    pub fn new(
        host: &'a mut H,
        kind: HeaderKind,
        names: &'a mut Buf,
        wanted: &'a WantedNames,
        value: &'a mut Buf,
    ) -> Self {
        Self {
            host,
            kind,
            names,
            wanted,
            present: None,
            value,
        }
    }

    /// The presence bits, fetching the names (one `get_header_names`) the first time.
    fn presence(&mut self) -> u64 {
        if let Some(present) = self.present {
            return present;
        }
        self.host.header_names(self.kind, self.names);
        let mut present = 0u64;
        for name in nul_terminated(self.names.bytes()) {
            if let Some(i) = self.wanted.position(NameKey::of(name), name)
                && i < 64
            {
                present |= 1 << i;
            }
        }
        self.present = Some(present);
        present
    }

    fn present(&mut self, name: &str) -> bool {
        let present = self.presence();
        let key = NameKey::of(name.as_bytes());
        match self.wanted.position(key, name.as_bytes()) {
            Some(i) if i < 64 => present & (1 << i) != 0,
            // A name outside the list (or past 64): scan the host's list.
            _ => nul_terminated(self.names.bytes())
                .any(|n| key.matches(name.as_bytes(), NameKey::of(n), n)),
        }
    }

    /// The first value of `name` copied into `out` (it must outlive this lookup).
    pub fn first<'b>(&mut self, name: &str, out: &'b mut Buf) -> Option<&'b [u8]> {
        if !self.present(name) {
            return None;
        }
        self.host.header_values(self.kind, name.as_bytes(), out);
        let first = nul_terminated(out.bytes()).next()?.len();
        Some(&out.bytes()[..first])
    }
}

impl<H: Host> HeaderLookup for HostHeaders<'_, H> {
    fn each_value(&mut self, name: &str, visit: &mut dyn FnMut(&[u8])) {
        if !self.present(name) {
            return;
        }
        self.host
            .header_values(self.kind, name.as_bytes(), self.value);
        for value in nul_terminated(self.value.bytes()) {
            visit(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::FakeHost;

    #[test]
    fn name_keys_tell_names_apart_without_comparing_bytes_up_to_16_and_with_beyond() {
        let key = |n: &str| NameKey::of(n.as_bytes());
        let same = |a: &str, b: &str| key(a).matches(a.as_bytes(), key(b), b.as_bytes());
        // Same length, same first eight bytes: the tail word differs.
        assert!(!same("x-forwarded-host", "x-forwarded-port"));
        // Same length, same last eight bytes: the head word differs.
        assert!(!same("content-length", "xontent-length"));
        assert!(same("traceparent", "traceparent"));
        assert!(!same("", "a"));
        assert!(same("", ""));
        // Over 16 bytes the middle is not in the key: the bytes decide.
        let (a, b) = ("x-aaaaaaaa-1-bbbbbbbb", "x-aaaaaaaa-2-bbbbbbbb");
        assert_eq!(key(a), key(b));
        assert!(!same(a, b));
        assert!(same(a, a));
    }

    #[test]
    fn header_presence_is_one_pass_and_names_outside_the_list_still_resolve() {
        let mut host = FakeHost::new("{}");
        host.request = vec![
            ("accept".into(), b"*/*".to_vec()),
            ("x-other".into(), b"1".to_vec()),
            ("accept".into(), b"text/html".to_vec()),
        ];
        let (mut names, mut value) = (Buf::default(), Buf::default());
        let wanted = WantedNames::new(["host", "accept", "upgrade"]);
        let mut lookup = HostHeaders::new(
            &mut host,
            HeaderKind::Request,
            &mut names,
            &wanted,
            &mut value,
        );
        assert_eq!(lookup.present, None, "no call before the first lookup");
        let mut seen = Vec::new();
        for name in ["host", "accept", "upgrade", "x-other", "x-absent"] {
            lookup.each_value(name, &mut |v| seen.push((name, v.to_vec())));
        }
        assert_eq!(
            seen,
            [
                ("accept", b"*/*".to_vec()),
                ("accept", b"text/html".to_vec()),
                ("x-other", b"1".to_vec()),
            ]
        );
        // One names call, then only present headers cost a values call.
        assert_eq!(
            host.calls,
            ["get_header_names", "get_header_values", "get_header_values"]
        );
    }
}
