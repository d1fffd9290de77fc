//! The whole suite: runs every measurement in its own process of this binary (pinned to the
//! measured core), then turns their JSON into the suite's figures, curves and notes.

use serde_json::Value;

use crate::proc::{can_pin, load_average, measure};
use crate::report::{Curve, Goal, Suite, median};
use crate::sampling::RATIOS_PER_MILLE;

/// Live series counts measured, each in a fresh process.
const SERIES: [u64; 3] = [1_000, 10_000, 100_000];
/// The series count the memory and render goals are stated for.
const GOAL_SERIES: u64 = 10_000;

const INGEST: &str =
    "Ingest on one core (records per CPU-second, ratios to serde_json parsing the same bytes)";
const MEMORY: &str = "Memory and /metrics by live series";
const VISIBLE: &str = "Record → visible in /metrics (real HTTP server on loopback)";
const EXPORT: &str = "OTLP span export (exporter on core 0, receiver on core 1)";

/// How much each measurement does: `--short` or `--full`.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    rounds: usize,
    ingest_records: u64,
    series_rounds: usize,
    steady_records: u64,
    visible_samples: u64,
    spans: u64,
    down_offers: u64,
    sampling_rounds: usize,
    sampling_records: u64,
}

impl Plan {
    pub const SHORT: Self = Self {
        rounds: 5,
        ingest_records: 200_000,
        series_rounds: 1,
        steady_records: 100_000,
        visible_samples: 5,
        spans: 100_000,
        down_offers: 200_000,
        sampling_rounds: 1,
        sampling_records: 100_000,
    };
    pub const FULL: Self = Self {
        rounds: 8,
        ingest_records: 500_000,
        series_rounds: 3,
        steady_records: 300_000,
        visible_samples: 20,
        spans: 200_000,
        down_offers: 1_000_000,
        sampling_rounds: 3,
        sampling_records: 200_000,
    };
}

fn args(words: &[&dyn std::fmt::Display]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| a / b).collect()
}

/// Runs the suite under `plan`.
pub fn run(plan: Plan, mode: &str) -> Suite {
    let load_before = load_average();
    let mut suite = Suite {
        suite: "collector",
        title: "Collector",
        notes: vec![
            format!(
                "{mode}: every measurement in its own process of the bench, {}; OTLP receivers in \
                 their own process on core 1",
                if can_pin() {
                    "pinned to core 0 with taskset -c 0"
                } else {
                    "NOT pinned (no taskset)"
                }
            ),
            format!(
                "ingest: {} rounds of {} records (≈ 520 bytes of NDJSON each, a realistic mix); HTTP \
                 without --checkpoint (an answer waits for the aggregator, not a disk sync), 2 \
                 concurrent clients in another process on core 1 posting {}-record bodies (their CPU \
                 is not counted: the figure is the collector's, hyper included); spool with a \
                 checkpoint every 300 ms, timed from start until /metrics (polled every 25 ms, in \
                 the measured process) counts every record; rates per CPU-second of the \
                 whole process (threads' schedstat), so a starved round does not skew a ratio; the \
                 collector and this suite allocate with jemalloc (the collector's global allocator), \
                 the serde_json reference too",
                plan.rounds,
                plan.ingest_records,
                crate::records::BATCH
            ),
            "a live series: requests_total and the latency histogram of one route (1 in 10 with \
             exemplars), in a fresh collector process per count, RSS read after every series exists \
             and 5 renders of /metrics (what the allocator kept of them included), peak RSS \
             (VmHWM) with the renders' text: at 100 k series that text is ≈ 195 MB"
                .to_owned(),
        ],
        figures: Vec::new(),
        curves: Vec::new(),
    };
    ingest(&mut suite, plan);
    series(&mut suite, plan);
    visible(&mut suite, plan);
    export(&mut suite, plan);
    sampling(&mut suite, plan);
    suite.notes.push(format!(
        "load average (1 min) {load_before} at start, {} at end: the machine is shared, absolute \
         figures are machine-dependent; ratios are measured side by side in one process per round",
        load_average()
    ));
    suite
}

