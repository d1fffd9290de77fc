//! The spool appender: appends record lines to the spool directory exactly as
//! `gatetrace_core::spool` defines it — one `O_APPEND` write per record into the segment of the
//! append time, only the current window's segment kept open; a full spool, a failed write or
//! no spool mounted at all → the record is dropped and counted.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use crate::drops::DropLedger;
use gatetrace_core::spool::{
    self, AppendPlan, CLAIM_BYTES, SpoolLayout, claim_file_name, claim_generation, segment_name,
    stale_claim_file,
};

/// An instance's unique salt: the claim generation and the claim file's offset after its claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Claim {
    /// The claim generation (UTC day) of the wall clock at the claim.
    pub generation: u64,
    /// The offset after this instance's bytes in that generation's claim file (≥ 8).
    pub offset: u64,
}

/// Claims this instance's salt at wall clock `now_unix_ns`: appends [`CLAIM_BYTES`] bytes (the
/// clock) to the claim file of the current generation with one `O_APPEND` write and returns the
/// generation and the file offset after the write. The kernel serialises appends, so no two
/// instances sharing the spool (on this host) ever get the same offset in one generation, and
/// different generations never share a file. The first claim of a generation removes the
/// files of generations before the previous one: that bounds the claim files to about two
/// days of instance starts, and a file still reachable by a claim begun in the previous
/// generation is never removed and restarted at offset 0.
pub fn claim_salt(dir: &Path, now_unix_ns: u64) -> io::Result<Claim> {
    let generation = claim_generation(now_unix_ns);
    let mut file = open_append(&dir.join(claim_file_name(generation)))?;
    let written = file.write(&now_unix_ns.to_le_bytes()[..CLAIM_BYTES])?;
    if written != CLAIM_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short claim write",
        ));
    }
    let offset = file.stream_position()?;
    if offset == CLAIM_BYTES as u64 {
        remove_stale_claims(dir, generation);
    }
    Ok(Claim { generation, offset })
}

/// Removes the claim files that are stale in `generation`. Best effort: a file left behind
/// (an error, another instance removing it first) is removed by a later generation's first claim.
fn remove_stale_claims(dir: &Path, generation: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|name| stale_claim_file(name, generation))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

/// The file operations the appender needs, on names relative to the spool directory.
pub trait SpoolDir {
    /// An open segment.
    type File;
    /// Opens `name` with `O_APPEND`, creating it.
    fn open(&mut self, name: &str) -> io::Result<Self::File>;
    /// Writes `line` with one `write`.
    fn write(&mut self, file: &mut Self::File, line: &[u8]) -> io::Result<usize>;
    /// Closes a segment opened by [`SpoolDir::open`].
    fn close(&mut self, file: Self::File);
    /// Whether `name` exists.
    fn exists(&mut self, name: &str) -> bool;
}

/// [`SpoolDir`] through `std::fs` (native builds, and the wasm fallback).
#[derive(Debug)]
pub struct StdDir(pub PathBuf);

impl SpoolDir for StdDir {
    type File = File;

    fn open(&mut self, name: &str) -> io::Result<File> {
        open_append(&self.0.join(name))
    }

    fn write(&mut self, file: &mut File, line: &[u8]) -> io::Result<usize> {
        file.write(line)
    }

    fn close(&mut self, file: File) {
        drop(file);
    }

    fn exists(&mut self, name: &str) -> bool {
        self.0.join(name).exists()
    }
}

/// Where `dir` lives among the preopened directories `(fd, guest path)`: the fd of the longest
/// preopen holding it and the dir's path inside that preopen (empty, or ending in `/`), so a
/// segment is `<prefix><name>` relative to the fd. `None` when no preopen holds it.
#[must_use]
pub fn locate(dir: &str, preopens: &[(u32, String)]) -> Option<(u32, String)> {
    let dir = dir.trim_end_matches('/');
    preopens
        .iter()
        .filter_map(|(fd, name)| {
            let name = name.trim_end_matches('/');
            let rest = dir.strip_prefix(name)?;
            if !rest.is_empty() && !rest.starts_with('/') {
                return None;
            }
            Some((name.len(), *fd, rest.trim_start_matches('/')))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, fd, rest)| {
            let prefix = if rest.is_empty() {
                String::new()
            } else {
                format!("{rest}/")
            };
            (fd, prefix)
        })
}

/// The reason a record is dropped when no spool directory is mounted into the plugin.
pub const NO_SPOOL: &str = "no_spool";

