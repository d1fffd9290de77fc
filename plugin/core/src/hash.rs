//! SipHash-2-4 with 128-bit output, written out here so ids and session hashes are the same
//! on every target and every compiler version (std's hasher makes no such promise).

/// A streaming SipHash-2-4 hasher with a 128-bit key and 128-bit output.
#[derive(Debug, Clone)]
pub(crate) struct Sip128 {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
    tail: u64,
    tail_len: usize,
    total_len: u64,
}

impl Sip128 {
    pub(crate) fn new(k0: u64, k1: u64) -> Self {
        Self {
            v0: k0 ^ 0x736f_6d65_7073_6575,
            v1: k1 ^ 0x646f_7261_6e64_6f6d ^ 0xee,
            v2: k0 ^ 0x6c79_6765_6e65_7261,
            v3: k1 ^ 0x7465_6462_7974_6573,
            tail: 0,
            tail_len: 0,
            total_len: 0,
        }
    }

    #[inline]
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    #[inline]
    fn compress(&mut self, m: u64) {
        self.v3 ^= m;
        self.round();
        self.round();
        self.v0 ^= m;
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        self.total_len = self.total_len.wrapping_add(bytes.len() as u64);
        let mut rest = bytes;
        if self.tail_len > 0 {
            while self.tail_len < 8 {
                let Some((&b, more)) = rest.split_first() else {
                    return;
                };
                self.tail |= u64::from(b) << (8 * self.tail_len);
                self.tail_len += 1;
                rest = more;
            }
            let m = self.tail;
            self.compress(m);
            self.tail = 0;
            self.tail_len = 0;
        }
        let mut chunks = rest.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.compress(u64::from_le_bytes(word));
        }
        for (i, &b) in chunks.remainder().iter().enumerate() {
            self.tail |= u64::from(b) << (8 * i);
        }
        self.tail_len = chunks.remainder().len();
    }

    pub(crate) fn write_u64(&mut self, n: u64) {
        self.write(&n.to_le_bytes());
    }

    pub(crate) fn finish128(mut self) -> (u64, u64) {
        let b = ((self.total_len & 0xff) << 56) | self.tail;
        self.compress(b);
        self.v2 ^= 0xee;
        for _ in 0..4 {
            self.round();
        }
        let low = self.v0 ^ self.v1 ^ self.v2 ^ self.v3;
        self.v1 ^= 0xdd;
        for _ in 0..4 {
            self.round();
        }
        let high = self.v0 ^ self.v1 ^ self.v2 ^ self.v3;
        (low, high)
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
            assert_eq!(two.finish128(), one.clone().finish128(), "split at {split}");
        }
    }
}
