//! proxy-wasm 0.2.1 header map serialization: a u32 count, then a (u32 key length,
//! u32 value length) pair per entry, then every key and value each followed by a NUL byte.

/// Serializes pairs in the spec's layout (little-endian lengths).
#[must_use]
pub fn serialize(pairs: &[(String, String)]) -> Vec<u8> {
    let data: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + data);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Parses the spec's layout; `None` when lengths run past the end or a NUL is missing.
/// An empty input is an empty map (guests pass a null/empty buffer for "no headers").
#[must_use]
pub fn deserialize(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = word(0)?;
    let mut sizes = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        sizes.push((word(4 + i * 8)?, word(8 + i * 8)?));
    }
    let mut at = 4 + count * 8;
    let mut take = |len: usize| -> Option<String> {
        let text = bytes.get(at..at + len)?;
        if *bytes.get(at + len)? != 0 {
            return None;
        }
        at += len + 1;
        Some(String::from_utf8_lossy(text).into_owned())
    };
    let mut pairs = Vec::with_capacity(sizes.len());
    for (k, v) in sizes {
        let key = take(k)?;
        let value = take(v)?;
        pairs.push((key, value));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn pairs() -> Vec<(String, String)> {
        vec![(":path".into(), "/a".into()), ("x".into(), String::new())]
    }

    #[test]
    fn serializes_exactly_as_the_spec_lays_out() {
        assert_eq!(serialize(&pairs()), FIXTURE);
    }

    #[test]
    fn parses_the_fixture_back() {
        assert_eq!(deserialize(FIXTURE), Some(pairs()));
    }

    #[test]
    fn empty_map_is_just_a_zero_count() {
        assert_eq!(serialize(&[]), [0, 0, 0, 0]);
        assert_eq!(deserialize(&[0, 0, 0, 0]), Some(vec![]));
        assert_eq!(deserialize(&[]), Some(vec![]));
    }

    #[test]
    fn rejects_truncated_or_unterminated_input() {
        assert_eq!(deserialize(&FIXTURE[..FIXTURE.len() - 1]), None);
        let mut no_nul = FIXTURE.to_vec();
        no_nul[25] = b'!'; // the NUL after ":path"
        assert_eq!(deserialize(&no_nul), None);
        assert_eq!(deserialize(&[9, 0, 0, 0]), None);
    }
}
