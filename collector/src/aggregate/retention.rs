//! What the aggregator lets go of on disk: spool segments read to the end whose window the
//! layout says may go, once the checkpoint covering them is written. A segment is truncated
//! before it is unlinked, so a writer's stale handle pins no disk space.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;

use gatetrace_core::spool::{SpoolLayout, segment_name};

use crate::telemetry::{SpoolErrorKind, Telemetry};

/// `(window, offset)` of the segments in `offsets` whose window `layout` lets go at `now_ns`.
pub(crate) fn deletable_segments(
    offsets: &BTreeMap<u64, u64>,
    layout: &SpoolLayout,
    now_ns: u64,
) -> Vec<(u64, u64)> {
    offsets
        .iter()
        .filter(|(window, _)| layout.deletable(**window, now_ns))
        .map(|(window, offset)| (*window, *offset))
        .collect()
}

/// Deletes each candidate segment of `dir` that was read to its end (its length is the offset
/// read); returns the windows that are gone, so their offsets may be forgotten. Blocking.
pub(crate) fn delete_segments(
    dir: &Path,
    candidates: Vec<(u64, u64)>,
    telemetry: &Telemetry,
) -> Vec<u64> {
    let mut gone = Vec::new();
    for (window, offset) in candidates {
        let path = dir.join(segment_name(window));
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() == offset => match discard_segment(&path) {
                Ok(()) => gone.push(window),
                Err(e) if e.kind() == ErrorKind::NotFound => gone.push(window),
                Err(e) => {
                    telemetry.count_spool_error(SpoolErrorKind::Delete);
                    tracing::warn!(segment = window, error = %e, "cannot delete spool segment");
                }
            },
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => gone.push(window),
            Err(_) => {}
        }
    }
    gone
}

/// Truncates a finished segment to 0 bytes, then unlinks it. A plugin instance may still hold
/// a handle to it (writers keep the current window's segment open and close it only when they
/// next write in a later window); truncating first means such a stale handle pins no disk space.
fn discard_segment(path: &Path) -> std::io::Result<()> {
    if let Err(e) = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(0))
    {
        tracing::debug!(segment = %path.display(), error = %e, "cannot truncate spool segment before deleting it");
    }
    std::fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::discard_segment;

    #[test]
    fn discarding_a_segment_frees_its_bytes_even_while_a_writer_holds_it_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg-0.ndjson");
        let mut stale_writer = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        stale_writer.write_all(&[b'x'; 4096]).unwrap();

        discard_segment(&path).unwrap();

        assert!(!path.exists(), "segment still linked");
        assert_eq!(
            stale_writer.metadata().unwrap().len(),
            0,
            "the unlinked segment still pins its bytes through the stale handle"
        );
    }
}