/// What happened to one record.
#[derive(Debug)]
pub enum AppendOutcome {
    /// The line is in the segment.
    Written,
    /// No spool directory is mounted: the record was dropped and counted ([`NO_SPOOL`]).
    NoSpool,
    /// The spool is full for this window: the record was dropped and counted.
    Full,
    /// The write failed: the record was dropped and counted.
    Failed(io::Error),
}

/// Appends lines to the spool of one plugin instance. The core's [`spool::SpoolPlan`] decides
/// (which window, when to probe for a full spool, what is dropped and reported); this type does
/// the I/O and keeps the segment of the current window open, and only that one: when a record
/// lands in a new window, the old handle is closed before anything else, so a line only ever
/// goes to the segment of the window the wall clock is in, and a segment the collector may
/// delete (window + grace past) is never written to. The collector truncates a segment before
/// unlinking it, so the handle an idle instance still holds pins no disk space.
pub struct SpoolAppender<D: SpoolDir> {
    /// `None`: no spool is mounted, every record is dropped and counted.
    dir: Option<D>,
    plan: spool::SpoolPlan,
    /// The open segment and its window (none before the first write of a window, when the
    /// spool is full, or after a failed open or write).
    open: Option<(u64, D::File)>,
    /// The window whose segment ends in the fragment of a short write (a full disk takes part
    /// of a line): the next line to that segment starts with a newline, so the fragment stays
    /// one bad line of its own instead of swallowing the next record.
    torn: Option<u64>,
    /// The newline and the line, for a write after a fragment (rare: no copy otherwise).
    mended: Vec<u8>,
    /// Where the drop count outlives the instance (none without a spool, or in tests).
    ledger: Option<DropLedger>,
}

impl<D: SpoolDir> core::fmt::Debug for SpoolAppender<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpoolAppender")
            .field("mounted", &self.dir.is_some())
            .field("plan", &self.plan)
            .field("open_window", &self.open.as_ref().map(|(window, _)| window))
            .finish_non_exhaustive()
    }
}

impl<D: SpoolDir> SpoolAppender<D> {
    /// An appender into `dir`, or one that drops every record when no spool is mounted.
    #[must_use]
    pub fn new(dir: Option<D>, layout: SpoolLayout) -> Self {
        Self {
            dir,
            plan: spool::SpoolPlan::new(layout),
            open: None,
            torn: None,
            mended: Vec::new(),
            ledger: None,
        }
    }

    /// Keeps the drop count in `ledger` too, so it is reported even if this instance is
    /// never called again (see [`crate::drops`]).
    #[must_use]
    pub fn with_ledger(mut self, ledger: DropLedger) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The ledger, for tests.
    #[cfg(test)]
    pub(crate) fn ledger(&self) -> Option<&DropLedger> {
        self.ledger.as_ref()
    }

    /// The directory access, for tests to inspect.
    #[cfg(test)]
    pub(crate) fn dir(&self) -> &D {
        self.dir.as_ref().expect("a mounted spool")
    }

    /// The directory access, for tests to script.
    #[cfg(test)]
    pub(crate) fn dir_mut(&mut self) -> &mut D {
        self.dir.as_mut().expect("a mounted spool")
    }

