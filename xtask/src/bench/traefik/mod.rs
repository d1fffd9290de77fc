//! The Traefik suite: real Traefik 3.7 in several set-ups (bare, wasm guests, gatetrace with
//! its collector, Traefik's own observability), each its own process, measured in the same run
//! in interleaved rounds with wrk; CPU per request from `/proc`. Written in Rust inside the
//! xtask rather than as the former shell script: it needs per-process bookkeeping (pids, CPU
//! ticks, logs to truncate, collectors to check) that shell made fragile, and unit tests.

mod curves;
mod figures;
mod process;
mod scenario;
mod wrk;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::bench::model::SuiteResult;
use crate::{Ctx, proc, tools};
use figures::{Measurements, Turn};
use process::{Service, free_port};
use scenario::{Guest, INSTANCES, Instance, Ports, SCENARIOS};
use wrk::{Load, Wrk};

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
    curve_rounds: 1,
    curve_secs: 2,
};

const FULL: Plan = Plan {
    rounds: 8,
    many_secs: 10,
    one_secs: 5,
    warmup_secs: 3,
    curve_rounds: 3,
    curve_secs: 5,
};

/// wrk's two loads: one connection (latency without queueing) and 32 (throughput).
const ONE: Load = Load {
    connections: 1,
    threads: 1,
};
const MANY: Load = Load {
    connections: 32,
    threads: 2,
};

/// Longest a release build of the backend or the collector may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(2400);
/// Time for the collectors to read the last records before their CPU is read.
const SETTLE: Duration = Duration::from_secs(2);

/// A Traefik instance running, with its collector.
#[derive(Debug)]
pub struct Running {
    instance: &'static Instance,
    dir: PathBuf,
    port: u16,
    traefik: Service,
    collector: Option<(Service, u16)>,
    /// Requests wrk completed against it (warm-up included), for the record check.
    requests: u64,
}

impl Running {
    /// Empties the files that grow with every request (the writers append, so this is safe).
    fn truncate_logs(&self) -> Result<()> {
        for file in [
            self.dir.join("access.log"),
            self.dir.join("collector-access.log"),
            self.dir.join("spool/calibration.ndjson"),
        ] {
            if file.exists() {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&file)?
                    .set_len(0)?;
            }
        }
        Ok(())
    }

    fn collector_ticks(&self) -> Result<Option<u64>> {
        self.collector
            .as_ref()
            .map(|(collector, _)| collector.cpu_ticks())
            .transpose()
    }
}

/// Everything a run starts; dropped in reverse (services first, then the work directory).
#[derive(Debug)]
pub struct Bench {
    pub wrk: Wrk,
    pub running: Vec<Running>,
    pub tick_us: f64,
    _otlp_sink: Service,
    _backend: Service,
    _work: WorkDir,
}

/// Runs the suite: `full` for the published rounds.
pub fn run(ctx: &Ctx, full: bool) -> Result<SuiteResult> {
    let plan = if full { FULL } else { SHORT };
    let found = Found::find(ctx)?;
    let mut bench = start(&found)?;
    println!("traefik bench: warming up");
    for scenario in &SCENARIOS {
        let port = bench.instance_mut(scenario.instance).port;
        let result = bench
            .wrk
            .run(port, &scenario.shape.request(), MANY, plan.warmup_secs)?;
        bench.instance_mut(scenario.instance).requests += result.requests;
    }
    let measurements = measure_rounds(&mut bench, &plan)?;
    let checks = check_collectors(&bench)?;
    let curves = curves::measure(&mut bench, plan.curve_rounds, plan.curve_secs)?;
    let mut notes = notes(&found, &plan, full)?;
    notes.extend(checks);
    Ok(SuiteResult {
        suite: "traefik".to_owned(),
        title: "Traefik plugin".to_owned(),
        notes,
        figures: figures::figures(&measurements),
        curves,
    })
}

impl Bench {
    fn instance_mut(&mut self, id: &str) -> &mut Running {
        self.running
            .iter_mut()
            .find(|r| r.instance.id == id)
            .unwrap_or_else(|| panic!("no Traefik instance {id}"))
    }

