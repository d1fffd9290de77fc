//! The running system under test, all on loopback: the token verifier, two real MCP servers
//! (PyPI `mcp` 1.x and 2.x), real Traefik 3.7 with gatetrace first and ForwardAuth second on
//! every router, and the collector (in this process) tailing the plugin's spool and exporting
//! spans to the collector tests' own OTLP receiver.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use gatetrace_collector::sinks::otlp;
use gatetrace_collector::{Collector, Config, RunningCollector};
use testkit::ChildGuard;

use super::otlp_receiver::{self, ReceiverLog};

/// The Python peers, below the workspace root.
const PEERS: &str = "tests/e2e/mcp";
/// The `service` the middleware is configured with.
pub const SERVICE: &str = "mcp-e2e";
/// The plugin's body limit in this test: small, so the probes around it stay fast.
pub const BODY_LIMIT: usize = 4096;
/// Old-protocol (FastMCP 1.x) and new-protocol (mcp 2.x) MCP routes.
pub const OLD_PATH: &str = "/mcp";
pub const NEW_PATH: &str = "/mcp2";
/// How long a Python program may take to answer after its start.
const START: Duration = Duration::from_secs(60);

/// Traefik's dynamic config: `gatetrace` first, then ForwardAuth, on both MCP routers.
const DYNAMIC: &str = r#"
http:
  routers:
    old:
      rule: "Path(`/mcp`)"
      entryPoints: [web]
      service: old
      middlewares: [gatetrace, auth]
    new:
      rule: "Path(`/mcp2`)"
      entryPoints: [web]
      service: new
      middlewares: [gatetrace, auth]
  middlewares:
    gatetrace:
      plugin:
        gatetrace:
          service: "{service}"
          echoRequestId: "true"
          mcpRoutes: ["/mcp", "/mcp2"]
          mcpBodyLimit: "{limit}"
          tokenRules:
            - route: "/mcp"
              mode: required
            - route: "/mcp2"
              mode: required
          spool:
            dir: "{spool}"
            windowSecs: "2"
    auth:
      forwardAuth:
        address: "http://127.0.0.1:{verifier}/verify"
  services:
    old:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:{old}"
    new:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:{new}"
"#;

/// Everything running; stopped when dropped.
pub struct Stack {
    pub dir: PathBuf,
    pub traefik_port: u16,
    pub verifier_port: u16,
    pub spool: PathBuf,
    pub access_log: PathBuf,
    pub collector_log: PathBuf,
    pub old_log: PathBuf,
    pub new_log: PathBuf,
    pub verify_log: PathBuf,
    pub spans: ReceiverLog,
    pub old_python: PathBuf,
    pub new_python: PathBuf,
    runtime: tokio::runtime::Runtime,
    collector: Option<RunningCollector>,
    children: Vec<(&'static str, ChildGuard)>,
}

fn peer(name: &str) -> PathBuf {
    testkit::workspace_root().join(PEERS).join(name)
}

/// A Python peer on `port`, its output in `dir/<name>.log`.
fn python(python: &Path, dir: &Path, name: &'static str, args: &[String]) -> ChildGuard {
    ChildGuard::spawn(
        Command::new(python)
            .arg(peer(&format!("{name}.py")))
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONWARNINGS", "ignore::DeprecationWarning")
            .current_dir(dir),
        dir.join(format!("{name}.log")),
    )
}

impl Stack {
    pub fn start(dir: &Path) -> Self {
        let old_python = testkit::tool("GATETRACE_DEMO_PYTHON");
        let new_python = testkit::tool("GATETRACE_MCP2_PYTHON");
        let ports: Vec<u16> = (0..4).map(|_| testkit::free_port()).collect();
        let (traefik_port, verifier_port, old_port, new_port) =
            (ports[0], ports[1], ports[2], ports[3]);
        let spool = dir.join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let (old_log, new_log, verify_log) = (
            dir.join("old-bodies.ndjson"),
            dir.join("new-bodies.ndjson"),
            dir.join("verifications.txt"),
        );
        let arg = |s: &Path| s.display().to_string();
        let mut children = vec![
            (
                "verifier",
                python(
                    &old_python,
                    dir,
                    "verifier",
                    &[
                        "--port".into(),
                        verifier_port.to_string(),
                        "--log".into(),
                        arg(&verify_log),
                    ],
                ),
            ),
            (
                "old_server",
                python(
                    &old_python,
                    dir,
                    "old_server",
                    &[
                        "--port".into(),
                        old_port.to_string(),
                        "--body-log".into(),
                        arg(&old_log),
                    ],
                ),
            ),
            (
                "new_server",
                python(
                    &new_python,
                    dir,
                    "new_server",
                    &[
                        "--port".into(),
                        new_port.to_string(),
                        "--body-log".into(),
                        arg(&new_log),
                    ],
                ),
            ),
        ];
        children.push(("traefik", start_traefik(dir, &spool, &ports)));

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let spans = ReceiverLog::default();
        let access_log = dir.join("access.ndjson");
        let collector_log = dir.join("collector.log");
        let collector =
            runtime.block_on(start_collector(&spool, &access_log, &collector_log, &spans));
        let mut stack = Self {
            dir: dir.to_path_buf(),
            traefik_port,
            verifier_port,
            spool,
            access_log,
            collector_log,
            old_log,
            new_log,
            verify_log,
            spans,
            old_python,
            new_python,
            runtime,
            collector: Some(collector),
            children,
        };
        for (name, port) in [
            ("verifier", verifier_port),
            ("old_server", old_port),
            ("new_server", new_port),
            ("traefik", traefik_port),
        ] {
            stack.wait_port(name, port);
        }
        stack
    }

