//! Lowercase hex, the only case W3C Trace Context and the record allow: encoding ids into
//! fixed buffers without allocating, and strict decoding that refuses uppercase.
//!
//! Hand-written rather than the `hex` crate: that crate decodes both cases (a `traceparent`
//! with uppercase hex must be refused), and these 50 lines run on every request.

/// The sixteen lowercase hex digits, by value.
pub(crate) const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out` (which must be twice as long).
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        out[2 * i] = HEX_DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = HEX_DIGITS[usize::from(b & 0x0f)];
    }
}

/// Lowercase hex of `bytes` as a new string.
pub(crate) fn hex_string(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex_into(bytes, &mut out);
    // Hex digits are ASCII, so this never fails.
    String::from_utf8(out).unwrap_or_default()
}

/// Parses exactly `out.len() * 2` lowercase hex digits.
pub(crate) fn parse_lower_hex(text: &[u8], out: &mut [u8]) -> bool {
    if text.len() != out.len() * 2 {
        return false;
    }
    let mut bad = 0u8;
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let hi = LOWER_HEX_VALUE[usize::from(pair[0])];
        let lo = LOWER_HEX_VALUE[usize::from(pair[1])];
        bad |= (hi | lo) & INVALID;
        out[i] = (hi << 4) | (lo & 0x0f);
    }
    bad == 0
}

const INVALID: u8 = 0x80;

/// Value of each byte as a lowercase hex digit, [`INVALID`] for every other byte.
const LOWER_HEX_VALUE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let mut out = [0u8; 4];
        assert!(parse_lower_hex(b"00ff10ab", &mut out));
        assert_eq!(out, [0, 0xff, 0x10, 0xab]);
        assert_eq!(hex_string(&out), "00ff10ab");
        assert!(!parse_lower_hex(b"00FF10ab", &mut out));
        assert!(!parse_lower_hex(b"00ff10a", &mut out));
        for b in 0..=255u8 {
            let valid = b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
            assert_eq!(parse_lower_hex(&[b'0', b], &mut out[..1]), valid, "{b}");
        }
    }
}
