//! Starting each program of the demo with its configuration and waiting until it answers:
//! Redis and the exporters, the collector, the seed's auth service, the FastMCP server, Traefik
//! with gatetrace, Prometheus, and the traffic driver (whose lines are shown as they come).

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::config::{self, Dirs, Ports};
use super::http;
use super::stack::Stack;
use crate::tools::DemoTools;
use crate::{Ctx, proc};

/// The driver's name in the stack (and its log file).
pub const DRIVER: &str = "driver";
/// The collector's access log (JSON lines), in the logs directory.
pub const ACCESS_LOG: &str = "access.ndjson";
/// The Python programs the demo runs, below the workspace root.
const PYTHON_DIR: &str = "examples/demo";
/// The line the driver prints when the full mix is over.
const MIX_DONE: &str = "driver: mix done";
/// The auth service's metadata, answered once it (and the gateway's route to it) is up.
pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";
/// The gateway's node name (salts the plugin's ids).
const NODE_NAME: &str = "demo-gateway";
/// Validity of the demo's self-signed certificate: under the 7 days the certificate alert
/// warns at, so that alert shows `pending` within the demo.
const CERT_DAYS: &str = "5";

/// Everything the programs are started from.
#[derive(Debug)]
pub struct Setup<'a> {
    pub tools: &'a DemoTools,
    pub dirs: &'a Dirs,
    pub ports: &'a Ports,
    pub collector: &'a Path,
    pub wasm_dir: &'a Path,
}

/// `cargo build -p gatetrace-collector`; returns the binary's path as cargo reports it.
pub fn build_collector() -> Result<PathBuf> {
    let finished = proc::exec(
        crate::cargo().args([
            "build",
            "-p",
            "gatetrace-collector",
            "--bin",
            "gatetrace-collector",
            "--message-format=json-render-diagnostics",
        ]),
        proc::Output::Keep,
        Duration::from_secs(1800),
    )?;
    if !finished.status.success() {
        bail!("building the collector failed (errors above)");
    }
    finished
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|message| {
            (message["target"]["name"] == "gatetrace-collector")
                .then(|| message["executable"].as_str().map(PathBuf::from))
                .flatten()
        })
        .context("cargo did not report the collector's executable")
}

fn url(port: u16, path: &str) -> String {
    format!("http://{}{path}", config::loopback(port))
}

fn listens(port: u16) -> bool {
    TcpStream::connect((config::LOOPBACK, port)).is_ok()
}

/// Starts everything but the driver, each once the ones it needs answer.
pub fn start_all(ctx: &Ctx, setup: &Setup, stack: &mut Stack) -> Result<()> {
    let (tools, dirs, ports) = (setup.tools, setup.dirs, setup.ports);
    let secrets = Secrets::generate(tools, &dirs.state)?;

    stack.start(
        "redis",
        Command::new(&tools.redis_server)
            .args([
                "--bind",
                config::LOOPBACK,
                "--port",
                &ports.redis.to_string(),
            ])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dirs.state),
        || listens(ports.redis),
    )?;
    stack.start(
        "redis-exporter",
        Command::new(&tools.redis_exporter)
            .arg(format!(
                "--redis.addr=redis://{}",
                config::loopback(ports.redis)
            ))
            .arg(format!(
                "--web.listen-address={}",
                config::loopback(ports.redis_exporter)
            )),
        || http::answers(&url(ports.redis_exporter, "/metrics")),
    )?;
    stack.start(
        "node-exporter",
        Command::new(&tools.node_exporter).arg(format!(
            "--web.listen-address={}",
            config::loopback(ports.node_exporter)
        )),
        || http::answers(&url(ports.node_exporter, "/metrics")),
    )?;
    let blackbox = ctx
        .root
        .join(config::MONITORING_EXAMPLE)
        .join("blackbox/blackbox.yml");
    stack.start(
        "blackbox-exporter",
        Command::new(&tools.blackbox_exporter)
            .arg(format!("--config.file={}", blackbox.display()))
            .arg(format!(
                "--web.listen-address={}",
                config::loopback(ports.blackbox)
            )),
        || http::answers(&url(ports.blackbox, "/metrics")),
    )?;
    stack.start(
        "collector",
        Command::new(setup.collector)
            .arg(format!("--listen={}", config::loopback(ports.collector)))
            .arg(format!("--spool-dir={}", dirs.spool.display()))
            .arg(format!(
                "--checkpoint={}",
                dirs.state.join("checkpoint.json").display()
            ))
            .arg(format!(
                "--access-log={}",
                dirs.logs.join(ACCESS_LOG).display()
            ))
            .arg("--log=warn"),
        || http::answers(&url(ports.collector, "/ready")),
    )?;

    let python_dir = ctx.root.join(PYTHON_DIR);
    stack.start(
        "auth",
        Command::new(&tools.python)
            .arg(python_dir.join("auth_service.py"))
            .args(["--port", &ports.auth.to_string()])
            .current_dir(&dirs.state)
            .envs(auth_env(ports, &secrets)),
        || http::answers(&url(ports.auth, OAUTH_METADATA)),
    )?;
    stack.start(
        "mcp",
        Command::new(&tools.python)
            .arg(python_dir.join("mcp_server.py"))
            .args(["--port", &ports.mcp.to_string()])
            .current_dir(&dirs.state),
        || http::answers(&url(ports.mcp, "/health")),
    )?;

    let static_file = write_traefik_config(ctx, setup)?;
    let plugin = setup.wasm_dir.join("plugins-local/src/gatetrace");
    let local = dirs.traefik.join("plugins-local/src/gatetrace");
    std::fs::create_dir_all(&local)?;
    for file in ["plugin.wasm", ".traefik.yml"] {
        std::fs::copy(plugin.join(file), local.join(file)).with_context(|| {
            format!(
                "copy {} into Traefik's plugins",
                plugin.join(file).display()
            )
        })?;
    }
    stack.start(
        "traefik",
        Command::new(&tools.traefik)
            .arg(format!("--configFile={}", static_file.display()))
            .current_dir(&dirs.traefik)
            .envs(traefik_env(ports, &secrets)),
        || {
            http::answers(&url(ports.traefik, "/ping"))
                && http::answers(&url(ports.web, OAUTH_METADATA))
        },
    )?;

    let prometheus_file = dirs.root.join("prometheus.yml");
    std::fs::write(
        &prometheus_file,
        config::prometheus_config(&ctx.root, ports)?,
    )?;
    stack.start(
        "prometheus",
        Command::new(&tools.prometheus)
            .arg(format!("--config.file={}", prometheus_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dirs.prometheus_data.display()
            ))
            .arg(format!(
                "--web.listen-address={}",
                config::loopback(ports.prometheus)
            ))
            .args(["--enable-feature=exemplar-storage", "--log.level=warn"]),
        || http::answers(&url(ports.prometheus, "/-/ready")),
    )?;
    Ok(())
}

