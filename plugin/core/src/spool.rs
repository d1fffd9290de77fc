//! The spool format: how the Traefik plugin appends records to a shared directory and how
//! the collector reads, checkpoints and deletes them. Defined once, here, for both sides.
//!
//! Layout of a spool directory:
//! - `seg-<W>.ndjson`: records appended while the wall clock was in the window that starts
//!   at Unix second `W` (a multiple of [`SpoolLayout::window_secs`]). One `write` of one
//!   complete line per record, opened with `O_APPEND`, so lines from many instances never
//!   interleave. A writer writes only to the segment of the window its clock is in at the
//!   moment of the write; it may keep that segment open, and closes it before anything else
//!   once a record lands in a later window, so it never writes to an older segment.
//! - `claims-<G>`: the claim file of generation `G` (the UTC day of the wall clock,
//!   [`claim_generation`]); each plugin instance appends [`CLAIM_BYTES`] bytes once at start
//!   and uses the generation and the resulting file offset as its unique instance salt. The
//!   first claim of a generation removes the files of generations before the previous one
//!   ([`stale_claim_file`]), so the claim files hold about two days of instance starts.
//! - `drops-*` and `held-*`: each writer's count of records dropped and not yet reported, kept
//!   outside the writer so it survives the writer (the Traefik adapter's `drops` module says
//!   how); readers ignore them.
//!
//! A reader may delete a segment once it has read it to the end and the window closed more
//! than `grace_secs` ago ([`SpoolLayout::deletable`]); it truncates the segment before
//! unlinking it, so a handle an idle writer still holds pins no disk space. A writer entering window `W` first
//! looks for the segment `max_windows` windows back ([`SpoolLayout::full_probe`]): if it
//! still exists the reader is that far behind, the spool is full, and records are dropped
//! (and counted) until the next window. [`SpoolPlan`] is that decision as a pure state
//! machine; [`next_frame`] is the reader's line framing.

/// Name prefix of the claim files inside the spool directory (`claims-<generation>`).
const CLAIM_PREFIX: &str = "claims-";
/// The single claim file of versions before claim generations; stale once a generation starts.
const LEGACY_CLAIM_FILE: &str = "claims";
/// Bytes each instance appends to the claim file.
pub const CLAIM_BYTES: usize = 8;
/// Length of one claim generation, seconds (one UTC day).
pub const CLAIM_GENERATION_SECS: u64 = 86_400;
const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_SUFFIX: &str = ".ndjson";

/// Spool timing, shared by writer and reader (both read it from their configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLayout {
    /// Width of one segment's time window, seconds (≥ 1).
    pub window_secs: u64,
    /// How long after a window closes a reader must wait before deleting its segment.
    pub grace_secs: u64,
    /// How many windows back a still-present segment means "spool full" (≥ 2).
    pub max_windows: u64,
}

impl Default for SpoolLayout {
    fn default() -> Self {
        Self {
            window_secs: 10,
            grace_secs: 5,
            max_windows: 30,
        }
    }
}

impl SpoolLayout {
    /// Start (Unix seconds) of the window holding `unix_ns`.
    #[must_use]
    pub fn window_start(&self, unix_ns: u64) -> u64 {
        let secs = unix_ns / 1_000_000_000;
        secs - secs % self.window_secs.max(1)
    }

    /// The window whose segment, if it still exists, means the spool is full for a writer
    /// entering `window_start`. `None` early in the epoch (no such window).
    #[must_use]
    pub fn full_probe(&self, window_start: u64) -> Option<u64> {
        window_start.checked_sub(self.max_windows * self.window_secs.max(1))
    }

    /// Whether a fully read segment of `window_start` may be deleted at `now_unix_ns`.
    #[must_use]
    pub fn deletable(&self, window_start: u64, now_unix_ns: u64) -> bool {
        let closes = window_start + self.window_secs.max(1);
        now_unix_ns / 1_000_000_000 >= closes + self.grace_secs
    }
}

/// File name of the segment for the window starting at `window_start`.
#[must_use]
pub fn segment_name(window_start: u64) -> String {
    format!("{SEGMENT_PREFIX}{window_start}{SEGMENT_SUFFIX}")
}

