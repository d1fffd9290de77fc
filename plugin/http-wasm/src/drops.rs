//! Drop counts that outlive the plugin instance: each instance keeps the count of records it
//! dropped and has not reported yet in a small slot file of its own, and any instance that
//! writes a record reports the counts of slots left idle (their instances gone) with it.
//!
//! Why a file: Traefik keeps the guest instances in an uncapped `sync.Pool` (http-wasm-host-go);
//! the pool discards idle instances at garbage collection without calling them, and an instance
//! parked on one processor's pool may not be asked again for a long time. A count held only in
//! instance memory, waiting for that instance's next record, is lost with it. The slot is
//! created while the disk has room (at start, or after the next record written) and later only
//! overwritten in place, which needs no new space: a full disk cannot stop the count.
//!
//! Protocol (all names in the spool directory; renames are atomic and need no space):
//! - `drops-<start ns>-<n>`: an instance's slot, 8 bytes, the little-endian count it owes.
//!   Only the owner writes it, after every drop.
//! - A writer adopts a slot idle for `stale` (no drop written to it for a window and a grace)
//!   by renaming it to `held-<name>`, reports its count in the record it writes, and removes it
//!   once that record is written (renames it back if the write failed).
//! - Before the owner reports its own count it renames its slot to `held-<name>` too; finding
//!   it gone means an adopter reported it: the owner forgets that part and reports the rest.
//!   The owner writes its slot through its name, never a kept handle, so a count written after
//!   an adoption is not lost into the adopter's file (one interleaving remains: an owner idle
//!   for `stale` that drops a record in the microseconds between an adopter's rename and read).
//! - Zero slots idle for the spool's whole retention are removed (instances come and go).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use gatetrace_core::spool::SpoolLayout;

/// Prefix of a slot file.
const SLOT_PREFIX: &str = "drops-";
/// Prefix of a slot held by a writer while its count rides in a record being written.
const HELD_PREFIX: &str = "held-";
/// Bytes of a slot: the count, little-endian.
const SLOT_BYTES: usize = 8;
/// Most slots one scan adopts (bounds the work of one request).
const MAX_ADOPTED: usize = 64;
/// Most names tried when creating a slot (they differ only when instances start in one ns).
const MAX_CREATE_TRIES: u64 = 16;
const SEC: u64 = 1_000_000_000;

/// The counts carried by the record about to be written, from [`DropLedger::hold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Held {
    /// Of this instance's count, the part an adopter reported already: forget it.
    pub reported_elsewhere: u64,
    /// The counts of the slots adopted for this record.
    pub adopted: u64,
}

/// One instance's slot and the slots it holds during one write.
#[derive(Debug)]
pub struct DropLedger {
    dir: PathBuf,
    /// This instance's slot (`None` until created: no room yet, or adopted).
    slot: Option<String>,
    /// The count the slot holds, as this instance last wrote it.
    in_slot: u64,
    /// The slot is renamed to its held name for the write in progress.
    holding_own: bool,
    /// Slots adopted for the write in progress: (original name, count).
    adopted: Vec<(String, u64)>,
    /// The instance's start (names its slots).
    start_ns: u64,
    /// The next slot name suffix to try.
    next_suffix: u64,
    /// A slot idle this long belongs to an instance that is gone (or parked): adopt it.
    stale_ns: u64,
    /// A zero slot idle this long is removed.
    retention_ns: u64,
    /// Scan for idle slots at most once per window.
    scan_every_ns: u64,
    next_scan_ns: u64,
}

impl DropLedger {
    /// The ledger of an instance started at `start_ns`, its slot created now if there is room.
    pub fn new(dir: PathBuf, layout: SpoolLayout, start_ns: u64) -> Self {
        let window_ns = layout.window_secs.max(1) * SEC;
        let mut ledger = Self {
            dir,
            slot: None,
            in_slot: 0,
            holding_own: false,
            adopted: Vec::new(),
            start_ns,
            next_suffix: 0,
            stale_ns: window_ns + layout.grace_secs * SEC,
            retention_ns: layout.max_windows.max(2) * window_ns,
            scan_every_ns: window_ns,
            next_scan_ns: 0,
        };
        ledger.create(0);
        ledger
    }

