//! The seam between the aggregator and a span exporter: a small trait so the aggregator never
//! knows (or waits on) the OTLP transport, and tests can swap it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use gatetrace_core::record::Record;

/// Counters a span sink reports; the collector exposes them as its own metrics at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpanSinkStats {
    /// Spans the backend acknowledged.
    pub exported: u64,
    /// Spans given up on after bounded retries.
    pub failed: u64,
    /// Spans dropped because the sink's bounded queue was full.
    pub dropped: u64,
    /// Spans waiting in the queue now.
    pub queued: u64,
    /// Whether the last export attempt succeeded (or none was needed).
    pub healthy: bool,
}

/// Receives every sampled record for span export. Implementations queue (bounded) and never
/// block the caller; a full queue drops the span and counts it.
pub trait SpanSink: Send + Sync + 'static {
    /// Hands one sampled record over.
    fn offer(&self, record: &Record);
    /// Current counters.
    fn stats(&self) -> SpanSinkStats;
    /// Exports what is queued, waiting at most `timeout`.
    fn shutdown(&self, timeout: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}