    fn wait_port(&mut self, name: &str, port: u16) {
        let child = &mut self
            .children
            .iter_mut()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1;
        testkit::wait_until(&format!("{name} on port {port}"), START, || {
            if let Some(status) = child.try_wait() {
                panic!("{name} exited ({status}):\n{}", child.log());
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// Everything a child printed.
    pub fn log(&self, name: &str) -> String {
        self.children
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c.log())
            .unwrap_or_default()
    }

    /// The collector's address.
    pub fn collector_url(&self) -> String {
        format!("http://{}", self.collector.as_ref().unwrap().addr())
    }

    /// Stops the collector gracefully (drains, flushes spans and access lines).
    pub fn stop_collector(&mut self) {
        if let Some(collector) = self.collector.take() {
            self.runtime.block_on(collector.shutdown()).unwrap();
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop_collector();
    }
}

fn start_traefik(dir: &Path, spool: &Path, ports: &[u16]) -> ChildGuard {
    let work = dir.join("traefik");
    let plugin_dir = work.join("plugins-local/src/gatetrace");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::copy(
        testkit::wasm_artifact("gatetrace-traefik.wasm"),
        plugin_dir.join("plugin.wasm"),
    )
    .unwrap();
    std::fs::copy(
        testkit::workspace_root().join("plugin/http-wasm/.traefik.yml"),
        plugin_dir.join(".traefik.yml"),
    )
    .unwrap();
    let dynamic = DYNAMIC
        .replace("{service}", SERVICE)
        .replace("{limit}", &BODY_LIMIT.to_string())
        .replace("{spool}", &spool.display().to_string())
        .replace("{verifier}", &ports[1].to_string())
        .replace("{old}", &ports[2].to_string())
        .replace("{new}", &ports[3].to_string());
    let dynamic_path = work.join("dynamic.yml");
    std::fs::write(&dynamic_path, dynamic).unwrap();
    // The plain-HTTP entrypoint serves HTTP/1.1 and h2c (prior knowledge) alike.
    let static_cfg = format!(
        r#"entryPoints:
  web:
    address: "127.0.0.1:{port}"
providers:
  file:
    filename: "{dynamic}"
log:
  level: DEBUG
experimental:
  localPlugins:
    gatetrace:
      moduleName: gatetrace
      settings:
        envs: ["HOSTNAME"]
        mounts: ["{spool}"]
"#,
        port = ports[0],
        dynamic = dynamic_path.display(),
        spool = spool.display(),
    );
    std::fs::write(work.join("traefik.yml"), static_cfg).unwrap();
    ChildGuard::spawn(
        Command::new(testkit::tool("GATETRACE_TRAEFIK"))
            .arg(format!(
                "--configFile={}",
                work.join("traefik.yml").display()
            ))
            .current_dir(&work)
            .env("HOSTNAME", "mcp-e2e-node"),
        dir.join("traefik.log"),
    )
}

/// The collector in this process, its JSON logs (debug for its own crate) in `log_path`.
async fn start_collector(
    spool: &Path,
    access_log: &Path,
    log_path: &Path,
    spans: &ReceiverLog,
) -> RunningCollector {
    let log = std::fs::File::create(log_path).unwrap();
    let _ = tracing_subscriber::fmt()
        .json()
        .with_writer(Mutex::new(log))
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,gatetrace_collector=debug",
        ))
        .try_init();
    let receiver = otlp_receiver::http_receiver(spans).await;
    let config = Config::load([
        "gatetrace-collector".to_owned(),
        format!("--spool-dir={}", spool.display()),
        format!("--access-log={}", access_log.display()),
        format!("--otlp-endpoint={receiver}"),
        "--otlp-protocol=http/protobuf".to_owned(),
    ])
    .unwrap();
    let sink = otlp::exporter(&config.otlp).unwrap();
    let collector = Collector::start(config, sink).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    collector.spawn(listener).unwrap()
}