fn ingest(suite: &mut Suite, plan: Plan) {
    let out = measure(&args(&[&"ingest", &plan.rounds, &plan.ingest_records]));
    let serde = numbers(&out["serde_json"]);
    let goal = Some(Goal::AtLeast(0.76));
    for (key, name) in [
        ("http", "POST /v1/records (loopback HTTP)"),
        ("spool", "spool tailing end to end"),
        ("decode_aggregate", "decode + aggregate, no I/O"),
    ] {
        let rates = numbers(&out[key]);
        suite.figure(
            INGEST,
            format!("{name} vs serde_json parse"),
            "ratio",
            ratios(&rates, &serde),
            goal,
            false,
        );
        suite.figure(
            INGEST,
            format!("{name}, per CPU-second"),
            "records/s",
            rates,
            None,
            true,
        );
    }
    let us = |key: &str| 1e6 / median(&numbers(&out[key]));
    suite.notes.push(format!(
        "what limits ingest, in µs of CPU per record (medians): serde_json's parse alone {:.2}; \
         decode + aggregate {:.2} (the same serde parse in the core's decoder, label bounds, then \
         the aggregate: series lookups, sessions, exemplars); spool end to end {:.2} (adds reading \
         the files, framing, the 300 ms checkpoints and the collector's start); HTTP {:.2} (adds \
         hyper). perf (cpu-clock) of the ingest run: serde_json's string and struct \
         parsing is the largest share, then allocating and freeing the records' strings (with \
         glibc's malloc ≈ 12 %, HTTP 0.64 and spool 0.67 of the reference in one run; with \
         jemalloc 0.76-0.87 and 0.76-0.84 in the next; the spool framing's byte-by-byte newline \
         search is memchr since). The 0.76-0.84 of \
         issue 15 were best-of-3 wall-clock runs (0.63-0.84 on other runs that day, the retired \
         collector/bench/RESULTS.md); the ratios here are per CPU-second, every round counted",
        us("serde_json"),
        us("decode_aggregate"),
        us("spool"),
        us("http")
    ));
    suite.figure(
        INGEST,
        "serde_json parse into Record, per CPU-second",
        "records/s",
        serde,
        None,
        true,
    );
    for (key, name) in [
        ("wall_serde_json", "serde_json parse"),
        ("wall_http", "POST /v1/records"),
        ("wall_spool", "spool tailing"),
    ] {
        suite.figure(
            INGEST,
            format!("{name}, wall clock"),
            "records/s",
            numbers(&out[key]),
            None,
            true,
        );
    }
}

fn series(suite: &mut Suite, plan: Plan) {
    let mut runs: Vec<Vec<Value>> = vec![Vec::new(); SERIES.len()];
    for _ in 0..plan.series_rounds {
        for (i, n) in SERIES.into_iter().enumerate() {
            runs[i].push(measure(&args(&[&"series", &n, &plan.steady_records])));
        }
    }
    let field = |runs: &[Value], key: &str| -> Vec<f64> {
        runs.iter()
            .flat_map(|r| {
                if r[key].is_array() {
                    numbers(&r[key])
                } else {
                    vec![r[key].as_f64().unwrap_or(f64::NAN)]
                }
            })
            .collect()
    };
    let mut rss = Vec::new();
    let mut render = Vec::new();
    let mut cpu = Vec::new();
    for (n, runs) in SERIES.into_iter().zip(&runs) {
        let goal = (n == GOAL_SERIES).then_some(Goal::AtMost(64.0));
        let samples = field(runs, "rss_mib");
        rss.push([n as f64, median(&samples)]);
        suite.figure(
            MEMORY,
            format!("RSS at {n} live series"),
            "MiB",
            samples,
            goal,
            true,
        );
        suite.figure(
            MEMORY,
            format!("peak RSS at {n} live series (renders included)"),
            "MiB",
            field(runs, "peak_rss_mib"),
            goal,
            true,
        );
        let samples = field(runs, "render_cpu_ms");
        render.push([n as f64, median(&samples)]);
        let goal = (n == GOAL_SERIES).then_some(Goal::AtMost(20.0));
        suite.figure(
            MEMORY,
            format!("/metrics render at {n} live series, CPU time"),
            "ms",
            samples,
            goal,
            true,
        );
        suite.figure(
            MEMORY,
            format!("first /metrics render at {n} live series (fresh memory), CPU time"),
            "ms",
            field(runs, "first_render_cpu_ms"),
            None,
            true,
        );
        let samples = field(runs, "render_ms");
        suite.figure(
            MEMORY,
            format!("/metrics render at {n} live series, wall clock"),
            "ms",
            samples,
            None,
            true,
        );
        cpu.push([n as f64, median(&field(runs, "cpu_us_per_record"))]);
    }
    let bytes = median(&field(&runs[1], "exposition_bytes"));
    suite.notes.push(format!(
        "/metrics at {} live series is {:.1} MB ({:.0} bytes per series: the histogram's 12 \
         bucket lines, _sum, _count, _created and the counter, each repeating the labels); render \
         CPU grows with it (curve). The render figures are the scrapes after the first: the \
         collector keeps the buffer of the last exposition (up to 32 MiB, ≈ 16 k series) for the \
         next, because writing that much text into fresh memory costs as much in page faults as \
         the formatting (the first render, into fresh memory, is listed apart; perf of it: page \
         faults and clearing pages about half the time). The le values and label prefix are \
         formatted once per family and series. The overview page renders and parses the same \
         text every 5 s: a standing cost proportional to the series",
        SERIES[1],
        bytes / 1e6,
        bytes / SERIES[1] as f64
    ));
    suite.figure(
        MEMORY,
        "RSS of an idle collector",
        "MiB",
        field(&runs[0], "rss_idle_mib"),
        None,
        true,
    );
    suite.curves.push(Curve {
        name: "collector-rss-vs-series",
        title: "Collector RSS vs live series",
        x_label: "live series",
        y_label: "RSS (MiB)",
        points: rss,
    });
    suite.curves.push(Curve {
        name: "collector-render-vs-series",
        title: "/metrics render CPU time vs live series",
        x_label: "live series",
        y_label: "render CPU (ms)",
        points: render,
    });
    suite.curves.push(Curve {
        name: "collector-cpu-vs-series",
        title: "Collector CPU per record vs live series (POST /v1/records through the router)",
        x_label: "live series",
        y_label: "CPU per record (µs)",
        points: cpu,
    });
}

