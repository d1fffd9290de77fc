//! Request ids, trace ids and span ids made from a per-instance salt, a per-instance counter,
//! caller-passed entropy and the wall clock — unique even where every instance's "random"
//! bytes and clock are identical (Traefik's WASI) — and the policy for an incoming request id.

use crate::hash::Sip128;
use crate::hex::hex_into;
use crate::trace::{SpanId, TraceId};

/// Default longest incoming request id the `validate` policy keeps.
pub const DEFAULT_REQUEST_ID_MAX_LENGTH: usize = 128;
/// Length of a generated request id: 32 lowercase hex characters.
pub const GENERATED_REQUEST_ID_LEN: usize = 32;

/// What to do with a request id that arrives on the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestIdPolicy {
    /// Keep any incoming id that is not hostile (non-empty, printable ASCII, ≤ max length).
    Trust,
    /// Always generate a new id.
    Replace,
    /// Keep an incoming id only when it is `[A-Za-z0-9._:-]{1,max}`; otherwise generate.
    #[default]
    Validate,
}

impl RequestIdPolicy {
    /// The config spelling of this policy.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trust => "trust",
            Self::Replace => "replace",
            Self::Validate => "validate",
        }
    }
}

/// Whether an incoming request id may be kept under `policy` with at most `max_length` bytes.
///
/// `Trust` still refuses hostile values (empty, too long, control characters, non-ASCII,
/// quotes, backslashes), since the id is copied into records, logs and upstream headers, and
/// commas (a host that joins repeated headers would otherwise keep a list as one id).
#[must_use]
pub fn accept_incoming_request_id(
    value: &[u8],
    policy: RequestIdPolicy,
    max_length: usize,
) -> bool {
    if value.is_empty() || value.len() > max_length {
        return false;
    }
    match policy {
        RequestIdPolicy::Replace => false,
        RequestIdPolicy::Trust => value
            .iter()
            .all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b',')),
        RequestIdPolicy::Validate => value
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')),
    }
}

/// The incoming request id from the id header's values, pushed one at a time as the host
/// hands them over: the first value when the policy accepts it
/// ([`accept_incoming_request_id`]) and the header came once; otherwise `None` (a new id is
/// generated).
#[derive(Debug, Clone)]
pub struct IncomingRequestId {
    policy: RequestIdPolicy,
    max_length: usize,
    /// The first value, when kept (`Some(None)`: it came and was refused).
    first: Option<Option<String>>,
    repeated: bool,
}

impl IncomingRequestId {
    /// Nothing pushed yet; `policy` and `max_length` as configured.
    #[must_use]
    pub fn new(policy: RequestIdPolicy, max_length: usize) -> Self {
        Self {
            policy,
            max_length,
            first: None,
            repeated: false,
        }
    }

    /// Adds one header value (only the first is looked at).
    pub fn push(&mut self, value: &[u8]) {
        if self.first.is_some() {
            self.repeated = true;
            return;
        }
        let kept = accept_incoming_request_id(value, self.policy, self.max_length)
            .then(|| core::str::from_utf8(value).ok().map(str::to_string))
            .flatten();
        self.first = Some(kept);
    }

    /// The id to keep, if any.
    #[must_use]
    pub fn finish(self) -> Option<String> {
        if self.repeated {
            None
        } else {
            self.first.flatten()
        }
    }
}

/// The ids generated for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratedIds {
    /// 16 bytes, rendered as 32 lowercase hex characters by [`GeneratedIds::request_id_hex`].
    pub request_id: [u8; 16],
    /// A new trace id (used when the request starts a trace). Never all zero.
    pub trace_id: TraceId,
    /// The gateway's span id for this request. Never all zero.
    pub span_id: SpanId,
}

impl GeneratedIds {
    /// The request id as 32 lowercase hex characters.
    #[must_use]
    pub fn request_id_hex(&self) -> [u8; GENERATED_REQUEST_ID_LEN] {
        let mut out = [0u8; GENERATED_REQUEST_ID_LEN];
        hex_into(&self.request_id, &mut out);
        out
    }
}

/// One plugin instance's id generator: a key derived from the instance salt, and a counter.
///
/// The salt must differ between instances that may run at the same time. The adapter supplies
/// it, e.g. the offset an instance got from one `O_APPEND` write to the spool's claim file
/// (unique per host, from the kernel), the wall clock at instance start, and a hash of the
/// host name (unique across hosts).
#[derive(Debug, Clone)]
pub struct Instance {
    k0: u64,
    k1: u64,
    counter: u64,
}

