//! The Traefik suite: real Traefik 3.7 in several set-ups (bare, wasm guests, gatetrace with
//! its collector, Traefik's own observability), each its own process, measured in the same run
//! in interleaved rounds with wrk; CPU per request from `/proc`. Written in Rust inside the
//! xtask rather than as the former shell script: it needs per-process bookkeeping (pids, CPU
//! ticks, logs to truncate, collectors to check) that shell made fragile, and unit tests.

mod curves;
mod figures;
mod process;
mod scenario;
mod stack;
mod wrk;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::bench::model::SuiteResult;
use crate::{Ctx, proc};
use figures::{Measurements, Turn};
use scenario::SCENARIOS;
use stack::{Bench, Found};
use wrk::{MANY, ONE};

/// The suite's id and title (its line in `suites.rs` names them too).
pub const SUITE: &str = "traefik";
pub const TITLE: &str = "Traefik plugin";

/// Rounds and durations of one mode.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    rounds: usize,
    many_secs: u64,
    one_secs: u64,
    warmup_secs: u64,
    curve_rounds: usize,
    curve_secs: u64,
}

const SHORT: Plan = Plan {
    rounds: 3,
    many_secs: 3,
    one_secs: 2,
    warmup_secs: 1,
    curve_rounds: 3,
    curve_secs: 1,
};

const FULL: Plan = Plan {
    rounds: 8,
    many_secs: 10,
    one_secs: 5,
    warmup_secs: 3,
    curve_rounds: 3,
    curve_secs: 5,
};

/// Time a collector gets after its scenario's turn to read the last records (it polls the
/// spool every 200 ms) and export their spans, before its CPU time is read.
const COLLECTOR_CATCH_UP: Duration = Duration::from_secs(1);

/// Runs the suite: `full` for the published rounds.
pub fn run(ctx: &Ctx, full: bool) -> Result<SuiteResult> {
    let plan = if full { FULL } else { SHORT };
    let found = Found::find(ctx)?;
    let mut bench = stack::start(&found)?;
    println!("traefik bench: warming up");
    for scenario in &SCENARIOS {
        if !bench.runs(scenario.instance) {
            continue;
        }
        let port = bench.instance_mut(scenario.instance).port;
        let result = bench
            .wrk
            .run(port, &scenario.shape.request(), MANY, plan.warmup_secs)?;
        bench.instance_mut(scenario.instance).requests += result.requests;
    }
    let measurements = measure_rounds(&mut bench, &plan)?;
    let checks = check_collectors(&bench)?;
    let curves = curves::measure(&mut bench, plan.curve_rounds, plan.curve_secs)?;
    let mut notes = notes(&ctx.root, &found, &plan, full)?;
    notes.extend(checks);
    Ok(SuiteResult {
        suite: SUITE.to_owned(),
        title: TITLE.to_owned(),
        notes,
        figures: figures::figures(&measurements),
        curves,
    })
}

/// The interleaved rounds: every scenario once per round, at one connection then 32, the
/// order rotated each round so no scenario always follows the same one. A collector's CPU is
/// counted from the start of its scenario's turn until [`COLLECTOR_CATCH_UP`] after its end.
fn measure_rounds(bench: &mut Bench, plan: &Plan) -> Result<Measurements> {
    let mut measurements = Measurements::new();
    let active: Vec<usize> = (0..SCENARIOS.len())
        .filter(|&i| bench.runs(SCENARIOS[i].instance))
        .collect();
    for round in 0..plan.rounds {
        for step in 0..active.len() {
            let index = active[(step + round) % active.len()];
            let scenario = &SCENARIOS[index];
            let request = scenario.shape.request();
            let running = bench.instance_mut(scenario.instance);
            let collector_start = running.collector_ticks()?;
            let port = running.port;
            let one = bench.wrk.run(port, &request, ONE, plan.one_secs)?;
            let (traefik_us, many) =
                bench.traefik_us_per_request(scenario.instance, &request, plan.many_secs)?;
            bench.instance_mut(scenario.instance).requests += one.requests;
            let collector_us = match collector_start {
                None => None,
                Some(start) => {
                    std::thread::sleep(COLLECTOR_CATCH_UP);
                    let end = bench
                        .instance_mut(scenario.instance)
                        .collector_ticks()?
                        .unwrap_or(start);
                    let requests = (one.requests + many.requests) as f64;
                    Some((end - start) as f64 * bench.tick_us / requests)
                }
            };
            println!(
                "traefik bench: round {}/{} {}: {:.0} req/s (1 connection), {:.0} req/s (32), \
                 Traefik {traefik_us:.1} µs/req{}",
                round + 1,
                plan.rounds,
                scenario.id,
                one.requests_per_second(),
                many.requests_per_second(),
                collector_us
                    .map(|us| format!(", collector {us:.1} µs/req"))
                    .unwrap_or_default()
            );
            measurements.turns[index].push(Turn {
                one_connection: one,
                many_connections: many,
                traefik_us,
                collector_us,
            });
        }
    }
    Ok(measurements)
}