fn visible(suite: &mut Suite, plan: Plan) {
    let out = measure(&args(&[&"visible", &plan.visible_samples]));
    suite.notes.push(format!(
        "record → visible: an HTTP answer comes after the aggregator applied the batch, so the \
         next scrape shows it; a spool line waits for the tailer's next poll (every {} ms, \
         --spool-poll-ms), which bounds that latency",
        out["spool_poll_ms"]
    ));
    let goal = Some(Goal::AtMost(1000.0));
    suite.figure(
        VISIBLE,
        "POST /v1/records → visible",
        "ms",
        numbers(&out["http_ms"]),
        goal,
        true,
    );
    suite.figure(
        VISIBLE,
        format!(
            "spool line → visible (tailer polls every {} ms)",
            out["spool_poll_ms"]
        ),
        "ms",
        numbers(&out["spool_ms"]),
        goal,
        true,
    );
}

fn export(suite: &mut Suite, plan: Plan) {
    let out = measure(&args(&[
        &"otlp",
        &plan.rounds,
        &plan.spans,
        &plan.down_offers,
    ]));
    let cases = &out["cases"];
    let rate = |case: &str, key: &str| numbers(&cases[case][key]);
    suite.notes.push(format!(
        "OTLP: {} rounds of {} spans (13 attribute keys), batch {}, queue {}, the new exporter with \
         up to N = {} export requests in flight, the SDK exporter (sdk_baseline/) with one; spans \
         per exporter CPU-second = spans / (utime + stime of the exporter process)",
        plan.rounds, out["spans"], out["batch"], out["queue"], out["max_concurrent_exports"]
    ));
    let goal = Some(Goal::AtLeast(250_000.0));
    for (protocol, name) in [("grpc", "gRPC"), ("http", "HTTP/protobuf")] {
        let new = rate(&format!("new-{protocol}-none"), "cpu");
        let old = rate(&format!("old-{protocol}-none"), "cpu");
        suite.figure(
            EXPORT,
            format!("{name}: spans per exporter CPU-second"),
            "spans/s",
            new.clone(),
            goal,
            true,
        );
        suite.figure(
            EXPORT,
            format!("{name}: new exporter / SDK exporter (spans per CPU-second)"),
            "ratio",
            ratios(&new, &old),
            None,
            false,
        );
        suite.figure(
            EXPORT,
            format!("{name}: spans/s wall clock"),
            "spans/s",
            rate(&format!("new-{protocol}-none"), "wall"),
            None,
            true,
        );
        suite.figure(
            EXPORT,
            format!("{name} gzip: spans per exporter CPU-second"),
            "spans/s",
            rate(&format!("new-{protocol}-gzip"), "cpu"),
            None,
            true,
        );
        suite.figure(
            EXPORT,
            format!("{name}: spans per receiver CPU-second"),
            "spans/s",
            rate(&format!("new-{protocol}-none"), "receiver_cpu"),
            None,
            true,
        );
    }
    let share: Vec<f64> = ["grpc", "http"]
        .iter()
        .flat_map(|p| {
            ratios(
                &rate(&format!("new-{p}-none"), "wall"),
                &rate(&format!("new-{p}-none"), "cpu"),
            )
        })
        .collect();
    suite.notes.push(format!(
        "OTLP wall-clock rates are what the shared machine allowed: wall rate / CPU rate (the \
         share of core 0 the exporter process got) had median {:.2}; the receiver needs about as \
         much CPU per span as the exporter (spans per receiver CPU-second), so on a dedicated \
         pair of cores the pair tops out near the receiver's rate",
        median(&share)
    ));
    let down = &out["receiver_down"];
    suite.figure(
        EXPORT,
        format!(
            "receiver down: RSS growth after {} offers (holds {} of capacity {})",
            down["offers"], down["held"], down["capacity"]
        ),
        "MiB",
        vec![down["rss_growth_mib"].as_f64().unwrap_or(f64::NAN)],
        None,
        true,
    );
}

fn sampling(suite: &mut Suite, plan: Plan) {
    let out = measure(&args(&[
        &"sampling",
        &plan.sampling_rounds,
        &plan.sampling_records,
    ]));
    let per_ratio = out["cpu_us_per_record"]
        .as_array()
        .expect("per ratio")
        .clone();
    let points = RATIOS_PER_MILLE
        .into_iter()
        .zip(per_ratio)
        .map(|(per_mille, samples)| [per_mille as f64 / 1000.0, median(&numbers(&samples))])
        .collect();
    suite.curves.push(Curve {
        name: "collector-cpu-vs-sampling",
        title: "Collector CPU per record vs sampling ratio (spans exported over OTLP HTTP/protobuf)",
        x_label: "sampling ratio",
        y_label: "CPU per record (µs)",
        points,
    });
}
