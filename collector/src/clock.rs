//! The collector's one wall clock. Records, session idleness, spool windows and checkpoint
//! ages are all Unix-epoch times, so this is the only place the collector reads the time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch now (0 for a clock set before 1970).
pub(crate) fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
