//! What a source hands the aggregator: a batch of decoded records, the lines it rejected
//! (counted by reason), and where it came from — an HTTP request waiting for its
//! acknowledgement, or a spool segment read up to an offset.

use gatetrace_core::record::Record;
use serde::Serialize;
use tokio::sync::oneshot;

/// Why a line was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reject {
    /// Longer than the core's `MAX_LINE_BYTES`.
    LineTooLong,
    /// Not a JSON record of the expected shape.
    InvalidJson,
    /// A schema major version this build does not read.
    SchemaVersion,
    /// Trace, span or parent id that is not lowercase W3C hex.
    InvalidIds,
    /// A status outside 100–599.
    InvalidStatus,
    /// A `service`, `endpoint`, `method` or `request_id` the format or the label bounds refuse.
    InvalidLabel,
}

/// Rejected lines by [`Reject::index`].
pub type RejectCounts = [u64; Reject::ALL.len()];

impl Reject {
    /// Every reason, in the order of [`Reject::index`].
    pub const ALL: [Self; 6] = [
        Self::LineTooLong,
        Self::InvalidJson,
        Self::SchemaVersion,
        Self::InvalidIds,
        Self::InvalidStatus,
        Self::InvalidLabel,
    ];

    /// Label value for metrics and the text of the error list.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LineTooLong => "line_too_long",
            Self::InvalidJson => "invalid_json",
            Self::SchemaVersion => "schema_version",
            Self::InvalidIds => "invalid_ids",
            Self::InvalidStatus => "invalid_status",
            Self::InvalidLabel => "invalid_label",
        }
    }

    /// Position in [`Reject::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Decoded records on their way to the aggregator.
#[derive(Debug)]
pub(crate) struct RecordBatch {
    pub records: Vec<Record>,
    pub rejected: RejectCounts,
    pub origin: BatchOrigin,
}

/// Where a batch came from, and what the aggregator owes it.
#[derive(Debug)]
pub(crate) enum BatchOrigin {
    /// A `POST /v1/records` whose handler waits for [`IngestAck`].
    Http {
        /// `(source, sequence)` from the batch headers, for duplicate detection.
        dedup: Option<(String, u64)>,
        ack: oneshot::Sender<IngestAck>,
    },
    /// Complete lines of spool segment `segment` (its window start), read up to `end_offset`.
    Spool { segment: u64, end_offset: u64 },
}

/// What the aggregator tells an HTTP handler once its batch is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IngestAck {
    /// Counted (and, with a checkpoint configured, on disk).
    Applied,
    /// This `(source, sequence)` was taken before: acknowledged, not counted again.
    Duplicate,
    /// Counted in memory but the checkpoint write failed: the client should retry.
    NotDurable,
}