/// The window start of a segment file name, or `None` for any other file.
#[must_use]
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The claim generation of wall clock `unix_ns`: the UTC day number.
#[must_use]
pub fn claim_generation(unix_ns: u64) -> u64 {
    unix_ns / 1_000_000_000 / CLAIM_GENERATION_SECS
}

/// File name of generation `generation`'s claim file.
#[must_use]
pub fn claim_file_name(generation: u64) -> String {
    format!("{CLAIM_PREFIX}{generation}")
}

/// Whether `name` is a claim file no instance claiming in generation `current` (or one still
/// finishing a claim begun in the previous generation) can append to any more: a generation
/// before `current - 1`, or the single `claims` file of earlier versions. Never true for a claim file
/// that a claim begun within the last day may still reach, so no salt is ever handed out twice.
#[must_use]
pub fn stale_claim_file(name: &str, current: u64) -> bool {
    if name == LEGACY_CLAIM_FILE {
        return true;
    }
    name.strip_prefix(CLAIM_PREFIX)
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u64>().ok())
        .is_some_and(|generation| generation.saturating_add(1) < current)
}

/// What the writer does with the next record, from [`SpoolPlan::plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendPlan {
    /// Append the line to the segment of `window` ([`segment_name`]).
    Append { window: u64 },
    /// Check whether the segment of `probe` exists, then call [`SpoolPlan::probed`].
    Probe { window: u64, probe: u64 },
    /// Drop the record; it has been counted.
    Drop,
}

/// The writer's plan, without I/O: which segment to append to, when to probe for a full
/// spool, and how many records were dropped since the last record written. The adapter's
/// appender carries it out.
#[derive(Debug, Clone)]
pub struct SpoolPlan {
    layout: SpoolLayout,
    window: Option<u64>,
    probe_pending: bool,
    full: bool,
    dropped: u64,
}

impl SpoolPlan {
    /// The plan of a writer that has not written yet.
    #[must_use]
    pub fn new(layout: SpoolLayout) -> Self {
        Self {
            layout,
            window: None,
            probe_pending: false,
            full: false,
            dropped: 0,
        }
    }

    /// The plan for a record written at `now_unix_ns` (the time of the append). Entering a
    /// new window asks for a probe first; a full spool drops (and counts) until the next
    /// window.
    pub fn plan(&mut self, now_unix_ns: u64) -> AppendPlan {
        let window = self.layout.window_start(now_unix_ns);
        if self.window != Some(window) {
            self.window = Some(window);
            self.full = false;
            self.probe_pending = self.layout.full_probe(window).is_some();
        }
        if self.probe_pending
            && let Some(probe) = self.layout.full_probe(window)
        {
            return AppendPlan::Probe { window, probe };
        }
        if self.full {
            self.dropped += 1;
            return AppendPlan::Drop;
        }
        AppendPlan::Append { window }
    }

    /// The probe's answer for `window`: whether the old segment still exists. Returns the
    /// final plan for the record that asked (`Append` or a counted `Drop`).
    pub fn probed(&mut self, window: u64, exists: bool) -> AppendPlan {
        if self.window == Some(window) {
            self.probe_pending = false;
            self.full = exists;
        }
        if exists {
            self.dropped += 1;
            AppendPlan::Drop
        } else {
            AppendPlan::Append { window }
        }
    }

    /// Records dropped since the last call; put it in the record about to be written.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// The append failed: the record is lost, and the drop count it carried is owed again.
    pub fn append_failed(&mut self, carried_dropped: u64) {
        self.dropped = self
            .dropped
            .saturating_add(carried_dropped)
            .saturating_add(1);
    }

    /// `reported` of the records counted here were reported by another writer (it adopted
    /// this writer's persisted count): they are no longer owed.
    pub fn forget(&mut self, reported: u64) {
        self.dropped = self.dropped.saturating_sub(reported);
    }

