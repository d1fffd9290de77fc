//! The collector's own telemetry that lives with the process, not in the checkpoint: counters
//! and gauges the sources and the aggregator update, and the flags `/ready` reads. They
//! restart at zero with the process; `/metrics` reads them at scrape time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Spool problem kinds counted in `spool_errors_total{kind}` (none is fatal).
#[derive(Debug, Clone, Copy)]
pub(crate) enum SpoolErrorKind {
    /// The directory cannot be listed.
    Listing,
    /// A segment cannot be opened or read.
    Unreadable,
    /// A segment got shorter than the offset read (it is read again from the start).
    Shrunk,
    /// A finished segment cannot be deleted.
    Delete,
}

impl SpoolErrorKind {
    /// Every kind, in discriminant order.
    const ALL: [Self; 4] = [Self::Listing, Self::Unreadable, Self::Shrunk, Self::Delete];

    /// The `kind` label value.
    fn as_str(self) -> &'static str {
        match self {
            Self::Listing => "listing",
            Self::Unreadable => "unreadable",
            Self::Shrunk => "shrunk",
            Self::Delete => "delete",
        }
    }
}

/// Why a connection or request was refused before its body was read (counted in
/// `requests_refused_total{reason}`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum RefusedRequest {
    /// The connection cap was reached (answered 503, closed).
    ConnectionCap,
    /// A request's headers did not arrive in time (connection closed).
    HeaderTimeout,
    /// A request body did not arrive in time (answered 408, closed).
    BodyTimeout,
}

impl RefusedRequest {
    /// Every reason, in discriminant order.
    const ALL: [Self; 3] = [Self::ConnectionCap, Self::HeaderTimeout, Self::BodyTimeout];

    /// The `reason` label value.
    fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionCap => "connection_cap",
            Self::HeaderTimeout => "header_timeout",
            Self::BodyTimeout => "body_timeout",
        }
    }
}

/// Counters, gauges and readiness flags about the collector itself.
#[derive(Debug, Default)]
pub(crate) struct Telemetry {
    /// Records refused because the ingest queue was full (answered 429).
    pub queue_full_records: AtomicU64,
    /// Access lines dropped by the access log writer (shared with it).
    pub access_lines_dropped: Arc<AtomicU64>,
    spool_errors: [AtomicU64; SpoolErrorKind::ALL.len()],
    refused: [AtomicU64; RefusedRequest::ALL.len()],
    /// Bytes in spool segments not yet read, as of the tailer's last pass.
    pub spool_lag_bytes: AtomicU64,
    /// Whether the spool directory could be listed on the tailer's last pass.
    pub spool_readable: AtomicBool,
    /// When the last checkpoint was written, Unix milliseconds (0: none yet).
    pub checkpoint_unix_ms: AtomicU64,
    pub checkpoint_failures: AtomicU64,
    /// Whether the aggregator task runs (it stops after shutdown drains the queues).
    pub aggregator_running: AtomicBool,
}

impl Telemetry {
    pub fn count_spool_error(&self, kind: SpoolErrorKind) {
        self.spool_errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_refused(&self, reason: RefusedRequest) {
        self.refused[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `(reason label, count)` for every reason.
    pub fn refused(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        RefusedRequest::ALL
            .iter()
            .zip(&self.refused)
            .map(|(reason, n)| (reason.as_str(), n.load(Ordering::Relaxed)))
    }

    /// `(kind label, count)` for every kind.
    pub fn spool_errors(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        SpoolErrorKind::ALL
            .iter()
            .zip(&self.spool_errors)
            .map(|(kind, n)| (kind.as_str(), n.load(Ordering::Relaxed)))
    }
}
