//! `/metrics` in OpenMetrics text: the request metrics from the checkpointed state and the
//! collector's own health metrics. prometheus-client encodes every family except the latency
//! histogram, written here because its exemplars come from restored state.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::ingest::Reject;
use crate::pipeline::Shared;
use crate::state::{Family, Hist, State, TOKEN_RESULTS};
use crate::tailer::now_unix_ns;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const ROUTE_LABELS: [&str; 3] = ["service", "method", "endpoint"];
const REQUEST_LABELS: [&str; 4] = ["service", "method", "endpoint", "status"];

/// Renders the whole exposition, `# EOF` included.
pub(crate) fn render(shared: &Arc<Shared>, queue_depth: usize) -> String {
    let mut out = String::with_capacity(16 * 1024);
    {
        let state = shared.lock_state();
        let name = format!("{}_request_duration_seconds", shared.namespace);
        write_latency(&mut out, &name, &state.latency, &state.latency_bounds);
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families {
        shared: Arc::clone(shared),
        queue_depth,
    }));
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode_registry(&mut out, &registry);
    let _ = prometheus_client::encoding::text::encode_eof(&mut out);
    out
}

/// Escapes a label value per the exposition format.
fn escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_labels<'a>(out: &mut String, names: &[&str], values: impl Iterator<Item = &'a str>) {
    for (i, (name, value)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape(out, value);
        out.push('"');
    }
}

