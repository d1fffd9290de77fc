//! `gatetrace-host guest-figures`: the guest figures benchmark suite (issue 15) — wasm
//! instructions and host calls per request shape for both plugins, and the `.wasm` sizes,
//! written as the benchmark JSON `cargo xtask bench` reads. Deterministic (fuel counts the
//! guest's instructions), so every figure has one sample.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::cli::{self, Host, PluginSetup};
use crate::guest::{HostCalls, WASI_CALLS};
use crate::proxy::CallResponse;
use crate::requests::{self, Scripted};

/// The Traefik plugin's file name in the wasm directory.
const TRAEFIK_WASM: &str = "gatetrace-traefik.wasm";
/// The proxy-wasm plugin's file name in the wasm directory.
const PROXY_WASM: &str = "gatetrace-proxy.wasm";
/// Goal for a plain request's wasm instructions (issue 15).
const PLAIN_INSTRUCTIONS_GOAL: &str = "<= 20000";
/// Goal for each `.wasm` file (issue 15).
const SIZE_GOAL: &str = "<= 300";

/// The request shapes: file stem in the requests directory and the label of its figures.
const SHAPES: &[(&str, &str)] = &[
    ("harness-request", "plain GET answered 200"),
    ("harness-mcp-headers", "MCP POST, 2026-07-28 headers"),
    ("harness-mcp-body", "MCP POST, 2025-06-18 body parsed"),
];

/// What each host call of the Traefik plugin's plain request carries (the notes of the JSON).
const TRAEFIK_CALLS: &[&str] = &[
    "Traefik, plain GET answered 200, default config: 10 host calls per request.",
    "clock_time_get x2 (WASI): start and end, on the wall clock (Traefik's monotonic clock is fake).",
    "get_method, get_uri: the method label and the route template (the query is dropped at once).",
    "get_header_names (request): which request headers exist, so only present ones are read (incoming id, traceparent/tracestate, Accept/Upgrade/Content-Type stream detection, Mcp-Session-Id, Authorization on token routes); a plain wrk request has none of them.",
    "set_header_value x2: X-Request-Id and traceparent upstream.",
    "enable_features(buffer_response) + get_status_code: the status, which Traefik shows only to buffered responses.",
    "fd_write (WASI): the record, one NDJSON line appended to the spool.",
    "Opt-in or when the request needs it: get_header_values(host) with recordHost; the response's get_header_names + one get_header_values per header read, made only when the core asks for one (content-length with recordResponseSize; content-type, www-authenticate, upgrade when the status is not observed; www-authenticate on a 4xx; content-type and mcp-session-id on MCP routes); one get_header_values per present request header the core reads.",
    "proxy-wasm: the request and response header maps each arrive in one call (proxy_get_header_map_pairs), so its count does not change with the headers read; records leave in batches from the root context's tick (not counted per request here).",
];

/// Suite options.
#[derive(Debug, Clone)]
pub struct FiguresOptions {
    /// Where `gatetrace-traefik.wasm` and `gatetrace-proxy.wasm` are (`target/wasm`).
    pub wasm_dir: PathBuf,
    /// Where the request shapes and the harness config are (`plugin/http-wasm/bench`).
    pub requests_dir: PathBuf,
    /// Requests measured per shape (after warm-up).
    pub requests: usize,
}

/// One plugin under one profile.
struct Subject {
    label: &'static str,
    wasm: &'static str,
    profile: &'static str,
}

const SUBJECTS: &[Subject] = &[
    Subject {
        label: "Traefik",
        wasm: TRAEFIK_WASM,
        profile: "traefik",
    },
    Subject {
        label: "proxy-wasm (Envoy)",
        wasm: PROXY_WASM,
        profile: "envoy",
    },
];

/// Per-request means of one shape.
struct Measured {
    instructions: f64,
    http_calls: f64,
    wasi_calls: f64,
}

/// Runs the suite and returns the benchmark JSON document.
///
/// # Errors
/// Missing files, a plugin that fails to load, or a request that fails.
pub fn run(options: &FiguresOptions) -> anyhow::Result<Value> {
    let spool = std::env::temp_dir().join(format!("gatetrace-figures-{}", std::process::id()));
    std::fs::create_dir_all(&spool).with_context(|| format!("create {}", spool.display()))?;
    let result = figures(options, &spool);
    let _ = std::fs::remove_dir_all(&spool);
    let figures = result?;
    let mut notes: Vec<String> = vec![
        format!(
            "Deterministic: wasm instructions are wasmtime fuel in the gatetrace-host harness, mean of {} requests per shape after {} warm-up requests; host calls likewise (WASI calls counted by the harness, Traefik's clock reads and spool write included).",
            options.requests, WARM_UP
        ),
        "Request shapes: plugin/http-wasm/bench/harness-*.yaml (wrk's GET behind Traefik; an MCP tools/call with 2026-07-28 headers; one parsed from its 2025-06-18 body), config plugin/http-wasm/bench/harness-config.json (defaults).".to_owned(),
        "Size/speed trade: gatetrace-core, gatetrace-abi, wasi and the Traefik adapter build at opt-level 3 (the per-request path), everything else at opt-level s (wasm-release profile, root Cargo.toml).".to_owned(),
    ];
    notes.extend(TRAEFIK_CALLS.iter().map(|n| (*n).to_owned()));
    Ok(json!({
        "suite": "guest",
        "title": "Guest figures (harness)",
        "notes": notes,
        "figures": figures,
        "curves": [],
    }))
}