    /// Traefik's CPU µs per request while wrk sends `request` to `id`.
    pub fn traefik_us_per_request(
        &mut self,
        id: &str,
        request: &wrk::Request,
        seconds: u64,
    ) -> Result<(f64, wrk::WrkResult)> {
        let tick_us = self.tick_us;
        let port = self.instance_mut(id).port;
        let before = self.instance_mut(id).traefik.cpu_ticks()?;
        let result = self.wrk.run(port, request, MANY, seconds)?;
        let running = self.instance_mut(id);
        let ticks = running.traefik.cpu_ticks()? - before;
        running.requests += result.requests;
        running.truncate_logs()?;
        Ok((ticks as f64 * tick_us / result.requests as f64, result))
    }
}

/// The interleaved rounds: every scenario once per round, at one connection then 32, the
/// order rotated each round so no scenario always follows the same one.
fn measure_rounds(bench: &mut Bench, plan: &Plan) -> Result<Measurements> {
    let mut measurements = Measurements::new();
    // Per scenario: the collector's ticks at the start of each of its turns.
    let mut collector_marks: Vec<Vec<u64>> = vec![Vec::new(); SCENARIOS.len()];
    let mut turn_requests: Vec<Vec<u64>> = vec![Vec::new(); SCENARIOS.len()];
    for round in 0..plan.rounds {
        for step in 0..SCENARIOS.len() {
            let index = (step + round) % SCENARIOS.len();
            let scenario = &SCENARIOS[index];
            let request = scenario.shape.request();
            let running = bench.instance_mut(scenario.instance);
            if let Some(ticks) = running.collector_ticks()? {
                collector_marks[index].push(ticks);
            }
            let port = running.port;
            let one = bench.wrk.run(port, &request, ONE, plan.one_secs)?;
            let (traefik_us, many) =
                bench.traefik_us_per_request(scenario.instance, &request, plan.many_secs)?;
            bench.instance_mut(scenario.instance).requests += one.requests;
            turn_requests[index].push(one.requests + many.requests);
            println!(
                "traefik bench: round {}/{} {}: {:.0} req/s (1 connection), {:.0} req/s (32), \
                 Traefik {traefik_us:.1} µs/req",
                round + 1,
                plan.rounds,
                scenario.id,
                one.requests_per_second(),
                many.requests_per_second()
            );
            measurements.turns[index].push(Turn {
                one_connection: one,
                many_connections: many,
                traefik_us,
                collector_us: None,
            });
        }
    }
    std::thread::sleep(SETTLE);
    for (index, scenario) in SCENARIOS.iter().enumerate() {
        let running = bench.instance_mut(scenario.instance);
        let Some(end) = running.collector_ticks()? else {
            continue;
        };
        let marks = &mut collector_marks[index];
        marks.push(end);
        for (round, turn) in measurements.turns[index].iter_mut().enumerate() {
            let ticks = marks[round + 1] - marks[round];
            turn.collector_us =
                Some(ticks as f64 * bench.tick_us / turn_requests[index][round] as f64);
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

/// The programs and files a run needs.
#[derive(Debug)]
struct Found {
    traefik: PathBuf,
    wrk: PathBuf,
    plugin_wasm: PathBuf,
    fixture_wasm: PathBuf,
    plugin_manifest: PathBuf,
    backend: PathBuf,
    collector: PathBuf,
}

impl Found {
    fn find(ctx: &Ctx) -> Result<Self> {
        let traefik = match std::env::var_os("GATETRACE_TRAEFIK") {
            Some(path) => PathBuf::from(path),
            None => tools::traefik_binary(ctx)?,
        };
        let wasm_dir =
            std::env::var_os("GATETRACE_WASM_DIR").map_or_else(|| ctx.wasm_dir(), PathBuf::from);
        let plugin_wasm = wasm_dir.join("gatetrace-traefik.wasm");
        let fixture_wasm = wasm_dir.join("fixtures/http-guest.wasm");
        for file in [&plugin_wasm, &fixture_wasm] {
            if !file.is_file() {
                bail!(
                    "{} is missing: run `cargo xtask wasm` first",
                    file.display()
                );
            }
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| ctx.root.join("target"), PathBuf::from);
        println!("traefik bench: release builds of the backend and the collector");
        proc::run(
            crate::cargo().current_dir(&ctx.root).args([
                "build",
                "--release",
                "-p",
                "gatetrace-traefik",
                "--example",
                "bench_backend",
            ]),
            BUILD_TIMEOUT,
        )?;
        proc::run(
            crate::cargo().current_dir(&ctx.root).args([
                "build",
                "--release",
                "-p",
                "gatetrace-collector",
                "--bin",
                "gatetrace-collector",
            ]),
            BUILD_TIMEOUT,
        )?;
        Ok(Self {
            traefik,
            wrk: tools::wrk_binary()?,
            plugin_wasm,
            fixture_wasm,
            plugin_manifest: ctx.root.join("plugin/http-wasm/.traefik.yml"),
            backend: target.join("release/examples/bench_backend"),
            collector: target.join("release/gatetrace-collector"),
        })
    }
}

/// A temporary directory removed when dropped.
#[derive(Debug)]
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the backend, the OTLP sink, every Traefik instance and its collector.
fn start(found: &Found) -> Result<Bench> {
    let work =
        WorkDir(std::env::temp_dir().join(format!("gatetrace-bench-{}", std::process::id())));
    std::fs::create_dir_all(work.0.join("wrk"))?;
    let backend_port = free_port()?;
    let mut backend = Service::start(
        "backend",
        backend_command(&found.backend, backend_port),
        &work.0.join("backend.log"),
    )?;
    backend.wait_for_port(backend_port)?;
    // The OTLP receiver is a sink: the same backend, answering every export with 200 and
    // discarding it; its CPU is not counted.
    let sink_port = free_port()?;
    let mut otlp_sink = Service::start(
        "OTLP sink",
        backend_command(&found.backend, sink_port),
        &work.0.join("otlp-sink.log"),
    )?;
    otlp_sink.wait_for_port(sink_port)?;
    let mut running = Vec::new();
    for instance in &INSTANCES {
        println!("traefik bench: starting Traefik {}", instance.id);
        running.push(start_instance(
            found,
            &work.0,
            instance,
            backend_port,
            sink_port,
        )?);
    }
    Ok(Bench {
        wrk: Wrk {
            binary: found.wrk.clone(),
            scripts: work.0.join("wrk"),
        },
        running,
        tick_us: 1e6 / process::ticks_per_second()? as f64,
        _otlp_sink: otlp_sink,
        _backend: backend,
        _work: work,
    })
}

fn backend_command(binary: &Path, port: u16) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg(port.to_string());
    cmd
}

fn start_instance(
    found: &Found,
    work: &Path,
    instance: &'static Instance,
    backend: u16,
    otlp_sink: u16,
) -> Result<Running> {
    let dir = work.join(instance.id);
    std::fs::create_dir_all(&dir)?;
    let ports = Ports {
        web: free_port()?,
        metrics: free_port()?,
        backend,
        otlp_sink,
    };
    let wasm = match instance.guest {
        Guest::Fixture { .. } => &found.fixture_wasm,
        _ => &found.plugin_wasm,
    };
    let config =
        scenario::write_traefik_config(instance, &dir, &ports, wasm, &found.plugin_manifest)?;
    let mut cmd = Command::new(&found.traefik);
    cmd.current_dir(&dir)
        .arg(format!("--configFile={}", config.display()));
    let mut traefik = Service::start(
        &format!("Traefik {}", instance.id),
        cmd,
        &dir.join("traefik.log"),
    )?;
    traefik.wait_for_port(ports.web)?;
    let url = format!("http://127.0.0.1:{}/", ports.web);
    traefik.wait_until("answered 200 through its route", || {
        crate::demo::http::answers(&url)
    })?;
    let collector = if instance.collector {
        let port = free_port()?;
        let mut cmd = Command::new(&found.collector);
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--spool-dir")
            .arg(dir.join("spool"))
            .arg("--access-log")
            .arg(dir.join("collector-access.log"))
            .args(["--log", "warn"])
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{otlp_sink}"),
            )
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
        let mut collector = Service::start(
            &format!("collector of {}", instance.id),
            cmd,
            &dir.join("collector.log"),
        )?;
        collector.wait_for_port(port)?;
        Some((collector, port))
    } else {
        None
    };
    Ok(Running {
        instance,
        dir,
        port: ports.web,
        traefik,
        collector,
        requests: 0,
    })
}

/// What the run was, for the notes under the title.
fn notes(found: &Found, plan: &Plan, full: bool) -> Result<Vec<String>> {
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
    Ok(vec![
        format!(
            "Traefik {version}; plugin {} ({} bytes); loopback backend answering 200 (`bench_backend`, release)",
            found.plugin_wasm.display(),
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
         OTLP/HTTP; its CPU is counted from the start of a turn to the start of the next"
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
    ])
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