    /// Records dropped and not yet reported.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// How every record line starts (`v` is the record's first field).
const RECORD_START: &[u8] = b"{\"v\":";

/// Where the record in a spool `line` that is not a record itself starts, if it holds one
/// after other bytes: a write cut short by a full disk leaves part of a line without its
/// newline, and the next line another writer appends (it cannot know) joins that fragment.
/// The writer that cut its line counted it as dropped; the joined record is whole. A record
/// line begins with `{"v":`, which never occurs inside one (quotes in strings are escaped and
/// no nested object's first key is `v`), so the last occurrence after the first byte is where
/// the joined record starts. Readers count the bytes before it as one bad line.
#[must_use]
pub fn joined_record_start(line: &[u8]) -> Option<usize> {
    let from = 1;
    line.get(from..)?
        .windows(RECORD_START.len())
        .rposition(|w| w == RECORD_START)
        .map(|at| at + from)
}

/// One step of reading a segment from an offset, from [`next_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A complete line of `len` bytes (newline included) starts the buffer.
    Line { len: usize },
    /// A line longer than [`crate::record::MAX_LINE_BYTES`]: skip `len` bytes (through its
    /// newline when one is in the buffer) and count it as bad.
    Oversize { len: usize },
    /// No complete line yet: wait for more data (the writer's line may not have landed).
    Incomplete,
}

