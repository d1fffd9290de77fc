//! The processes of a Traefik run: the backend, the OTLP sink, each Traefik instance and its
//! collector, started from release builds and stopped (and their files removed) when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

use super::process::{self, Service, free_port};
use super::scenario::{self, Guest, INSTANCES, Instance, Ports};
use super::wrk::{self, MANY, Wrk};
use crate::{Ctx, proc, tools, wasm};

/// Longest a release build of the backend or the collector may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(2400);

/// A Traefik instance running, with its collector.
#[derive(Debug)]
pub struct Running {
    pub instance: &'static Instance,
    dir: PathBuf,
    pub port: u16,
    pub traefik: Service,
    /// The collector and its HTTP port.
    pub collector: Option<(Service, u16)>,
    /// Requests wrk completed against it (warm-up included), for the record check.
    pub requests: u64,
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

    /// The collector's CPU ticks so far, if this instance has one.
    pub fn collector_ticks(&self) -> Result<Option<u64>> {
        self.collector
            .as_ref()
            .map(|(collector, _)| collector.cpu_ticks())
            .transpose()
    }
}

/// Everything a run starts. Fields drop in order: the Traefiks and collectors, the sink, the
/// backend, then the work directory.
#[derive(Debug)]
pub struct Bench {
    pub wrk: Wrk,
    pub running: Vec<Running>,
    pub tick_us: f64,
    _otlp_sink: Service,
    _backend: Service,
    _work: WorkDir,
}

impl Bench {
    /// Whether the instance `id` runs (the variant only runs when one is given).
    pub fn runs(&self, id: &str) -> bool {
        self.running.iter().any(|r| r.instance.id == id)
    }

    /// The running instance `id` (one of [`INSTANCES`]).
    pub fn instance_mut(&mut self, id: &str) -> &mut Running {
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

/// The programs and files a run needs.
#[derive(Debug)]
pub struct Found {
    pub traefik: PathBuf,
    wrk: PathBuf,
    pub plugin_wasm: PathBuf,
    /// Another build of the plugin measured in the same rounds (`GATETRACE_BENCH_VARIANT_WASM`).
    pub variant_wasm: Option<PathBuf>,
    fixture_wasm: PathBuf,
    plugin_manifest: PathBuf,
    backend: PathBuf,
    collector: PathBuf,
}

impl Found {
    pub fn find(ctx: &Ctx) -> Result<Self> {
        let traefik = match std::env::var_os("GATETRACE_TRAEFIK") {
            Some(path) => PathBuf::from(path),
            None => tools::traefik_binary(ctx)?,
        };
        // The plugin as the checkout has it (`cargo xtask wasm`), unless told where builds are.
        let wasm_dir = match std::env::var_os("GATETRACE_WASM_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => wasm::build_all(ctx)?,
        };
        let plugin_wasm = wasm_dir.join("gatetrace-traefik.wasm");
        let fixture_wasm = wasm_dir.join("fixtures/http-guest.wasm");
        let variant_wasm = std::env::var_os("GATETRACE_BENCH_VARIANT_WASM").map(PathBuf::from);
        for file in [&plugin_wasm, &fixture_wasm]
            .into_iter()
            .chain(&variant_wasm)
        {
            if !file.is_file() {
                bail!(
                    "{} is missing (GATETRACE_WASM_DIR points where `cargo xtask wasm` did not write)",
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
            wrk: match std::env::var_os("GATETRACE_WRK") {
                Some(path) => PathBuf::from(path),
                None => tools::wrk_binary()?,
            },
            plugin_wasm,
            variant_wasm,
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
pub fn start(found: &Found) -> Result<Bench> {
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
        if instance.guest == Guest::GatetraceVariant && found.variant_wasm.is_none() {
            continue;
        }
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
    let wasm = match (instance.guest, &found.variant_wasm) {
        (Guest::Fixture { .. }, _) => &found.fixture_wasm,
        (Guest::GatetraceVariant, Some(variant)) => variant,
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
