//! `/metrics`, a view over the aggregate: the request metrics from the checkpointed state and
//! the collector's own telemetry, in OpenMetrics text. prometheus-client encodes every family
//! but the request counter and the two histograms, which `exemplars.rs` writes.

mod buffer;
mod exemplars;
pub mod names;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

pub use self::buffer::Exposition;
use self::buffer::RenderBuffers;
use self::names::{METRIC_LABEL, REASON_LABEL, SERVICE_LABEL, TOTAL_SUFFIX, family_name};
use crate::aggregate::AggregateStore;
use crate::aggregate::mcp::MCP_BOUNDS;
use crate::aggregate::state::{Family, Hist, State, TOKEN_RESULTS};
use crate::batch::Reject;
use crate::clock::now_unix_ns;
use crate::sinks::span_sink::SpanSink;
use crate::telemetry::Telemetry;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What `/metrics` reads at scrape time.
#[derive(Clone)]
pub(crate) struct MetricsView {
    pub store: Arc<AggregateStore>,
    pub telemetry: Arc<Telemetry>,
    pub sink: Option<Arc<dyn SpanSink>>,
    /// Prefix of the request metrics.
    pub namespace: String,
    /// The buffer renders write into, kept between scrapes.
    pub buffers: Arc<RenderBuffers>,
}

impl std::fmt::Debug for MetricsView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsView")
            .field("namespace", &self.namespace)
            .field("spans", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

impl MetricsView {
    /// Renders the whole exposition, `# EOF` included; `queue_depth` is the HTTP ingest queue's.
    pub fn render(&self, queue_depth: usize) -> Exposition {
        let mut exposition = {
            let state = self.store.lock();
            let mut exposition = self.buffers.take(request_families_bytes(&state));
            let out = exposition.text_mut();
            let name = self.request_metric(names::REQUEST_DURATION_SECONDS);
            exemplars::write_latency(out, &name, &state.latency, &state.latency_bounds);
            exemplars::write_streams(
                out,
                &self.request_metric(names::STREAM_DURATION_SECONDS),
                &state.streams,
                &state.stream_bounds,
            );
            exemplars::write_requests(
                out,
                &self.request_metric(names::REQUESTS_TOTAL),
                "Gateway requests by service, method, route template and status.",
                &state.requests,
            );
            exemplars::write_mcp_operations(out, &state.mcp.family);
            exposition
        };
        let out = exposition.text_mut();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Families {
            view: self.clone(),
            queue_depth,
        }));
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(out, &registry);
        let _ = prometheus_client::encoding::text::encode_eof(out);
        exposition.finish()
    }

    /// `<namespace>_<name>`.
    fn request_metric(&self, name: &str) -> String {
        format!("{}_{name}", self.namespace)
    }
}

/// About how many bytes the hand-written families take (a line ≈ 128 bytes): room reserved
/// before the first render, when no previous length is known.
fn request_families_bytes(state: &State) -> usize {
    let histogram = |family: &Family<Hist>, bounds: usize| family.series.len() * (bounds + 5);
    let lines = histogram(&state.latency, state.latency_bounds.len())
        + histogram(&state.streams, state.stream_bounds.len())
        + histogram(&state.mcp.family, MCP_BOUNDS.len())
        + state.requests.series.len() * 2;
    lines * 128
}

/// Every family but the latency histogram, read at scrape time.
#[derive(Debug)]
struct Families {
    view: MetricsView,
    queue_depth: usize,
}

type Labels<'a> = Vec<(&'a str, &'a str)>;

/// A counter family; `name` as queried (with `_total`).
fn counter_family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (Labels<'a>, u64)>,
) -> Result<(), std::fmt::Error> {
    debug_assert!(name.ends_with(TOTAL_SUFFIX), "{name}");
    let mut metric =
        encoder.encode_descriptor(family_name(name), help, None, MetricType::Counter)?;
    for (labels, value) in series {
        if labels.is_empty() {
            // An unlabelled metric has one sample, written without `{}`.
            return ConstCounter::new(value).encode(metric);
        }
        let family = metric.encode_family(&labels)?;
        ConstCounter::new(value).encode(family)?;
    }
    Ok(())
}

fn gauge_family<'a, V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (Labels<'a>, V)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        if labels.is_empty() {
            return ConstGauge::new(value).encode(metric);
        }
        let family = metric.encode_family(&labels)?;
        ConstGauge::new(value).encode(family)?;
    }
    Ok(())
}

fn one<V>(value: V) -> std::iter::Once<(Labels<'static>, V)> {
    std::iter::once((Vec::new(), value))
}