/// Requests run before measuring (the first opens the spool segment, buffers grow).
const WARM_UP: usize = 20;

fn figures(options: &FiguresOptions, spool: &Path) -> anyhow::Result<Vec<Value>> {
    let mut instructions = Vec::new();
    let mut calls = Vec::new();
    let mut sizes = Vec::new();
    let config = options.requests_dir.join("harness-config.json");
    for subject in SUBJECTS {
        let wasm = options.wasm_dir.join(subject.wasm);
        let bytes = std::fs::metadata(&wasm)
            .with_context(|| format!("{} (run `cargo xtask wasm`)", wasm.display()))?
            .len();
        sizes.push(json!({
            "group": ".wasm size",
            "name": subject.wasm,
            "unit": "KiB",
            "samples": [round1(bytes as f64 / 1024.0)],
            "goal": SIZE_GOAL,
            "machine_dependent": false,
        }));
        for (stem, shape) in SHAPES {
            let scripted = requests::load(&options.requests_dir.join(format!("{stem}.yaml")))?;
            let setup = PluginSetup {
                plugin: wasm.clone(),
                profile: subject.profile.to_owned(),
                config: Some(config.clone()),
                mounts: vec![format!("{}:/spool", spool.display())],
                clusters: Vec::new(),
                known_clusters: vec!["gatetrace_collector".to_owned()],
                call_status: 200,
            };
            let m = measure(&setup, &scripted, options.requests)
                .with_context(|| format!("{} {shape}", subject.label))?;
            let name = format!("{}: {shape}", subject.label);
            let plain_traefik = *stem == "harness-request" && subject.wasm == TRAEFIK_WASM;
            instructions.push(json!({
                "group": "Wasm instructions per request",
                "name": name,
                "unit": "instructions",
                "samples": [m.instructions.round()],
                "goal": if *stem == "harness-request" { Some(PLAIN_INSTRUCTIONS_GOAL) } else { None },
                "machine_dependent": false,
            }));
            calls.push(json!({
                "group": "Host calls per request (WASI included)",
                "name": name,
                "unit": "calls",
                "samples": [round1(m.http_calls + m.wasi_calls)],
                "goal": plain_traefik.then_some("<= 10"),
                "machine_dependent": false,
            }));
            calls.push(json!({
                "group": "Host calls per request (WASI included)",
                "name": format!("{name}, of them WASI"),
                "unit": "calls",
                "samples": [round1(m.wasi_calls)],
                "machine_dependent": false,
            }));
        }
    }
    // A figure without a goal has no `goal` key (rather than `null`).
    let mut all: Vec<Value> = instructions.into_iter().chain(calls).chain(sizes).collect();
    for figure in &mut all {
        if let Some(fields) = figure.as_object_mut() {
            fields.retain(|_, v| !v.is_null());
        }
    }
    Ok(all)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Runs [`WARM_UP`] then `n` requests cycling through `scripted`; per-request means.
fn measure(setup: &PluginSetup, scripted: &[Scripted], n: usize) -> anyhow::Result<Measured> {
    anyhow::ensure!(!scripted.is_empty(), "no requests");
    let mut host = cli::open(setup)?;
    let mut fuel = 0u64;
    let mut tally = HostCalls::default();
    for i in 0..WARM_UP + n {
        let s = &scripted[i % scripted.len()];
        let (spent, calls, failure) = match &mut host {
            Host::Traefik(t) => {
                let x = t.handle(&s.request, &s.response);
                (x.fuel, x.host_calls, x.failure.map(|f| format!("{f:?}")))
            }
            Host::Proxy(p) => {
                let x = p.http(&s.request, &s.response);
                (x.fuel, x.host_calls, x.failure.map(|f| format!("{f:?}")))
            }
        };
        if let Some(failure) = failure {
            anyhow::bail!("request {i} failed: {failure}");
        }
        if i >= WARM_UP {
            fuel += spent;
            tally.merge(&calls);
        }
        if let Host::Proxy(p) = &mut host
            && i % 100 == 99
        {
            // Ticks ship the queued records; answered outside the measured exchanges.
            p.advance(Duration::from_millis(u64::from(p.tick_period_ms().max(1))))?;
            for call in p.pending_calls() {
                p.respond_call(call.id, &CallResponse::status(setup.call_status))?;
            }
        }
    }
    let per = |x: u64| x as f64 / n as f64;
    let wasi = tally.get(WASI_CALLS);
    Ok(Measured {
        instructions: per(fuel),
        http_calls: per(tally.total() - wasi),
        wasi_calls: per(wasi),
    })
}