/// The latency histogram with one exemplar (latest sampled trace) per bucket.
fn write_latency(out: &mut String, name: &str, family: &Family<Hist>, bounds: &[f64]) {
    let _ = writeln!(
        out,
        "# HELP {name} Gateway request duration in seconds (streams excluded), with trace exemplars."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut labels = String::new();
    for (values, hist) in family.iter() {
        labels.clear();
        write_labels(&mut labels, &ROUTE_LABELS, values);
        let mut cumulative = 0;
        for (i, count) in hist.counts.iter().enumerate() {
            cumulative += count;
            let _ = write!(out, "{name}_bucket{{{labels},le=\"");
            match bounds.get(i) {
                Some(bound) => {
                    let _ = write!(out, "{bound:?}");
                }
                None => out.push_str("+Inf"),
            }
            let _ = write!(out, "\"}} {cumulative}");
            if let Some(Some(e)) = hist.exemplars.get(i) {
                let _ = write!(
                    out,
                    " # {{trace_id=\"{}\"}} {:?} {}.{:09}",
                    e.trace_id,
                    e.value,
                    e.unix_ns / 1_000_000_000,
                    e.unix_ns % 1_000_000_000
                );
            }
            out.push('\n');
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {:?}", hist.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// Every family but the latency histogram, read at scrape time.
#[derive(Debug)]
struct Families {
    shared: Arc<Shared>,
    queue_depth: usize,
}

type Labels<'a> = Vec<(&'a str, &'a str)>;

fn counter_family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (Labels<'a>, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
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
    fn encode_state(
        &self,
        encoder: &mut DescriptorEncoder,
        state: &State,
    ) -> Result<(), std::fmt::Error> {
        let ns = &self.shared.namespace;
        counter_family(
            encoder,
            &format!("{ns}_requests"),
            "Gateway requests by service, method, route template and status.",
            state
                .requests
                .iter()
                .map(|(values, n)| (REQUEST_LABELS.iter().copied().zip(values).collect(), *n)),
        )?;

        let name = format!("{ns}_stream_duration_seconds");
        let mut metric = encoder.encode_descriptor(
            &name,
            "Lifetime of streamed responses (SSE, upgrades, gRPC) in seconds.",
            None,
            MetricType::Histogram,
        )?;
        let mut buckets = Vec::new();
        for (values, hist) in state.streams.iter() {
            let labels: Labels = ROUTE_LABELS.iter().copied().zip(values).collect();
            buckets.clear();
            buckets.extend(
                state
                    .stream_bounds
                    .iter()
                    .copied()
                    .chain([f64::INFINITY])
                    .zip(hist.counts.iter().copied()),
            );
            metric
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(hist.sum, hist.count(), &buckets, None)?;
        }

        let cutoff = now_unix_ns().saturating_sub(self.shared.session_idle.as_nanos() as u64);
        gauge_family(
            encoder,
            &format!("{ns}_active_sessions"),
            "MCP sessions with a request within the idle window, by service.",
            state
                .active_sessions(cutoff)
                .into_iter()
                .map(|(service, n)| (vec![("service", service)], n as i64)),
        )?;
        counter_family(
            encoder,
            &format!("{ns}_token_validations"),
            "Bearer token validations by result.",
            TOKEN_RESULTS
                .iter()
                .zip(state.tokens)
                .map(|(result, n)| (vec![("result", *result)], n)),
        )?;
        counter_family(
            encoder,
            &format!("{ns}_client_registrations"),
            "Successful OAuth dynamic client registrations.",
            one(state.registrations),
        )?;
        for (name, n) in &state.business {
            counter_family(
                encoder,
                &format!("{ns}_{name}"),
                "Business counter from the gateway's classification rules.",
                one(*n),
            )?;
        }

        let own = "gatetrace_collector";
        counter_family(
            encoder,
            &format!("{own}_records_received"),
            "Valid records taken, by transport.",
            [("http", state.received[0]), ("spool", state.received[1])]
                .into_iter()
                .map(|(t, n)| (vec![("transport", t)], n)),
        )?;
        counter_family(
            encoder,
            &format!("{own}_records_rejected"),
            "Lines (or, for unknown_counter, counter names) rejected, by reason.",
            Reject::ALL
                .iter()
                .zip(&state.rejected)
                .map(|(r, n)| (vec![("reason", r.as_str())], *n)),
        )?;
        let health = &self.shared.health;
        let sink = self
            .shared
            .sink
            .as_ref()
            .map(|s| s.stats())
            .unwrap_or_default();
        counter_family(
            encoder,
            &format!("{own}_records_dropped"),
            "Records lost before aggregation, by reason (plugin: reported by the emitters).",
            [
                ("plugin", state.plugin_dropped),
                (
                    "queue_full",
                    health.queue_full_records.load(Ordering::Relaxed),
                ),
                ("sessions_untracked", state.sessions_untracked),
            ]
            .into_iter()
            .map(|(r, n)| (vec![("reason", r)], n)),
        )?;
        counter_family(
            encoder,
            &format!("{own}_duplicate_batches"),
            "Batches acknowledged as already taken and not counted again.",
            one(state.duplicate_batches),
        )?;
        let families = [
            (
                "requests_total",
                state.requests.series.len(),
                state.requests.overflowed,
            ),
            (
                "request_duration_seconds",
                state.latency.series.len(),
                state.latency.overflowed,
            ),
            (
                "stream_duration_seconds",
                state.streams.series.len(),
                state.streams.overflowed,
            ),
        ];
        gauge_family(
            encoder,
            &format!("{own}_series"),
            "Label sets held per capped metric.",
            families
                .iter()
                .map(|(m, n, _)| (vec![("metric", *m)], *n as i64)),
        )?;
        counter_family(
            encoder,
            &format!("{own}_series_overflow"),
            "Label sets sent to the `other` series by the cardinality cap.",
            families.iter().map(|(m, _, o)| (vec![("metric", *m)], *o)),
        )?;
        gauge_family(
            encoder,
            &format!("{own}_dedup_sources"),
            "Batch sources remembered for duplicate detection.",
            one(state.dedup.len() as i64),
        )?;
        counter_family(
            encoder,
            &format!("{own}_spans_exported"),
            "Spans the OTLP backend acknowledged.",
            one(sink.exported),
        )?;
        counter_family(
            encoder,
            &format!("{own}_spans_failed"),
            "Spans given up on after bounded retries.",
            one(sink.failed),
        )?;
        counter_family(
            encoder,
            &format!("{own}_spans_dropped"),
            "Spans dropped because the exporter queue was full.",
            one(sink.dropped),
        )?;
        gauge_family(
            encoder,
            &format!("{own}_span_queue"),
            "Spans waiting for export.",
            one(sink.queued as i64),
        )?;
        gauge_family(
            encoder,
            &format!("{own}_exporter_healthy"),
            "1 when the last span export succeeded (or no exporter is configured).",
            one(i64::from(self.shared.sink.is_none() || sink.healthy)),
        )?;
        counter_family(
            encoder,
            &format!("{own}_access_lines_dropped"),
            "Access lines dropped because the writer could not keep up.",
            one(health.access_dropped.load(Ordering::Relaxed)),
        )?;
        gauge_family(
            encoder,
            &format!("{own}_queue_depth"),
            "Batches waiting for aggregation.",
            one(self.queue_depth as i64),
        )?;
        gauge_family(
            encoder,
            &format!("{own}_spool_lag_bytes"),
            "Bytes in spool segments not yet read.",
            one(health.spool_lag_bytes.load(Ordering::Relaxed) as i64),
        )?;
        counter_family(
            encoder,
            &format!("{own}_spool_errors"),
            "Spool problems (not fatal), by kind.",
            health
                .spool_errors()
                .into_iter()
                .map(|(k, n)| (vec![("kind", k)], n)),
        )?;
        let last = health.checkpoint_unix_ms.load(Ordering::Relaxed);
        let age = if last == 0 {
            -1.0
        } else {
            (now_unix_ns() / 1_000_000).saturating_sub(last) as f64 / 1000.0
        };
        gauge_family(
            encoder,
            &format!("{own}_checkpoint_age_seconds"),
            "Seconds since the last checkpoint was written (-1: none yet or disabled).",
            one(age),
        )?;
        counter_family(
            encoder,
            &format!("{own}_checkpoint_failures"),
            "Checkpoint writes that failed.",
            one(health.checkpoint_failures.load(Ordering::Relaxed)),
        )?;
        Ok(())
    }
}

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let state = self.shared.lock_state();
        self.encode_state(&mut encoder, &state)
    }
}
