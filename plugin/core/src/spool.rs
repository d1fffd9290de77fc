//! The spool format: how the Traefik plugin appends records to a shared directory and how
//! the collector reads, checkpoints and deletes them. Defined once, here, for both sides.
//!
//! Layout of a spool directory:
//! - `seg-<W>.ndjson`: records appended while the wall clock was in the window that starts
//!   at Unix second `W` (a multiple of [`SpoolLayout::window_secs`]). One `write` of one
//!   complete line per record, opened with `O_APPEND`, so lines from many instances never
//!   interleave. A writer only writes to the segment of the current window and reopens
//!   when the window changes; it never keeps a handle to an older segment.
//! - `claims`: append-only; each plugin instance appends [`CLAIM_BYTES`] bytes once at start
//!   and uses the resulting file offset as its unique instance salt.
//!
//! A reader may delete a segment once it has read it to the end and the window closed more
//! than `grace_secs` ago ([`SpoolLayout::deletable`]). A writer entering window `W` first
//! looks for the segment `max_windows` windows back ([`SpoolLayout::full_probe`]): if it
//! still exists the reader is that far behind, the spool is full, and records are dropped
//! (and counted) until the next window.

/// Name of the claim file inside the spool directory.
pub const CLAIM_FILE: &str = "claims";
/// Bytes each instance appends to the claim file.
pub const CLAIM_BYTES: usize = 8;
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
    let digits = name.strip_prefix(SEGMENT_PREFIX)?.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
