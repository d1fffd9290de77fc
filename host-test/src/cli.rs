//! What `gatetrace-host run` and `bench` do: open a plugin under a profile, drive scripted
//! requests, and write a readable report (or timing numbers).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::guest::{HostCalls, LogLine};
use crate::headers::Headers;
use crate::http_wasm::{self, TraefikHost, TraefikOptions};
use crate::proxy::{CallResponse, CallState, Profile, ProxyHost, ProxyOptions};
use crate::requests::Scripted;
use crate::wasi::{Mount, WasiOptions};

/// Where and how to run a plugin.
#[derive(Debug, Clone)]
pub struct PluginSetup {
    /// The `.wasm` file.
    pub plugin: PathBuf,
    /// `traefik`, `envoy` or `kong`.
    pub profile: String,
    /// Config file (Traefik: JSON/YAML middleware config; proxy-wasm: plugin configuration bytes).
    pub config: Option<PathBuf>,
    /// Traefik mounts, `host:guest[:ro]`.
    pub mounts: Vec<String>,
    /// proxy-wasm clusters sent to real addresses (`name=host:port`).
    pub clusters: Vec<String>,
    /// proxy-wasm clusters the host knows and the harness answers itself (Envoy rejects
    /// calls to any other with BAD_ARGUMENT).
    pub known_clusters: Vec<String>,
    /// Status the harness answers scripted `proxy_http_call`s with.
    pub call_status: u16,
}

/// A running plugin under either ABI.
#[derive(Debug)]
pub enum Host {
    /// http-wasm under Traefik's rules.
    Traefik(Box<TraefikHost>),
    /// proxy-wasm under Envoy's or Kong's rules.
    Proxy(Box<ProxyHost>),
}

fn read_config(path: Option<&Path>) -> anyhow::Result<Option<Vec<u8>>> {
    path.map(|p| {
        std::fs::read(p).with_context(|| format!("cannot read config file {}", p.display()))
    })
    .transpose()
}

/// Loads the plugin under the profile.
///
/// # Errors
/// Bad files (named), an unknown profile, or the plugin refusing to start.
pub fn open(setup: &PluginSetup) -> anyhow::Result<Host> {
    let config = read_config(setup.config.as_deref())?;
    if setup.profile == "traefik" {
        let mut options = TraefikOptions::default();
        if let (Some(bytes), Some(path)) = (&config, &setup.config) {
            let value: serde_json::Value = serde_yaml::from_slice(bytes)
                .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
            anyhow::ensure!(
                value.is_object(),
                "config file {}: must be a mapping of settings",
                path.display()
            );
            options.config = http_wasm::traefik_config(&value);
        }
        options.wasi = WasiOptions {
            mounts: setup
                .mounts
                .iter()
                .map(|m| Mount::parse(m))
                .collect::<anyhow::Result<_>>()?,
            ..WasiOptions::traefik()
        };
        return Ok(Host::Traefik(Box::new(TraefikHost::from_file(
            &setup.plugin,
            options,
        )?)));
    }
    let mut options = ProxyOptions::new(Profile::parse(&setup.profile)?);
    options.plugin_config = config.unwrap_or_default();
    for spec in &setup.clusters {
        let (name, addr) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--cluster {spec:?}: expected name=host:port"))?;
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("--cluster {spec:?}: bad address"))?;
        options.real_clusters.insert(name.to_owned(), addr);
    }
    options.clusters.clone_from(&setup.known_clusters);
    Ok(Host::Proxy(Box::new(ProxyHost::from_file(
        &setup.plugin,
        options,
    )?)))
}

fn header_diff(out: &mut String, before: &Headers, after: &Headers) {
    for (k, v) in after.pairs() {
        if !before.get_all(k).contains(&v.as_str()) {
            let _ = writeln!(out, "      + {k}: {v}");
        }
    }
    for (k, v) in before.pairs() {
        if !after.get_all(k).contains(&v.as_str()) {
            let _ = writeln!(out, "      - {k}: {v}");
        }
    }
}

fn calls_line(calls: &HostCalls) -> String {
    calls
        .iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn logs(out: &mut String, lines: &[LogLine]) {
    for line in lines {
        let _ = writeln!(out, "    log {line}");
    }
}

/// New lines appended under the mounted directories since the last look.
#[derive(Debug, Default)]
struct SpoolWatch {
    dirs: Vec<PathBuf>,
    seen: BTreeMap<PathBuf, usize>,
}

impl SpoolWatch {
    fn new(mounts: &[String]) -> Self {
        let dirs = mounts
            .iter()
            .filter_map(|m| Mount::parse(m).ok())
            .map(|m| m.host)
            .collect();
        let mut watch = Self {
            dirs,
            seen: BTreeMap::new(),
        };
        watch.new_lines();
        watch
    }

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                Self::files(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    fn new_lines(&mut self) -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        for dir in &self.dirs {
            Self::files(dir, &mut files);
        }
        let mut lines = Vec::new();
        for file in files {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            let start = self.seen.get(&file).copied().unwrap_or(0).min(bytes.len());
            for line in String::from_utf8_lossy(&bytes[start..]).lines() {
                lines.push((file.clone(), line.to_owned()));
            }
            self.seen.insert(file, bytes.len());
        }
        lines
    }
}

/// Runs the scripted requests and returns the report text.
///
/// # Errors
/// The plugin failing to load or start.
pub fn run(setup: &PluginSetup, requests: &[Scripted]) -> anyhow::Result<String> {
    let mut host = open(setup)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plugin {} as {}",
        setup.plugin.display(),
        setup.profile
    );
    match &mut host {
        Host::Traefik(t) => run_traefik(t, setup, requests, &mut out),
        Host::Proxy(p) => run_proxy(p, setup, requests, &mut out),
    }
    Ok(out)
}