    /// Records dropped since the last line written (carried by the next line).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.plan.dropped()
    }

    /// Appends one line at wall clock `now_unix_ns`. `line(dropped)` builds the complete line
    /// (newline included) carrying the dropped count; it is not called when the record is
    /// dropped beforehand (no spool, or the spool is full for this window). The line goes out
    /// with one `write`; a refused or failed line is counted.
    pub fn append<'l>(
        &mut self,
        now_unix_ns: u64,
        line: impl FnOnce(u64) -> &'l [u8],
    ) -> AppendOutcome {
        let before = self.plan.dropped();
        let outcome = self.append_or_drop(now_unix_ns, line);
        if self.plan.dropped() > before
            && let Some(ledger) = self.ledger.as_mut()
        {
            let reported_elsewhere = ledger.owe(self.plan.dropped());
            self.plan.forget(reported_elsewhere);
        }
        outcome
    }

    fn append_or_drop<'l>(
        &mut self,
        now_unix_ns: u64,
        line: impl FnOnce(u64) -> &'l [u8],
    ) -> AppendOutcome {
        let Some(dir) = self.dir.as_mut() else {
            self.plan.append_failed(0);
            return AppendOutcome::NoSpool;
        };
        let mut plan = self.plan.plan(now_unix_ns);
        if let AppendPlan::Probe { window, probe } = plan {
            close_unless(dir, &mut self.open, window);
            let exists = dir.exists(&segment_name(probe));
            plan = self.plan.probed(window, exists);
        }
        let AppendPlan::Append { window } = plan else {
            return AppendOutcome::Full;
        };
        close_unless(dir, &mut self.open, window);
        let mut file = match self.open.take() {
            Some((_, file)) => file,
            None => match dir.open(&segment_name(window)) {
                Ok(file) => file,
                Err(e) => {
                    self.plan.append_failed(0);
                    return AppendOutcome::Failed(e);
                }
            },
        };
        let mut owned = self.plan.take_dropped();
        let held = self
            .ledger
            .as_mut()
            .map(|ledger| ledger.hold(now_unix_ns, owned))
            .unwrap_or_default();
        owned -= held.reported_elsewhere.min(owned);
        let mut line: &[u8] = line(owned + held.adopted);
        let mending = self.torn == Some(window);
        if mending {
            self.mended.clear();
            self.mended.push(b'\n');
            self.mended.extend_from_slice(line);
            line = &self.mended;
        }
        let failure = match dir.write(&mut file, line) {
            Ok(n) if n == line.len() => {
                self.torn = None;
                self.open = Some((window, file));
                self.release(true);
                return AppendOutcome::Written;
            }
            Ok(0) => io::Error::new(io::ErrorKind::WriteZero, "nothing written"),
            Ok(n) => {
                // Part of the line landed (the disk filled up): the segment now ends in a
                // fragment, unless the part was only the newline that ended an earlier one.
                self.torn = (!(mending && n == 1)).then_some(window);
                io::Error::new(io::ErrorKind::WriteZero, "short write")
            }
            Err(e) => e,
        };
        // Reopen for the next line rather than trust this handle again.
        dir.close(file);
        // The adopted counts stay in their slots for a later writer; this instance owes its own.
        self.plan.append_failed(owned);
        self.release(false);
        AppendOutcome::Failed(failure)
    }

    /// Ends the ledger's part of a write: see [`DropLedger::release`].
    fn release(&mut self, written: bool) {
        if let Some(ledger) = self.ledger.as_mut() {
            let reported_elsewhere = ledger.release(written, self.plan.dropped());
            self.plan.forget(reported_elsewhere);
        }
    }
}

/// Closes the `open` segment unless it is `window`'s.
fn close_unless<D: SpoolDir>(dir: &mut D, open: &mut Option<(u64, D::File)>, window: u64) {
    if open.as_ref().is_some_and(|(current, _)| *current != window)
        && let Some((_, file)) = open.take()
    {
        dir.close(file);
    }
}

/// A spool dir for tests that logs every operation and keeps the lines written.
#[cfg(test)]
pub(crate) mod fake {
    use super::SpoolDir;
    use std::io;

    /// Logs `exists <name>`, `open <name>`, `write <name>`, `close <name>`.
    #[derive(Debug, Default)]
    pub(crate) struct FakeDir {
        pub(crate) ops: Vec<String>,
        /// `(segment, line)` of every write.
        pub(crate) lines: Vec<(String, Vec<u8>)>,
        /// Names `exists` finds.
        pub(crate) existing: Vec<String>,
        pub(crate) fail_open: bool,
        /// Bytes the next writes take at most (a disk filling up); `None`: all of them.
        pub(crate) room: Option<usize>,
    }

    impl SpoolDir for FakeDir {
        type File = String;

        fn open(&mut self, name: &str) -> io::Result<String> {
            self.ops.push(format!("open {name}"));
            if self.fail_open {
                return Err(io::Error::other("no dir"));
            }
            Ok(name.to_owned())
        }

        fn write(&mut self, file: &mut String, line: &[u8]) -> io::Result<usize> {
            self.ops.push(format!("write {file}"));
            let n = self.room.map_or(line.len(), |room| room.min(line.len()));
            if let Some(room) = self.room.as_mut() {
                *room -= n;
            }
            self.lines.push((file.clone(), line[..n].to_vec()));
            Ok(n)
        }

        fn close(&mut self, file: String) {
            self.ops.push(format!("close {file}"));
        }

        fn exists(&mut self, name: &str) -> bool {
            self.ops.push(format!("exists {name}"));
            self.existing.iter().any(|e| e == name)
        }
    }
}

#[cfg(test)]
mod tests;