impl Families {
    /// The request metrics (`<namespace>_…`) but the latency histogram.
    fn encode_requests(
        &self,
        encoder: &mut DescriptorEncoder,
        state: &State,
    ) -> Result<(), std::fmt::Error> {
        let view = &self.view;

        let cutoff = view.store.session_cutoff_ns(now_unix_ns());
        gauge_family(
            encoder,
            &view.request_metric(names::ACTIVE_SESSIONS),
            "MCP sessions with a request within the idle window, by service (0 for every known service).",
            state
                .active_sessions(cutoff, &view.store.services)
                .into_iter()
                .map(|(service, n)| (vec![(SERVICE_LABEL, service)], n as i64)),
        )?;
        counter_family(
            encoder,
            &view.request_metric(names::TOKEN_VALIDATIONS_TOTAL),
            "Bearer token validations by result.",
            TOKEN_RESULTS
                .iter()
                .zip(state.tokens)
                .map(|(result, n)| (vec![("result", *result)], n)),
        )?;
        counter_family(
            encoder,
            &view.request_metric(names::CLIENT_REGISTRATIONS_TOTAL),
            "Successful OAuth dynamic client registrations.",
            one(state.registrations),
        )?;
        for (name, n) in &state.business {
            counter_family(
                encoder,
                &view.request_metric(&format!("{name}{TOTAL_SUFFIX}")),
                "Business counter from the gateway's classification rules.",
                one(*n),
            )?;
        }
        Ok(())
    }

    /// What the checkpointed state knows about the collector's own work.
    fn encode_own_state(
        encoder: &mut DescriptorEncoder,
        state: &State,
        queue_full_records: u64,
    ) -> Result<(), std::fmt::Error> {
        counter_family(
            encoder,
            names::RECORDS_RECEIVED_TOTAL,
            "Valid records taken, by transport.",
            [("http", state.received[0]), ("spool", state.received[1])]
                .into_iter()
                .map(|(t, n)| (vec![("transport", t)], n)),
        )?;
        counter_family(
            encoder,
            names::RECORDS_REJECTED_TOTAL,
            "Lines rejected, by reason.",
            Reject::ALL
                .iter()
                .zip(&state.rejected)
                .map(|(r, n)| (vec![(REASON_LABEL, r.as_str())], *n)),
        )?;
        counter_family(
            encoder,
            names::RECORDS_DROPPED_TOTAL,
            "Records lost before aggregation, by reason (plugin: reported by the emitters).",
            [
                ("plugin", state.plugin_dropped),
                ("queue_full", queue_full_records),
            ]
            .into_iter()
            .map(|(r, n)| (vec![(REASON_LABEL, r)], n)),
        )?;
        counter_family(
            encoder,
            names::UNTRACKED_SESSION_RECORDS_TOTAL,
            "Records whose MCP session was not tracked because --max-sessions was reached (the records count).",
            one(state.untracked_session_records),
        )?;
        counter_family(
            encoder,
            names::ENDED_SESSION_RECORDS_TOTAL,
            "Records naming an MCP session already ended by a DELETE; the session stays ended (the records count).",
            one(state.ended_session_records),
        )?;
        counter_family(
            encoder,
            names::MCP_NAMES_OVERFLOW_TOTAL,
            "MCP operations whose tool or prompt name was labelled _OTHER by the per-service cap, by kind.",
            [
                ("tool", state.mcp.tools.overflowed),
                ("prompt", state.mcp.prompts.overflowed),
            ]
            .into_iter()
            .map(|(k, n)| (vec![("kind", k)], n)),
        )?;
        counter_family(
            encoder,
            names::REQUESTS_WITHOUT_STATUS_TOTAL,
            "Requests recorded without a status, by service and the plugin's reason (unreported: none given).",
            state.without_status.iter().map(|(mut labels, n)| {
                let service = labels.next().unwrap_or_default();
                let reason = labels.next().unwrap_or_default();
                (vec![(SERVICE_LABEL, service), (REASON_LABEL, reason)], *n)
            }),
        )?;
        counter_family(
            encoder,
            names::UNKNOWN_COUNTER_NAMES_TOTAL,
            "Counter names in records that are not configured business counters (the records count).",
            one(state.unknown_counter_names),
        )?;
        counter_family(
            encoder,
            names::DUPLICATE_BATCHES_TOTAL,
            "Batches acknowledged as already taken and not counted again.",
            one(state.duplicate_batches),
        )?;
        let capped = [
            (
                names::REQUESTS_TOTAL,
                state.requests.series.len(),
                state.requests.overflowed,
                state.requests.expired,
            ),
            (
                names::REQUEST_DURATION_SECONDS,
                state.latency.series.len(),
                state.latency.overflowed,
                state.latency.expired,
            ),
            (
                names::STREAM_DURATION_SECONDS,
                state.streams.series.len(),
                state.streams.overflowed,
                state.streams.expired,
            ),
            (
                names::MCP_OPERATION_DURATION_SECONDS,
                state.mcp.family.series.len(),
                state.mcp.family.overflowed,
                state.mcp.family.expired,
            ),
            (
                names::REQUESTS_WITHOUT_STATUS_TOTAL,
                state.without_status.series.len(),
                state.without_status.overflowed,
                state.without_status.expired,
            ),
        ];
        gauge_family(
            encoder,
            names::SERIES,
            "Label sets held per capped metric.",
            capped
                .iter()
                .map(|(m, n, _, _)| (vec![(METRIC_LABEL, *m)], *n as i64)),
        )?;
        counter_family(
            encoder,
            names::SERIES_OVERFLOW_TOTAL,
            "Label sets sent to the `other` series by the cardinality cap.",
            capped
                .iter()
                .map(|(m, _, o, _)| (vec![(METRIC_LABEL, *m)], *o)),
        )?;
        counter_family(
            encoder,
            names::SERIES_EXPIRED_TOTAL,
            "Series removed after --series-idle-secs without an update.",
            capped
                .iter()
                .map(|(m, _, _, e)| (vec![(METRIC_LABEL, *m)], *e)),
        )?;
        gauge_family(
            encoder,
            names::DEDUP_SOURCES,
            "Batch sources remembered for duplicate detection.",
            one(state.dedup.len() as i64),
        )
    }