    /// This instance's slot name, for tests.
    #[cfg(test)]
    pub(crate) fn slot(&self) -> Option<&str> {
        self.slot.as_deref()
    }

    /// Records that this instance now owes `owed` drops (after a drop): writes it to the slot
    /// (creating one if there is none and there is room). Returns the part an adopter reported
    /// already (the slot was gone): the caller forgets it.
    #[must_use]
    pub fn owe(&mut self, owed: u64) -> u64 {
        let mut reported_elsewhere = 0;
        if let Some(name) = &self.slot {
            match overwrite(&self.dir.join(name), owed) {
                Ok(()) => {
                    self.in_slot = owed;
                    return 0;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    reported_elsewhere = self.in_slot.min(owed);
                    self.slot = None;
                    self.in_slot = 0;
                }
                // Not written (the slot keeps its older count): try again after the next drop.
                Err(_) => return 0,
            }
        }
        self.create(owed - reported_elsewhere);
        reported_elsewhere
    }

    /// Before writing a record that reports `owed` drops of this instance at `now_ns`: holds
    /// this instance's slot (unless it holds nothing) and adopts idle slots, once per window.
    pub fn hold(&mut self, now_ns: u64, owed: u64) -> Held {
        let mut held = Held::default();
        if let Some(name) = self.slot.clone()
            && self.in_slot > 0
        {
            match std::fs::rename(self.dir.join(&name), self.dir.join(held_name(&name))) {
                Ok(()) => self.holding_own = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    held.reported_elsewhere = self.in_slot.min(owed);
                    self.slot = None;
                    self.in_slot = 0;
                }
                Err(_) => {}
            }
        }
        if now_ns >= self.next_scan_ns {
            self.next_scan_ns = now_ns.saturating_add(self.scan_every_ns);
            self.adopt_idle(now_ns);
        }
        held.adopted = self.adopted.iter().map(|(_, count)| count).sum();
        held
    }

    /// After the write begun by [`DropLedger::hold`]: the adopted slots are removed when the
    /// record was written, renamed back (for a later writer) when not; this instance's slot
    /// gets `owed` (what it owes now) and its name back. Returns the part of `owed` an adopter
    /// reported already (see [`DropLedger::owe`]).
    #[must_use]
    pub fn release(&mut self, written: bool, owed: u64) -> u64 {
        for (name, _) in std::mem::take(&mut self.adopted) {
            let held = self.dir.join(held_name(&name));
            let _ = if written {
                std::fs::remove_file(held)
            } else {
                std::fs::rename(held, self.dir.join(&name))
            };
        }
        if std::mem::take(&mut self.holding_own)
            && let Some(name) = self.slot.clone()
        {
            let held = self.dir.join(held_name(&name));
            if overwrite(&held, owed).is_ok() {
                self.in_slot = owed;
            }
            if std::fs::rename(&held, self.dir.join(&name)).is_err() {
                self.slot = None;
                self.in_slot = 0;
            }
        }
        if self.slot.is_none() || self.in_slot != owed {
            return self.owe(owed);
        }
        0
    }

    /// Creates a fresh slot holding `owed` (best effort: no room, no slot).
    fn create(&mut self, owed: u64) {
        for _ in 0..MAX_CREATE_TRIES {
            let name = format!("{SLOT_PREFIX}{}-{}", self.start_ns, self.next_suffix);
            self.next_suffix += 1;
            let created = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.dir.join(&name));
            match created {
                Ok(mut file) => {
                    if file.write_all(&owed.to_le_bytes()).is_ok() {
                        self.slot = Some(name);
                        self.in_slot = owed;
                    } else {
                        let _ = std::fs::remove_file(self.dir.join(&name));
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(_) => return,
            }
        }
    }

    /// Adopts the slots of other instances idle for `stale_ns`; removes zero ones idle for
    /// the retention.
    fn adopt_idle(&mut self, now_ns: u64) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            if self.adopted.len() >= MAX_ADOPTED {
                break;
            }
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !name.starts_with(SLOT_PREFIX) || self.slot.as_deref() == Some(name.as_str()) {
                continue;
            }
            let Some(idle) = idle_ns(&entry.path(), now_ns) else {
                continue;
            };
            if idle < self.stale_ns {
                continue;
            }
            let path = entry.path();
            let held = self.dir.join(held_name(&name));
            if read_count(&path).is_ok_and(|count| count == 0) {
                if idle >= self.retention_ns && std::fs::rename(&path, &held).is_ok() {
                    let _ = std::fs::remove_file(held);
                }
                continue;
            }
            if std::fs::rename(&path, &held).is_err() {
                continue;
            }
            match read_count(&held) {
                Ok(count) => self.adopted.push((name, count)),
                // Unreadable now: leave it for a later writer.
                Err(_) => {
                    let _ = std::fs::rename(&held, &path);
                }
            }
        }
    }
}