/// Checks each collector counted the requests its Traefik served (else its CPU would not be
/// the cost of them) and exported spans; returns the counts as notes.
fn check_collectors(bench: &Bench) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for running in &bench.running {
        let Some((_, port)) = &running.collector else {
            continue;
        };
        let (status, metrics) =
            crate::demo::http::get(&format!("http://127.0.0.1:{port}/metrics"), &[])?;
        if status != 200 {
            bail!(
                "the collector of {} answered /metrics with {status}",
                running.instance.id
            );
        }
        let records = metric_sum(&metrics, "gatetrace_collector_records_received_total");
        let spans = metric_sum(&metrics, "gatetrace_collector_spans_exported_total");
        if records < running.requests as f64 * 0.95 || spans <= 0.0 {
            bail!(
                "the collector of {} received {records} records and exported {spans} spans for \
                 {} requests: the plugin, spool or exporter is not working",
                running.instance.id,
                running.requests
            );
        }
        notes.push(format!(
            "{}: wrk completed {} requests; its collector received {records} records and \
             exported {spans} spans",
            running.instance.id, running.requests
        ));
    }
    Ok(notes)
}

/// The sum of every sample of `name` in a Prometheus text exposition.
fn metric_sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What the run was, for the notes under the title.
fn notes(root: &Path, found: &Found, plan: &Plan, full: bool) -> Result<Vec<String>> {
    let version = proc::capture(
        Command::new(&found.traefik).arg("version"),
        Duration::from_secs(30),
    )?;
    let version = version
        .lines()
        .find_map(|line| line.trim().strip_prefix("Version:"))
        .map_or("unknown", str::trim)
        .to_owned();
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let shown = |path: &Path| {
        path.strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let mut notes = vec![
        format!(
            "Traefik {version}; plugin {} ({} bytes); loopback backend answering 200 (`bench_backend`, release)",
            shown(&found.plugin_wasm),
            size(&found.plugin_wasm)
        ),
        format!(
            "{} mode: {} interleaved rounds; per round and scenario wrk runs {} s at 1 connection \
             (-t1 -c1) then {} s at 32 (-t2 -c32); curves: {} round(s) of {} s per point",
            if full { "full" } else { "short" },
            plan.rounds,
            plan.one_secs,
            plan.many_secs,
            plan.curve_rounds,
            plan.curve_secs
        ),
        "each scenario has its own Traefik process; MCP POSTs are compared with bare Traefik \
         answering the same POST; ratios are per round, side by side"
            .to_owned(),
        "gatetrace: default plugin config (service and spool dir only); its collector (release \
         build) tails the spool, writes its access log to a file and exports spans over \
         OTLP/HTTP; its CPU is counted from the start of its scenario's turn to 1 s after its end \
         (time to catch up), over the requests of both runs"
            .to_owned(),
        "Traefik's own observability: Prometheus metrics on a separate entry point, OTLP/HTTP \
         tracing (sample rate 1), JSON access log to a file; neither /metrics is scraped"
            .to_owned(),
        "the OTLP receiver is a sink (the backend program answering 200 to every export and \
         discarding it); its CPU is excluded"
            .to_owned(),
        "CPU per request is Traefik's (and the collector's) user + system time from \
         /proc/<pid>/stat over the 32-connection run, divided by the requests wrk completed"
            .to_owned(),
    ];
    if let Some(variant) = &found.variant_wasm {
        notes.push(format!(
            "the other build (GATETRACE_BENCH_VARIANT_WASM): {} ({} bytes), same config, its own \
             Traefik and collector",
            shown(variant),
            size(variant)
        ));
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_a_metric_across_its_series_only() {
        let text = "# TYPE gatetrace_collector_records_received_total counter\n\
                    gatetrace_collector_records_received_total{source=\"spool\"} 1200\n\
                    gatetrace_collector_records_received_total{source=\"http\"} 34\n\
                    gatetrace_collector_records_received_total_other 99\n\
                    gatetrace_collector_spans_exported_total 1234\n";
        assert_eq!(
            metric_sum(text, "gatetrace_collector_records_received_total"),
            1234.0
        );
        assert_eq!(
            metric_sum(text, "gatetrace_collector_spans_exported_total"),
            1234.0
        );
        assert_eq!(metric_sum(text, "missing"), 0.0);
    }
}