/// The demo's certificate (for the TLS entrypoint) and the auth service's JWT signing key.
#[derive(Debug)]
struct Secrets {
    cert: PathBuf,
    key: PathBuf,
    jwt_key_b64: String,
    jwt_secret: String,
}

impl Secrets {
    fn generate(tools: &DemoTools, dir: &Path) -> Result<Self> {
        let (cert, key, jwt_key) = (
            dir.join("tls.crt"),
            dir.join("tls.key"),
            dir.join("jwt.pem"),
        );
        let openssl = |args: &[&str]| {
            proc::capture(
                Command::new(&tools.openssl).args(args),
                Duration::from_secs(60),
            )
        };
        let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            CERT_DAYS,
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            &key_s,
            "-out",
            &cert_s,
        ])
        .context("make the demo's self-signed certificate")?;
        let jwt_s = jwt_key.display().to_string();
        openssl(&["genrsa", "-out", &jwt_s, "2048"]).context("make the JWT signing key")?;
        let jwt_key_b64 = openssl(&["base64", "-A", "-in", &jwt_s])?.trim().to_owned();
        let jwt_secret = openssl(&["rand", "-hex", "32"])?.trim().to_owned();
        Ok(Self {
            cert,
            key,
            jwt_key_b64,
            jwt_secret,
        })
    }
}

/// The auth service's settings (it reads them from the environment; every one is required).
fn auth_env(ports: &Ports, secrets: &Secrets) -> Vec<(&'static str, String)> {
    vec![
        // The GitHub app is never called: the driver plays the GitHub login (see driver.py).
        ("GITHUB_CLIENT_ID", "demo-github-app".into()),
        ("GITHUB_CLIENT_SECRET", "demo-github-secret".into()),
        ("JWT_ALGORITHM", "RS256".into()),
        ("JWT_SECRET", secrets.jwt_secret.clone()),
        ("JWT_PRIVATE_KEY_B64", secrets.jwt_key_b64.clone()),
        ("BASE_DOMAIN", "localhost".into()),
        (
            "REDIS_URL",
            format!("redis://{}/0", config::loopback(ports.redis)),
        ),
        ("REDIS_PASSWORD", String::new()),
        ("ACCESS_TOKEN_LIFETIME", "3600".into()),
        ("REFRESH_TOKEN_LIFETIME", "86400".into()),
        ("SESSION_TIMEOUT", "3600".into()),
        ("CLIENT_LIFETIME", "0".into()),
        ("ALLOWED_GITHUB_USERS", "*".into()),
        ("MCP_PROTOCOL_VERSION", "2025-06-18".into()),
        ("LOG_LEVEL", "WARNING".into()),
        ("PYTHONWARNINGS", "ignore::DeprecationWarning".into()),
    ]
}

