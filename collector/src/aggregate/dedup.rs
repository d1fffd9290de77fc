//! Duplicate-batch memory: which `(source, sequence)` pairs of `POST /v1/records` were already
//! taken, bounded per source (a sliding window of sequences) and in sources (least recent
//! forgotten). It is part of the checkpointed state.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Duplicate-batch memory for one source: the highest sequence taken and which of the
/// `WINDOW` sequences below it were taken too.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct SourceWindow {
    max: u64,
    seen: u128,
    last_used: u64,
}

const WINDOW: u64 = 128;

/// Bounded memory of `(source, sequence)` pairs already taken.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Dedup {
    sources: HashMap<String, SourceWindow>,
    clock: u64,
}

impl Dedup {
    /// Marks `(source, seq)` taken; `false` when it already was (a duplicate).
    ///
    /// A sequence more than `WINDOW` below the highest one is taken as the source having
    /// restarted its numbering (a retry that old is not expected), so it is accepted.
    pub fn take(&mut self, source: &str, seq: u64, cap: usize) -> bool {
        self.clock += 1;
        let clock = self.clock;
        if let Some(w) = self.sources.get_mut(source) {
            w.last_used = clock;
            if seq > w.max {
                let shift = seq - w.max;
                w.seen = if shift >= WINDOW { 0 } else { w.seen << shift } | 1;
                w.max = seq;
                return true;
            }
            let back = w.max - seq;
            if back >= WINDOW {
                *w = SourceWindow {
                    max: seq,
                    seen: 1,
                    last_used: clock,
                };
                return true;
            }
            let bit = 1u128 << back;
            let fresh = w.seen & bit == 0;
            w.seen |= bit;
            return fresh;
        }
        if self.sources.len() >= cap
            && let Some(oldest) = self
                .sources
                .iter()
                .min_by_key(|(_, w)| w.last_used)
                .map(|(k, _)| k.clone())
        {
            self.sources.remove(&oldest);
        }
        self.sources.insert(
            source.to_owned(),
            SourceWindow {
                max: seq,
                seen: 1,
                last_used: clock,
            },
        );
        true
    }

    /// Sources remembered now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether no source is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_remembers_recent_sequences_per_source_and_forgets_the_oldest_source() {
        let mut d = Dedup::default();
        assert!(d.take("a", 5, 2));
        assert!(!d.take("a", 5, 2));
        assert!(d.take("a", 7, 2));
        assert!(d.take("a", 6, 2));
        assert!(!d.take("a", 6, 2));
        assert!(d.take("a", 1000, 2));
        // Far below the highest: the source restarted its numbering.
        assert!(d.take("a", 0, 2));
        assert!(d.take("b", 1, 2));
        assert!(d.take("c", 1, 2));
        assert_eq!(d.len(), 2);
        // "a" was least recently used and is forgotten.
        assert!(d.take("a", 0, 2));
    }
}