impl Instance {
    /// A generator keyed by `salt` (any number of words; all of them matter).
    #[must_use]
    pub fn new(salt: &[u64]) -> Self {
        let mut hasher = Sip128::new(0x6761_7465_7472_6163, 0x652d_696e_7374_616e);
        hasher.write_u64(salt.len() as u64);
        for &word in salt {
            hasher.write_u64(word);
        }
        let (k0, k1) = hasher.finish128();
        Self { k0, k1, counter: 0 }
    }

    /// A stable 64-bit hash of a host name (or any text), for use as a salt word.
    #[must_use]
    pub fn salt_word(text: &[u8]) -> u64 {
        let mut hasher = Sip128::new(0x686f_7374, 0x6e61_6d65);
        hasher.write(text);
        hasher.finish128().0
    }

    /// How many requests this instance has generated ids for.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.counter
    }

    /// Ids for the next request. `entropy` is whatever random bytes the host offers (may be
    /// empty or identical everywhere); `now_unix_ns` is the wall clock.
    pub fn next_ids(&mut self, now_unix_ns: u64, entropy: &[u8]) -> GeneratedIds {
        self.counter = self.counter.wrapping_add(1);
        let mut hasher = Sip128::new(self.k0, self.k1);
        // Counter and clock in one write (the same hash as two: the input is one stream).
        let mut words = [0u8; 16];
        words[..8].copy_from_slice(&self.counter.to_le_bytes());
        words[8..].copy_from_slice(&now_unix_ns.to_le_bytes());
        hasher.write(&words);
        if !entropy.is_empty() {
            hasher.write(entropy);
        }
        let (a, b) = hasher.finish128();

        // The trace id is a bijection of the 128 hashed bits, so it is unique exactly when
        // the request id is; the span id folds them to 64 bits.
        let mut request_id = [0u8; 16];
        request_id[..8].copy_from_slice(&a.to_be_bytes());
        request_id[8..].copy_from_slice(&b.to_be_bytes());
        let mut trace = [0u8; 16];
        trace[..8].copy_from_slice(&mix64(a ^ 0x7472_6163_655f_6869).to_be_bytes());
        trace[8..].copy_from_slice(&mix64(b ^ 0x7472_6163_655f_6c6f).to_be_bytes());
        if trace == [0u8; 16] {
            trace[15] = 1;
        }
        let span = mix64(a.rotate_left(32) ^ b ^ 0x7370_616e_5f69_6421).max(1);
        GeneratedIds {
            request_id,
            trace_id: TraceId(trace),
            span_id: SpanId(span.to_be_bytes()),
        }
    }
}

