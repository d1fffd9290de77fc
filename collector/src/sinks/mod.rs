//! Where aggregated records go besides the metrics: spans through a [`span_sink::SpanSink`]
//! (OTLP in [`otlp`]) and JSON access lines ([`access_log`]). Both queue, bounded, and never
//! make the aggregator wait.

pub mod access_log;
pub mod otlp;
pub mod span_sink;