/// Frames the bytes read from a segment at the reader's offset. Read at least
/// [`crate::record::MAX_LINE_BYTES`] bytes at a time so oversize lines are recognised.
#[must_use]
pub fn next_frame(buf: &[u8]) -> Frame {
    let max = crate::record::MAX_LINE_BYTES;
    let window = &buf[..buf.len().min(max)];
    // memchr: a byte-by-byte search was a tenth of the spool tailer's CPU.
    if let Some(i) = memchr::memchr(b'\n', window) {
        return Frame::Line { len: i + 1 };
    }
    if buf.len() < max {
        return Frame::Incomplete;
    }
    let len = memchr::memchr(b'\n', &buf[max..]).map_or(buf.len(), |i| max + i + 1);
    Frame::Oversize { len }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_name(1_700_000_000), "seg-1700000000.ndjson");
        assert_eq!(
            parse_segment_name("seg-1700000000.ndjson"),
            Some(1_700_000_000)
        );
        for other in [
            "seg-.ndjson",
            "seg-12a.ndjson",
            "claims",
            "seg-1.ndjson.tmp",
            "seg--1.ndjson",
        ] {
            assert_eq!(parse_segment_name(other), None, "{other}");
        }
    }

    #[test]
    fn a_record_joined_to_another_writers_fragment_is_found() {
        use crate::record::Record;
        let mut whole = Vec::new();
        Record::example(1).write_ndjson_line(&mut whole);
        let mut second = Vec::new();
        Record::example(2).write_ndjson_line(&mut second);
        assert!(whole.starts_with(RECORD_START));
        assert_eq!(
            joined_record_start(&whole),
            None,
            "a whole record joins nothing"
        );
        for cut in [1, 7, 40, whole.len() - 1] {
            let mut joined = whole[..cut].to_vec();
            joined.extend_from_slice(&second);
            assert_eq!(joined_record_start(&joined), Some(cut), "cut at {cut}");
            let record = Record::from_ndjson_line(&joined[cut..]).unwrap();
            assert_eq!(record, Record::example(2));
        }
        // Two fragments, then a record: the record is found.
        let mut twice = whole[..30].to_vec();
        twice.extend_from_slice(&whole[..12]);
        twice.extend_from_slice(&second);
        assert_eq!(joined_record_start(&twice), Some(42));
        assert_eq!(joined_record_start(b""), None);
        assert_eq!(joined_record_start(b"garbage"), None);
    }

    #[test]
    fn claim_generations_are_utc_days_and_only_those_before_yesterday_are_stale() {
        let day = CLAIM_GENERATION_SECS * 1_000_000_000;
        assert_eq!(claim_generation(20_000 * day), 20_000);
        assert_eq!(claim_generation(20_001 * day - 1), 20_000);
        assert_eq!(claim_file_name(20_000), "claims-20000");
        assert!(stale_claim_file("claims-19998", 20_000));
        assert!(stale_claim_file("claims", 20_000));
        for kept in [
            "claims-19999",
            "claims-20000",
            "claims-20001",
            "claims-",
            "claims-1x",
            "claims-+5",
            "seg-1.ndjson",
        ] {
            assert!(!stale_claim_file(kept, 20_000), "{kept}");
        }
        assert!(!stale_claim_file("claims-0", 1));
    }

    #[test]
    fn windows_probes_and_deletion() {
        let layout = SpoolLayout::default();
        assert_eq!(
            layout.window_start(1_234_567_890_123_456_789),
            1_234_567_890
        );
        assert_eq!(
            layout.window_start(1_234_567_899_999_999_999),
            1_234_567_890
        );
        assert_eq!(layout.full_probe(1_000), Some(700));
        assert_eq!(layout.full_probe(100), None);
        assert!(!layout.deletable(1_000, 1_014_999_999_999));
        assert!(layout.deletable(1_000, 1_015_000_000_000));
    }

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn writer_probes_once_per_window_and_appends() {
        let mut plan = SpoolPlan::new(SpoolLayout::default());
        assert_eq!(
            plan.plan(1_000 * SEC),
            AppendPlan::Probe {
                window: 1_000,
                probe: 700
            }
        );
        assert_eq!(
            plan.probed(1_000, false),
            AppendPlan::Append { window: 1_000 }
        );
        assert_eq!(plan.plan(1_005 * SEC), AppendPlan::Append { window: 1_000 });
        assert_eq!(
            plan.plan(1_010 * SEC),
            AppendPlan::Probe {
                window: 1_010,
                probe: 710
            }
        );
        assert_eq!(
            plan.probed(1_010, false),
            AppendPlan::Append { window: 1_010 }
        );
        assert_eq!(plan.take_dropped(), 0);
    }

    #[test]
    fn full_spool_drops_and_counts_until_the_next_window() {
        let mut plan = SpoolPlan::new(SpoolLayout::default());
        assert!(matches!(plan.plan(1_000 * SEC), AppendPlan::Probe { .. }));
        assert_eq!(plan.probed(1_000, true), AppendPlan::Drop);
        assert_eq!(plan.plan(1_001 * SEC), AppendPlan::Drop);
        assert_eq!(plan.plan(1_009 * SEC), AppendPlan::Drop);
        assert_eq!(plan.dropped(), 3);
        assert!(matches!(plan.plan(1_010 * SEC), AppendPlan::Probe { .. }));
        assert_eq!(
            plan.probed(1_010, false),
            AppendPlan::Append { window: 1_010 }
        );
        let carried = plan.take_dropped();
        assert_eq!(carried, 3);
        plan.append_failed(carried);
        assert_eq!(plan.dropped(), 4);
    }

    #[test]
    fn unanswered_probe_is_asked_again_and_early_epoch_needs_none() {
        let mut plan = SpoolPlan::new(SpoolLayout::default());
        assert!(matches!(plan.plan(1_000 * SEC), AppendPlan::Probe { .. }));
        assert!(matches!(plan.plan(1_000 * SEC), AppendPlan::Probe { .. }));
        let mut early = SpoolPlan::new(SpoolLayout::default());
        assert_eq!(early.plan(5 * SEC), AppendPlan::Append { window: 0 });
    }

    #[test]
    fn frames_lines_partial_tails_and_oversize_lines() {
        assert_eq!(next_frame(b"{}\n{\"a\""), Frame::Line { len: 3 });
        assert_eq!(next_frame(b"{\"a\""), Frame::Incomplete);
        assert_eq!(next_frame(b""), Frame::Incomplete);
        let max = crate::record::MAX_LINE_BYTES;
        let mut exact = vec![b'x'; max - 1];
        exact.push(b'\n');
        assert_eq!(next_frame(&exact), Frame::Line { len: max });
        let mut long = vec![b'x'; max + 10];
        long.push(b'\n');
        long.extend_from_slice(b"{}\n");
        assert_eq!(next_frame(&long), Frame::Oversize { len: max + 11 });
        assert_eq!(next_frame(&long[max + 11..]), Frame::Line { len: 3 });
        let endless = vec![b'x'; max * 2];
        assert_eq!(next_frame(&endless), Frame::Oversize { len: max * 2 });
    }
}