/// `#N name: METHOD uri`, the line that opens each request's report.
fn heading(out: &mut String, index: usize, s: &Scripted) {
    let _ = writeln!(
        out,
        "\n#{} {}: {} {}",
        index + 1,
        s.name,
        s.request.method,
        s.request.uri
    );
}

fn run_traefik(
    host: &mut TraefikHost,
    setup: &PluginSetup,
    requests: &[Scripted],
    out: &mut String,
) {
    let mut spool = SpoolWatch::new(&setup.mounts);
    let _ = writeln!(out, "start: {} host calls", host.startup_calls().total());
    logs(out, host.startup_logs());
    for (i, s) in requests.iter().enumerate() {
        let x = host.handle(&s.request, &s.response);
        heading(out, i, s);
        let _ = writeln!(
            out,
            "    instance {} · {} · response {} · {} host calls · {} instructions",
            x.instance,
            if x.next {
                "next"
            } else {
                "answered by the plugin"
            },
            if x.buffered_response() {
                "buffered"
            } else {
                "streamed (not buffered)"
            },
            x.host_calls.total(),
            x.fuel
        );
        if let Some(up) = &x.upstream {
            let _ = writeln!(out, "    upstream request: {} {}", up.method, up.uri);
            header_diff(out, &s.request.headers, &up.headers);
        }
        let _ = writeln!(out, "    client response: {}", x.response.status);
        let backend = if x.next {
            s.response.headers.clone()
        } else {
            Headers::default()
        };
        header_diff(out, &backend, &x.response.headers);
        logs(out, &x.logs);
        for w in &x.warnings {
            let _ = writeln!(out, "    warning: {w}");
        }
        if let Some(f) = &x.failure {
            let _ = writeln!(out, "    FAILURE: {f}");
        }
        for (file, line) in spool.new_lines() {
            let _ = writeln!(out, "    record → {}: {line}", file.display());
        }
        let _ = writeln!(out, "    host calls: {}", calls_line(&x.host_calls));
    }
}

fn answer_calls(host: &mut ProxyHost, status: u16, out: &mut String) {
    for call in host.pending_calls() {
        let _ = writeln!(
            out,
            "    dispatch #{} → {} {} {} from {} (context {}), {} body bytes",
            call.id,
            call.cluster,
            call.headers.get(":method").unwrap_or("?"),
            call.headers.get(":path").unwrap_or("?"),
            call.from_callback,
            call.context_id,
            call.body.len()
        );
        for line in String::from_utf8_lossy(&call.body).lines() {
            let _ = writeln!(out, "      record: {line}");
        }
        if let Err(e) = host.respond_call(call.id, &CallResponse::status(status)) {
            let _ = writeln!(out, "    FAILURE answering call {}: {e:#}", call.id);
        }
    }
}