    /// The span sink's counters and the process telemetry.
    fn encode_own_telemetry(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let telemetry = &self.view.telemetry;
        let sink = self
            .view
            .sink
            .as_ref()
            .map(|s| s.stats())
            .unwrap_or_default();
        counter_family(
            encoder,
            names::SPANS_EXPORTED_TOTAL,
            "Spans the OTLP backend acknowledged.",
            one(sink.exported),
        )?;
        counter_family(
            encoder,
            names::SPANS_FAILED_TOTAL,
            "Spans given up on after bounded retries.",
            one(sink.failed),
        )?;
        counter_family(
            encoder,
            names::SPANS_DROPPED_TOTAL,
            "Spans dropped because the exporter queue was full.",
            one(sink.dropped),
        )?;
        gauge_family(
            encoder,
            names::SPAN_QUEUE,
            "Spans waiting for export.",
            one(sink.queued as i64),
        )?;
        gauge_family(
            encoder,
            names::EXPORTER_HEALTHY,
            "1 when the last span export succeeded (or no exporter is configured).",
            one(i64::from(self.view.sink.is_none() || sink.healthy)),
        )?;
        counter_family(
            encoder,
            names::ACCESS_LINES_DROPPED_TOTAL,
            "Access lines dropped because the writer could not keep up.",
            one(telemetry.access_lines_dropped.load(Ordering::Relaxed)),
        )?;
        gauge_family(
            encoder,
            names::QUEUE_DEPTH,
            "Batches waiting for aggregation.",
            one(self.queue_depth as i64),
        )?;
        gauge_family(
            encoder,
            names::SPOOL_LAG_BYTES,
            "Bytes in spool segments not yet read.",
            one(telemetry.spool_lag_bytes.load(Ordering::Relaxed) as i64),
        )?;
        counter_family(
            encoder,
            names::REQUESTS_REFUSED_TOTAL,
            "Connections and requests refused before their body was read, by reason.",
            telemetry
                .refused()
                .map(|(r, n)| (vec![(REASON_LABEL, r)], n)),
        )?;
        counter_family(
            encoder,
            names::SPOOL_ERRORS_TOTAL,
            "Spool problems (not fatal), by kind.",
            telemetry
                .spool_errors()
                .map(|(k, n)| (vec![("kind", k)], n)),
        )?;
        let last = telemetry.checkpoint_unix_ms.load(Ordering::Relaxed);
        let age = if last == 0 {
            -1.0
        } else {
            (now_unix_ns() / 1_000_000).saturating_sub(last) as f64 / 1000.0
        };
        gauge_family(
            encoder,
            names::CHECKPOINT_AGE_SECONDS,
            "Seconds since the last checkpoint was written (-1: none yet or disabled).",
            one(age),
        )?;
        counter_family(
            encoder,
            names::CHECKPOINT_FAILURES_TOTAL,
            "Checkpoint writes that failed.",
            one(telemetry.checkpoint_failures.load(Ordering::Relaxed)),
        )
    }
}

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let state = self.view.store.lock();
        self.encode_requests(&mut encoder, &state)?;
        let queue_full = self
            .view
            .telemetry
            .queue_full_records
            .load(Ordering::Relaxed);
        Self::encode_own_state(&mut encoder, &state, queue_full)?;
        drop(state);
        self.encode_own_telemetry(&mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::aggregate::state::Settings;

    #[test]
    fn untracked_sessions_and_unknown_counter_names_count_in_their_own_metrics() {
        let settings = Settings::for_tests();
        let mut state = State::new(&settings);
        state.untracked_session_records = 2;
        state.unknown_counter_names = 3;
        let view = MetricsView {
            store: Arc::new(AggregateStore::new(
                state,
                settings,
                Duration::from_secs(300),
            )),
            telemetry: Arc::default(),
            sink: None,
            namespace: names::DEFAULT_NAMESPACE.into(),
            buffers: Arc::default(),
        };
        let text = view.render(0).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.contains(&format!("{} 2", names::UNTRACKED_SESSION_RECORDS_TOTAL).as_str()),
            "{text}"
        );
        assert!(
            lines.contains(&format!("{} 3", names::UNKNOWN_COUNTER_NAMES_TOTAL).as_str()),
            "{text}"
        );
        // Neither hides among the records dropped or the lines rejected any more.
        assert!(!text.contains("sessions_untracked"), "{text}");
        assert!(!text.contains("unknown_counter\""), "{text}");
    }
}