fn held_name(slot: &str) -> String {
    format!("{HELD_PREFIX}{slot}")
}

/// Overwrites the count at the start of an existing slot (no new space, no create).
fn overwrite(path: &Path, count: u64) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(&count.to_le_bytes())
}

fn read_count(path: &Path) -> io::Result<u64> {
    let mut bytes = [0u8; SLOT_BYTES];
    File::open(path)?.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// How long ago `path` was last written, by wall clock `now_ns`.
fn idle_ns(path: &Path, now_ns: u64) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let modified_ns = u64::try_from(modified.duration_since(UNIX_EPOCH).ok()?.as_nanos()).ok()?;
    Some(now_ns.saturating_sub(modified_ns))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::spool::fake::FakeDir;
    use crate::spool::{AppendOutcome, SpoolAppender};

    fn layout() -> SpoolLayout {
        SpoolLayout {
            window_secs: 10,
            grace_secs: 5,
            max_windows: 3,
        }
    }

    fn wall_ns() -> u64 {
        u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos(),
        )
        .unwrap()
    }

    /// An instance started at `start_ns` whose segment writes fail (a full disk) until `room`
    /// is set back, with its ledger in `dir`.
    fn instance(dir: &Path, start_ns: u64, full: bool) -> SpoolAppender<FakeDir> {
        let segments = FakeDir {
            room: full.then_some(0),
            ..FakeDir::default()
        };
        SpoolAppender::new(Some(segments), layout()).with_ledger(DropLedger::new(
            dir.to_path_buf(),
            layout(),
            start_ns,
        ))
    }

    /// Appends at `now_ns`; returns the drop count the line carried (`None`: no line built).
    fn append(w: &mut SpoolAppender<FakeDir>, now_ns: u64) -> (bool, Option<u64>) {
        let mut carried = None;
        let outcome = w.append(now_ns, |dropped| {
            carried = Some(dropped);
            b"x\n"
        });
        (matches!(outcome, AppendOutcome::Written), carried)
    }

    fn slot_count(dir: &Path, w: &SpoolAppender<FakeDir>) -> Option<u64> {
        let name = w.ledger()?.slot()?;
        read_count(&dir.join(name)).ok()
    }

    /// Makes every slot in `dir` look idle for a minute.
    fn age_slots(dir: &Path) {
        let past = SystemTime::now() - Duration::from_secs(60);
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().starts_with(SLOT_PREFIX) {
                File::options()
                    .write(true)
                    .open(entry.path())
                    .unwrap()
                    .set_modified(past)
                    .unwrap();
            }
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_drop_is_in_the_slot_and_the_owners_record_takes_it_back_to_zero() {
        let dir = tempfile::tempdir().unwrap();
        let now = wall_ns();
        let mut a = instance(dir.path(), now, true);
        assert_eq!(slot_count(dir.path(), &a), Some(0), "created at start");
        for i in 1..=3 {
            assert!(!append(&mut a, now + i).0);
            assert_eq!(slot_count(dir.path(), &a), Some(i));
        }
        a.dir_mut().room = None;
        assert_eq!(append(&mut a, now + 4), (true, Some(3)));
        assert_eq!(slot_count(dir.path(), &a), Some(0));
        assert_eq!(a.dropped(), 0);
        assert!(
            names(dir.path())
                .iter()
                .all(|n| !n.starts_with(HELD_PREFIX))
        );
    }

    /// Traefik's pool discards an instance that owes drops: the next writer reports them.
    #[test]
    fn a_discarded_instances_drops_are_reported_by_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let now = wall_ns();
        let mut a = instance(dir.path(), now, true);
        for i in 0..5 {
            append(&mut a, now + i);
        }
        drop(a);
        let mut b = instance(dir.path(), now + 100, false);
        // Not while the slot could still be in use.
        assert_eq!(append(&mut b, now + 200), (true, Some(0)));
        age_slots(dir.path());
        let later = now + 11 * SEC;
        assert_eq!(append(&mut b, later), (true, Some(5)));
        assert_eq!(append(&mut b, later + 1), (true, Some(0)), "reported once");
        let left = names(dir.path());
        assert_eq!(left, [b.ledger().unwrap().slot().unwrap()], "{left:?}");
    }

    /// The owner comes back after its slot was adopted: it reports only what came after.
    #[test]
    fn an_owner_whose_slot_was_adopted_reports_only_the_later_drops() {
        let dir = tempfile::tempdir().unwrap();
        let now = wall_ns();
        let mut a = instance(dir.path(), now, true);
        append(&mut a, now);
        append(&mut a, now + 1);
        age_slots(dir.path());
        let mut b = instance(dir.path(), now + 100, false);
        assert_eq!(append(&mut b, now + 200), (true, Some(2)));
        // A drops one more, then writes.
        assert!(!append(&mut a, now + 300).0);
        assert_eq!(a.dropped(), 1);
        a.dir_mut().room = None;
        assert_eq!(append(&mut a, now + 400), (true, Some(1)));
        // Adopted between A's drop and A's write: A holds its slot first and forgets it.
        a.dir_mut().room = Some(0);
        append(&mut a, now + 500);
        age_slots(dir.path());
        let mut c = instance(dir.path(), now + 600, false);
        assert_eq!(append(&mut c, now + 700), (true, Some(1)));
        a.dir_mut().room = None;
        assert_eq!(append(&mut a, now + 800), (true, Some(0)));
    }

    #[test]
    fn adopted_counts_go_back_to_their_slot_when_the_adopters_write_fails() {
        let dir = tempfile::tempdir().unwrap();
        let now = wall_ns();
        let mut a = instance(dir.path(), now, true);
        append(&mut a, now);
        append(&mut a, now + 1);
        drop(a);
        age_slots(dir.path());
        let mut b = instance(dir.path(), now + 100, true);
        // B's line carried A's 2, but did not land: B owes only its own record.
        assert_eq!(append(&mut b, now + 200), (false, Some(2)));
        assert_eq!(b.dropped(), 1);
        assert!(
            names(dir.path())
                .iter()
                .all(|n| !n.starts_with(HELD_PREFIX))
        );
        b.dir_mut().room = None;
        age_slots(dir.path());
        assert_eq!(append(&mut b, now + 11 * SEC), (true, Some(3)));
    }

    #[test]
    fn zero_slots_idle_for_the_retention_are_removed_and_no_slot_is_no_failure() {
        let dir = tempfile::tempdir().unwrap();
        let now = wall_ns();
        drop(instance(dir.path(), now, false));
        age_slots(dir.path());
        let mut b = instance(dir.path(), now + 100, false);
        // The zero slot idle 60 s, past the retention (3 windows of 10 s): removed.
        assert_eq!(append(&mut b, now + 200), (true, Some(0)));
        assert_eq!(names(dir.path()), [b.ledger().unwrap().slot().unwrap()]);

        // An instance that could not make its slot (here: no such dir) writes on without one
        // and tries again after each record.
        let full = tempfile::tempdir().unwrap();
        let mut c = instance(&full.path().join("missing"), now, false);
        assert_eq!(c.ledger().unwrap().slot(), None);
        assert_eq!(append(&mut c, now + 1), (true, Some(0)));
        assert_eq!(c.ledger().unwrap().slot(), None, "still no room");
    }
}