/// A bijective 64-bit finaliser (SplitMix64's): every output bit depends on every input bit.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const INSTANCES: u64 = 100;
    const REQUESTS: usize = 10_000;

    /// Generates ids for `INSTANCES` instances with the same clock and entropy, differing only
    /// through `salt_of`, and counts duplicates of each id kind.
    fn duplicates(salt_of: impl Fn(u64) -> Vec<u64>) -> (usize, usize, usize) {
        let entropy = [0x42u8; 16];
        let now = 1_700_000_000_000_000_000u64;
        let capacity = (INSTANCES as usize) * REQUESTS;
        let mut request_ids = HashSet::with_capacity(capacity);
        let mut trace_ids = HashSet::with_capacity(capacity);
        let mut span_ids = HashSet::with_capacity(capacity);
        let (mut dup_req, mut dup_trace, mut dup_span) = (0, 0, 0);
        for instance in 0..INSTANCES {
            let mut generator = Instance::new(&salt_of(instance));
            for _ in 0..REQUESTS {
                let ids = generator.next_ids(now, &entropy);
                dup_req += usize::from(!request_ids.insert(ids.request_id));
                dup_trace += usize::from(!trace_ids.insert(ids.trace_id));
                dup_span += usize::from(!span_ids.insert(ids.span_id));
            }
        }
        (dup_req, dup_trace, dup_span)
    }

    #[test]
    fn instances_differing_only_in_salt_never_collide() {
        // Salt as a Traefik adapter builds it: claim-file offset, start clock, host hash.
        let host = Instance::salt_word(b"node-1");
        let found = duplicates(|i| vec![i * 8, 1_700_000_000_000_000_000, host]);
        assert_eq!(found, (0, 0, 0));
    }

    #[test]
    fn without_a_distinct_salt_ids_do_collide() {
        // The same experiment with every instance given the same salt: this is why the salt
        // is needed, and proves the test above can fail.
        let (dup_req, dup_trace, dup_span) = duplicates(|_| vec![7, 7, 7]);
        let expected = (INSTANCES as usize - 1) * REQUESTS;
        assert_eq!(dup_req, expected);
        assert_eq!(dup_trace, expected);
        assert_eq!(dup_span, expected);
    }

    #[test]
    fn ids_change_with_counter_clock_and_entropy() {
        let mut generator = Instance::new(&[1]);
        let first = generator.next_ids(5, b"x");
        let second = generator.next_ids(5, b"x");
        assert_ne!(first, second);
        assert_eq!(generator.requests(), 2);
        let mut a = Instance::new(&[1]);
        let mut b = Instance::new(&[1]);
        assert_ne!(a.next_ids(5, b"x"), b.next_ids(6, b"x"));
        let mut a = Instance::new(&[1]);
        let mut b = Instance::new(&[1]);
        assert_ne!(a.next_ids(5, b"x"), b.next_ids(5, b"y"));
    }

    #[test]
    fn generated_ids_are_hex_and_never_zero() {
        let mut generator = Instance::new(&[]);
        for _ in 0..1000 {
            let ids = generator.next_ids(0, &[]);
            let hex = ids.request_id_hex();
            assert!(
                hex.iter()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert!(ids.trace_id.is_valid());
            assert!(ids.span_id.is_valid());
        }
    }

    #[test]
    fn validate_policy_keeps_only_safe_ids() {
        let max = DEFAULT_REQUEST_ID_MAX_LENGTH;
        let v = RequestIdPolicy::Validate;
        assert!(accept_incoming_request_id(b"abc-123_x.y:z", v, max));
        assert!(accept_incoming_request_id(&[b'a'; 128], v, max));
        assert!(!accept_incoming_request_id(&[b'a'; 129], v, max));
        assert!(!accept_incoming_request_id(&[b'a'; 10_240], v, max));
        assert!(!accept_incoming_request_id(b"", v, max));
        for hostile in [
            &b"a\"b"[..],
            b"a b",
            b"a\nb",
            b"a\0b",
            b"{\"x\":1}",
            b"a\\b",
            "caf\u{e9}".as_bytes(),
            b"\xff\xfe",
            b"a/b",
        ] {
            assert!(!accept_incoming_request_id(hostile, v, max), "{hostile:?}");
        }
    }

    #[test]
    fn trust_policy_still_refuses_hostile_ids() {
        let t = RequestIdPolicy::Trust;
        assert!(accept_incoming_request_id(b"a/b+c=", t, 128));
        assert!(!accept_incoming_request_id(b"a\"b", t, 128));
        assert!(!accept_incoming_request_id(b"a\\b", t, 128));
        assert!(!accept_incoming_request_id(b"a,b", t, 128));
        assert!(!accept_incoming_request_id(b"a b", t, 128));
        assert!(!accept_incoming_request_id(b"a\x7fb", t, 128));
        assert!(!accept_incoming_request_id(&[b'a'; 10_240], t, 128));
        assert!(!accept_incoming_request_id("\u{e9}".as_bytes(), t, 128));
    }

    #[test]
    fn ids_are_the_same_on_every_build() {
        // Pinned outputs: a build (or a SipHash implementation) that changed them would make
        // other ids for the same salt, clock and entropy.
        assert_eq!(Instance::salt_word(b"node-1"), 15_363_623_078_475_222_552);
        let mut instance = Instance::new(&[1, 2, 3]);
        let ids = instance.next_ids(1_700_000_000_000_000_000, b"entropy, 17 bytes");
        assert_eq!(
            crate::hex::hex_string(&ids.request_id),
            "0a514c559091749677d25371d07b8ab6"
        );
        assert_eq!(ids.trace_id.to_hex(), "2b2d26af8168be97e8a833726628f64e");
        assert_eq!(ids.span_id.to_hex(), "53fc20ea74daefa8");
    }

    #[test]
    fn an_id_sent_twice_is_replaced() {
        let incoming = |values: &[&[u8]]| {
            let mut id = IncomingRequestId::new(RequestIdPolicy::Validate, 128);
            for value in values {
                id.push(value);
            }
            id.finish()
        };
        assert_eq!(incoming(&[b"req-1"]).as_deref(), Some("req-1"));
        assert_eq!(incoming(&[b"req-1", b"req-2"]), None);
        assert_eq!(incoming(&[b"bad id"]), None);
        assert_eq!(incoming(&[]), None);
    }

    #[test]
    fn replace_policy_refuses_everything() {
        assert!(!accept_incoming_request_id(
            b"abc",
            RequestIdPolicy::Replace,
            128
        ));
    }
}
