//! `gatetrace-host`: run a gatetrace plugin (or any http-wasm / proxy-wasm guest) under a
//! Traefik, Envoy or Kong host profile and show what it did.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use gatetrace_host::cli::{self, PluginSetup};
use gatetrace_host::figures;
use gatetrace_host::http_wasm::{BackendResponse, HttpRequest};
use gatetrace_host::requests::{self, Scripted};

#[derive(Parser)]
#[command(
    name = "gatetrace-host",
    version,
    about = "Play the gateway for a wasm plugin"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Plugin {
    /// The plugin's .wasm file.
    #[arg(long)]
    plugin: PathBuf,
    /// Host profile.
    #[arg(long, value_parser = ["traefik", "envoy", "kong"])]
    profile: String,
    /// Config file: Traefik middleware settings (JSON/YAML) or proxy-wasm plugin configuration.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Traefik mount, host:guest[:ro] (repeatable).
    #[arg(long = "mount")]
    mounts: Vec<String>,
    /// proxy-wasm cluster sent to a real address, name=host:port (repeatable).
    #[arg(long = "cluster")]
    clusters: Vec<String>,
    /// proxy-wasm cluster the harness answers itself (repeatable; Envoy rejects calls to
    /// clusters it does not know).
    #[arg(long = "known-cluster", default_values_t = ["collector".to_owned(), "gatetrace_collector".to_owned()])]
    known_clusters: Vec<String>,
    /// Status that scripted proxy_http_call answers carry.
    #[arg(long, default_value_t = 200)]
    call_status: u16,
}

impl Plugin {
    fn setup(self) -> PluginSetup {
        PluginSetup {
            plugin: self.plugin,
            profile: self.profile,
            config: self.config,
            mounts: self.mounts,
            clusters: self.clusters,
            known_clusters: self.known_clusters,
            call_status: self.call_status,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Drive the requests of a file through the plugin and report what it did.
    Run {
        #[command(flatten)]
        plugin: Plugin,
        /// Requests file (YAML or JSON), see examples/requests/.
        #[arg(long)]
        requests: PathBuf,
    },
    /// Time N requests: wall time, wasm instructions and host calls per request.
    Bench {
        #[command(flatten)]
        plugin: Plugin,
        /// Number of requests.
        #[arg(short = 'n', long, default_value_t = 10_000)]
        n: usize,
        /// Requests file to cycle through (default: one GET /).
        #[arg(long)]
        requests: Option<PathBuf>,
    },
    /// The guest figures benchmark suite: wasm instructions and host calls per request shape
    /// for both plugins and their sizes, as benchmark JSON (`cargo xtask bench`).
    GuestFigures {
        /// Where the built plugins are.
        #[arg(long, default_value = "target/wasm")]
        wasm_dir: PathBuf,
        /// Where the request shapes (`harness-*.yaml`) and `harness-config.json` are.
        #[arg(long, default_value = "plugin/http-wasm/bench")]
        requests_dir: PathBuf,
        /// The JSON file to write.
        #[arg(long)]
        json: PathBuf,
        /// 100 requests per shape (the default).
        #[arg(long, conflicts_with = "full")]
        short: bool,
        /// 2000 requests per shape (the figures are deterministic: the same up to rounding).
        #[arg(long)]
        full: bool,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Run { plugin, requests } => {
            requests::load(&requests).and_then(|reqs| cli::run(&plugin.setup(), &reqs))
        }
        Command::Bench {
            plugin,
            n,
            requests,
        } => {
            let reqs = match requests {
                Some(path) => requests::load(&path),
                None => Ok(vec![Scripted {
                    name: "GET /".into(),
                    request: HttpRequest::get("/"),
                    response: BackendResponse::status(200),
                    advance_ms: None,
                }]),
            };
            reqs.and_then(|reqs| cli::bench(&plugin.setup(), &reqs, n))
                .map(|r| r.to_string())
        }
        Command::GuestFigures {
            wasm_dir,
            requests_dir,
            json,
            short: _,
            full,
        } => guest_figures(wasm_dir, requests_dir, &json, full),
    };
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gatetrace-host: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the guest figures suite and writes its JSON; the report lists the figures.
fn guest_figures(
    wasm_dir: PathBuf,
    requests_dir: PathBuf,
    json: &std::path::Path,
    full: bool,
) -> anyhow::Result<String> {
    let options = figures::FiguresOptions {
        wasm_dir,
        requests_dir,
        requests: if full { 2000 } else { 100 },
    };
    let document = figures::run(&options)?;
    let text = serde_json::to_string_pretty(&document)?;
    std::fs::write(json, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", json.display()))?;
    let mut report = String::new();
    for figure in document["figures"].as_array().into_iter().flatten() {
        report.push_str(&format!(
            "{}: {} {}\n",
            figure["name"].as_str().unwrap_or_default(),
            figure["samples"][0],
            figure["unit"].as_str().unwrap_or_default()
        ));
    }
    report.push_str(&format!("wrote {}", json.display()));
    Ok(report)
}
