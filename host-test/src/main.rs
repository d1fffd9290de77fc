//! `gatetrace-host`: run a gatetrace plugin (or any http-wasm / proxy-wasm guest) under a
//! Traefik, Envoy or Kong host profile and show what it did.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use gatetrace_host::cli::{self, PluginSetup};
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