/// Writes Traefik's static config from `examples/traefik/traefik.yml` (its `${NAME}`
/// placeholders filled); returns its path. The dynamic config is `examples/traefik/dynamic.yml`
/// itself, which reads its addresses with Traefik's templating from [`traefik_env`].
fn write_traefik_config(ctx: &Ctx, setup: &Setup) -> Result<PathBuf> {
    let (dirs, ports) = (setup.dirs, setup.ports);
    let static_file = dirs.root.join("traefik.yml");
    let loopback = config::loopback;
    let dynamic = ctx.root.join(config::TRAEFIK_EXAMPLE).join("dynamic.yml");
    let vars = [
        ("WEB_ADDRESS", loopback(ports.web)),
        ("WEBSECURE_ADDRESS", loopback(ports.websecure)),
        ("TRAEFIK_ADDRESS", loopback(ports.traefik)),
        ("DYNAMIC_CONFIG", dynamic.display().to_string()),
        ("SPOOL_DIR", dirs.spool.display().to_string()),
    ];
    std::fs::write(
        &static_file,
        config::traefik_file(&ctx.root, "traefik.yml", &vars)?,
    )?;
    Ok(static_file)
}

/// The variables `examples/traefik/dynamic.yml` reads (and the node name the plugin reads).
fn traefik_env(ports: &Ports, secrets: &Secrets) -> Vec<(&'static str, String)> {
    vec![
        ("HOSTNAME", NODE_NAME.into()),
        ("AUTH_URL", url(ports.auth, "")),
        ("MCP_URL", url(ports.mcp, "")),
        // ForwardAuth asks the gateway's own /verify router.
        ("VERIFY_URL", url(ports.web, "/verify")),
        ("TLS_CERT_FILE", secrets.cert.display().to_string()),
        ("TLS_KEY_FILE", secrets.key.display().to_string()),
    ]
}

/// The running driver: whether its mix is over, as its stdout says.
#[derive(Debug)]
pub struct Driver {
    mix_done: Arc<AtomicBool>,
}

impl Driver {
    pub fn mix_done(&self) -> bool {
        self.mix_done.load(Ordering::SeqCst)
    }
}

/// Starts the traffic driver; its stdout lines are shown (indented) and kept in its log.
pub fn start_driver(
    ctx: &Ctx,
    setup: &Setup,
    mix_secs: u64,
    keep: bool,
    stack: &mut Stack,
) -> Result<Driver> {
    let log_path = setup.dirs.logs.join(format!("{DRIVER}.log"));
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let mut cmd = Command::new(&setup.tools.python);
    cmd.arg(ctx.root.join(PYTHON_DIR).join("driver.py"))
        .arg(format!("--gateway={}", url(setup.ports.web, "")))
        .arg(format!(
            "--redis=redis://{}/0",
            config::loopback(setup.ports.redis)
        ))
        .arg(format!("--mix-secs={mix_secs}"))
        .env("PYTHONWARNINGS", "ignore::DeprecationWarning")
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(log.try_clone()?);
    if keep {
        cmd.arg("--keep");
    }
    let mut child = proc::spawn(&mut cmd)?;
    let stdout = child.stdout.take().context("the driver's stdout")?;
    let mix_done = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&mix_done);
    std::thread::spawn(move || show_driver_lines(stdout, log, &seen));
    stack.adopt(DRIVER, child, log_path);
    Ok(Driver { mix_done })
}

fn show_driver_lines(stdout: std::process::ChildStdout, mut log: File, mix_done: &AtomicBool) {
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("  | {line}");
        let _ = writeln!(log, "{line}");
        if line.starts_with(MIX_DONE) {
            mix_done.store(true, Ordering::SeqCst);
        }
    }
}

/// What to open, as (name, URL) pairs.
pub fn urls(setup: &Setup) -> Vec<(&'static str, String)> {
    let ports = setup.ports;
    vec![
        ("GATEWAY_URL", url(ports.web, "")),
        (
            "GATEWAY_TLS_URL",
            format!("https://{}", config::loopback(ports.websecure)),
        ),
        ("COLLECTOR_URL", url(ports.collector, "")),
        ("PROMETHEUS_URL", url(ports.prometheus, "")),
        ("TRAEFIK_API_URL", url(ports.traefik, "")),
        ("AUTH_URL", url(ports.auth, "")),
        ("MCP_URL", url(ports.mcp, "")),
        ("REDIS_EXPORTER_URL", url(ports.redis_exporter, "")),
        ("NODE_EXPORTER_URL", url(ports.node_exporter, "")),
        ("BLACKBOX_URL", url(ports.blackbox, "")),
    ]
}

/// The `demo.env` file: every URL, the logs directory, the access log and the programs' ids.
pub fn env_lines(setup: &Setup, urls: &[(&str, String)], pids: &[u32]) -> String {
    let mut lines: Vec<String> = urls.iter().map(|(k, v)| format!("{k}={v}")).collect();
    lines.push(format!("DEMO_DIR={}", setup.dirs.root.display()));
    lines.push(format!("DEMO_LOGS={}", setup.dirs.logs.display()));
    lines.push(format!(
        "ACCESS_LOG={}",
        setup.dirs.logs.join(ACCESS_LOG).display()
    ));
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    lines.push(format!("DEMO_PIDS=\"{}\"", pids.join(" ")));
    lines.join("\n") + "\n"
}
