//! The families written by hand in OpenMetrics text: the latency and MCP operation histograms
//! with one exemplar (the latest sampled trace) per bucket, the stream histogram and the
//! request counter, each
//! series with its `_created`. prometheus-client's `Exemplar` has no public constructor
//! (exemplars restored from a checkpoint cannot be handed to it), its constant metrics no
//! `_created`.

use std::fmt::Write as _;

use super::names::{
    MCP_OPERATION_DURATION_SECONDS, MCP_OPERATION_LABELS, REQUEST_LABELS, ROUTE_LABELS,
    TRACE_ID_LABEL, family_name,
};
use crate::aggregate::mcp::MCP_BOUNDS;
use crate::aggregate::state::{Family, Hist};

/// Escapes a label value per the exposition format.
fn escape(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
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

/// Writes `{name}{suffix}{{labels}} `, the start of a sample line (pieces pushed as they
/// are: a `/metrics` at 10 k series is ≈ 20 MB of such lines).
fn write_sample_start(out: &mut String, name: &str, suffix: &str, labels: &str) {
    out.push_str(name);
    out.push_str(suffix);
    out.push('{');
    out.push_str(labels);
    out.push_str("} ");
}

/// Writes `{series}_created{{labels}} <seconds>` when the creation time is known.
fn write_created(out: &mut String, series: &str, labels: &str, created_ns: u64) {
    if created_ns != 0 {
        write_sample_start(out, series, "_created", labels);
        let _ = writeln!(
            out,
            "{}.{:09}",
            created_ns / 1_000_000_000,
            created_ns % 1_000_000_000
        );
    }
}

/// Writes the counter family `name` (as queried, with `_total`) of `family`'s per-request
/// series.
pub(super) fn write_requests(out: &mut String, name: &str, help: &str, family: &Family<u64>) {
    let base = family_name(name);
    let _ = writeln!(out, "# HELP {base} {help}");
    let _ = writeln!(out, "# TYPE {base} counter");
    let mut labels = String::new();
    for (values, n, created) in family.iter_created() {
        labels.clear();
        write_labels(&mut labels, &REQUEST_LABELS, values);
        write_sample_start(out, name, "", &labels);
        let _ = writeln!(out, "{n}");
        write_created(out, base, &labels, created);
    }
}

/// Writes the latency histogram family `name` (per-route series of `family`, upper `bounds`
/// without `+Inf`) with its exemplars.
pub(super) fn write_latency(out: &mut String, name: &str, family: &Family<Hist>, bounds: &[f64]) {
    write_histogram(
        out,
        name,
        "Gateway request duration in seconds (streams excluded), with trace exemplars.",
        &ROUTE_LABELS,
        family,
        bounds,
    );
}

/// Writes the stream-lifetime histogram family `name` (no exemplars: streams make none).
pub(super) fn write_streams(out: &mut String, name: &str, family: &Family<Hist>, bounds: &[f64]) {
    write_histogram(
        out,
        name,
        "Lifetime of streamed responses (SSE, upgrades, gRPC) in seconds.",
        &ROUTE_LABELS,
        family,
        bounds,
    );
}

/// Writes `mcp_server_operation_duration_seconds` (semconv buckets) with its exemplars.
pub(super) fn write_mcp_operations(out: &mut String, family: &Family<Hist>) {
    write_histogram(
        out,
        MCP_OPERATION_DURATION_SECONDS,
        "Duration of MCP requests and notifications as the gateway saw them (OpenTelemetry mcp.server.operation.duration), with trace exemplars.",
        &MCP_OPERATION_LABELS,
        family,
        &MCP_BOUNDS,
    );
}

/// A histogram family (`label_names` in series-key order), each bucket with its exemplar if it
/// has one.
fn write_histogram(
    out: &mut String,
    name: &str,
    help: &str,
    label_names: &[&str],
    family: &Family<Hist>,
    bounds: &[f64],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    // What repeats on every bucket line is formatted once: the `le` values per family, the
    // name and labels per series. (At 10 k series the exposition
    // is ≈ 20 MB, and per-line `write!` with float formatting made most of its render time.)
    let les: Vec<String> = bounds
        .iter()
        .map(|bound| format!("{bound:?}"))
        .chain(std::iter::once("+Inf".to_owned()))
        .collect();
    let mut labels = String::new();
    let mut bucket = String::new();
    for (values, hist, created) in family.iter_created() {
        labels.clear();
        write_labels(&mut labels, label_names, values);
        bucket.clear();
        bucket.push_str(name);
        bucket.push_str("_bucket{");
        bucket.push_str(&labels);
        bucket.push_str(",le=\"");
        let mut cumulative = 0;
        for (i, count) in hist.counts.iter().enumerate() {
            cumulative += count;
            out.push_str(&bucket);
            out.push_str(les.get(i).map_or("+Inf", String::as_str));
            out.push_str("\"} ");
            let _ = write!(out, "{cumulative}");
            if let Some(Some(e)) = hist.exemplars.get(i) {
                let _ = write!(
                    out,
                    " # {{{TRACE_ID_LABEL}=\"{}\"}} {:?} {}.{:09}",
                    e.trace_id,
                    e.value,
                    e.unix_ns / 1_000_000_000,
                    e.unix_ns % 1_000_000_000
                );
            }
            out.push('\n');
        }
        write_sample_start(out, name, "_sum", &labels);
        let _ = writeln!(out, "{:?}", hist.sum);
        write_sample_start(out, name, "_count", &labels);
        let _ = writeln!(out, "{cumulative}");
        write_created(out, name, &labels, created);
    }
}
