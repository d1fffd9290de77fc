//! SipHash-2-4 with 128-bit output (crate `siphasher`), keyed per use, for ids and session
//! hashes that are the same on every target and compiler version (std's hasher promises
//! neither). Words are hashed as little-endian bytes, whatever the target.

use core::hash::Hasher as _;

use siphasher::sip128::{Hasher128 as _, SipHasher24};

/// A streaming SipHash-2-4 hasher with a 128-bit key and 128-bit output.
#[derive(Debug, Clone)]
pub(crate) struct Sip128(SipHasher24);

impl Sip128 {
    pub(crate) fn new(k0: u64, k1: u64) -> Self {
        Self(SipHasher24::new_with_keys(k0, k1))
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    pub(crate) fn write_u64(&mut self, n: u64) {
        self.0.write(&n.to_le_bytes());
    }

    /// The hash as (first, second) 64-bit halves, each read little-endian.
    pub(crate) fn finish128(&self) -> (u64, u64) {
        let hash = self.0.finish128();
        (hash.h1, hash.h2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference vectors of SipHash-2-4 with 128-bit output (the authors' `vectors.h`),
    /// key 00..0f, message 00..(n-1).
    #[test]
    fn matches_reference_vectors() {
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let expect_empty: [u8; 16] = [
            0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55,
            0x02, 0x93,
        ];
        let (lo, hi) = Sip128::new(k0, k1).finish128();
        let mut got = [0u8; 16];
        got[..8].copy_from_slice(&lo.to_le_bytes());
        got[8..].copy_from_slice(&hi.to_le_bytes());
        assert_eq!(got, expect_empty);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..=255u8).collect();
        let mut one = Sip128::new(7, 9);
        one.write(&data);
        for split in [0, 1, 3, 7, 8, 9, 100, 255] {
            let mut two = Sip128::new(7, 9);
            two.write(&data[..split]);
            two.write(&data[split..]);
            assert_eq!(two.finish128(), one.finish128(), "split at {split}");
        }
    }
}