fn run_proxy(host: &mut ProxyHost, setup: &PluginSetup, requests: &[Scripted], out: &mut String) {
    logs(out, &host.take_logs());
    for w in host.take_warnings() {
        let _ = writeln!(out, "warning: {w}");
    }
    for (i, s) in requests.iter().enumerate() {
        let x = host.http(&s.request, &s.response);
        heading(out, i, s);
        let _ = writeln!(
            out,
            "    context {} · {} · {} host calls · {} instructions",
            x.context_id,
            x.callbacks.join(" → "),
            x.host_calls.total(),
            x.fuel
        );
        if let Some(up) = &x.upstream {
            let _ = writeln!(out, "    upstream request: {} {}", up.method, up.uri);
            // The proxy moved `host` into `:authority`; compare the plain headers only.
            let plain = |h: &Headers| {
                Headers::from_pairs(
                    h.pairs()
                        .iter()
                        .filter(|(k, _)| !k.starts_with(':') && !k.eq_ignore_ascii_case("host"))
                        .cloned(),
                )
            };
            header_diff(out, &plain(&s.request.headers), &plain(&up.headers));
        }
        let _ = writeln!(
            out,
            "    client response: {}{}",
            x.response.status,
            if x.local_response {
                " (local response)"
            } else {
                ""
            }
        );
        header_diff(out, &s.response.headers, &x.response.headers);
        logs(out, &x.logs);
        for w in &x.warnings {
            let _ = writeln!(out, "    warning: {w}");
        }
        if let Some(f) = &x.failure {
            let _ = writeln!(out, "    FAILURE: {f}");
        }
        let _ = writeln!(out, "    host calls: {}", calls_line(&x.host_calls));
        answer_calls(host, setup.call_status, out);
        if let Some(ms) = s.advance_ms {
            if let Err(e) = host.advance(Duration::from_millis(ms)) {
                let _ = writeln!(out, "    FAILURE while advancing {ms} ms: {e:#}");
            }
            let _ = writeln!(out, "    advanced {ms} ms");
            logs(out, &host.take_logs());
            answer_calls(host, setup.call_status, out);
        }
    }
    let flush = u64::from(host.tick_period_ms().max(1)) * 2;
    let _ = writeln!(out, "\nend: advancing {flush} ms to flush");
    if let Err(e) = host.advance(Duration::from_millis(flush)) {
        let _ = writeln!(out, "    FAILURE: {e:#}");
    }
    logs(out, &host.take_logs());
    answer_calls(host, setup.call_status, out);
    for w in host.take_warnings() {
        let _ = writeln!(out, "    warning: {w}");
    }
    let unfinished = host.unfinished_contexts();
    if !unfinished.is_empty() {
        let _ = writeln!(
            out,
            "    LEAK: contexts never finished (on_done false, no proxy_done): {unfinished:?}"
        );
    }
    let dropped = host
        .dispatched()
        .iter()
        .filter(|c| matches!(c.state, CallState::Dropped(_)))
        .count();
    let _ = writeln!(
        out,
        "    {} calls dispatched, {dropped} dropped; guest memory {} bytes",
        host.dispatched().len(),
        host.memory_bytes()
    );
}

/// Timing of `bench`.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Requests run.
    pub requests: usize,
    /// Mean wall time per request.
    pub mean: Duration,
    /// Median wall time.
    pub p50: Duration,
    /// 99th percentile wall time.
    pub p99: Duration,
    /// Mean wasm instructions (fuel) per request.
    pub fuel_per_request: f64,
    /// Host calls per request, by function.
    pub calls_per_request: Vec<(&'static str, f64)>,
    /// Failed requests.
    pub failures: usize,
    /// Guest memory at the end (bytes).
    pub memory_bytes: usize,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} requests, {} failed", self.requests, self.failures)?;
        writeln!(
            f,
            "wall time per request: mean {:?}, p50 {:?}, p99 {:?}",
            self.mean, self.p50, self.p99
        )?;
        writeln!(
            f,
            "wasm instructions per request (fuel): {:.0}",
            self.fuel_per_request
        )?;
        let total: f64 = self.calls_per_request.iter().map(|(_, n)| n).sum();
        writeln!(f, "host calls per request: {total:.2}")?;
        for (name, n) in &self.calls_per_request {
            writeln!(f, "  {name}: {n:.2}")?;
        }
        write!(f, "guest memory at the end: {} bytes", self.memory_bytes)
    }
}

/// Runs `n` requests (cycling through `requests`) and measures them.
///
/// # Errors
/// The plugin failing to load or start.
pub fn bench(setup: &PluginSetup, requests: &[Scripted], n: usize) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(
        n > 0 && !requests.is_empty(),
        "bench needs at least one request"
    );
    let mut host = open(setup)?;
    let mut times = Vec::with_capacity(n);
    let mut fuel = 0u64;
    let mut calls = HostCalls::default();
    let mut failures = 0;
    for i in 0..n {
        let s = &requests[i % requests.len()];
        let started = Instant::now();
        let (spent, tally, failed) = match &mut host {
            Host::Traefik(t) => {
                let x = t.handle(&s.request, &s.response);
                (x.fuel, x.host_calls, x.failure.is_some())
            }
            Host::Proxy(p) => {
                let x = p.http(&s.request, &s.response);
                (x.fuel, x.host_calls, x.failure.is_some())
            }
        };
        times.push(started.elapsed());
        fuel += spent;
        calls.merge(&tally);
        failures += usize::from(failed);
        if let Host::Proxy(p) = &mut host
            && i % 100 == 99
        {
            // Let ticks flush the queue, and answer the batches, outside the timed part.
            let _ = p.advance(Duration::from_millis(u64::from(p.tick_period_ms().max(1))));
            for call in p.pending_calls() {
                let _ = p.respond_call(call.id, &CallResponse::status(setup.call_status));
            }
        }
    }
    times.sort_unstable();
    let per = |x: u64| x as f64 / n as f64;
    Ok(BenchReport {
        requests: n,
        mean: times.iter().sum::<Duration>() / n as u32,
        p50: times[n / 2],
        p99: times[(n * 99 / 100).min(n - 1)],
        fuel_per_request: per(fuel),
        calls_per_request: calls.iter().map(|(k, v)| (k, per(v))).collect(),
        failures,
        memory_bytes: match &host {
            Host::Traefik(t) => t.memory_bytes(),
            Host::Proxy(p) => p.memory_bytes(),
        },
    })
}
