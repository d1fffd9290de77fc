//! The demo stack, run for real (`cargo xtask demo --keep`): real Traefik loads the gateway's
//! config from `examples/traefik/` with gatetrace on every router; every PromQL query of the
//! Grafana dashboard returns data from the demo's real Prometheus fed by real traffic; every
//! scrape target is up and an alert state is read; the `justfile`'s recipes that need no
//! Docker work against it; and Ctrl-C stops everything it started.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest the demo may take to be up with its figures printed (warm: well under a minute).
const DEMO_READY: Duration = Duration::from_secs(240);

/// Grafana's variables as the dashboard queries are checked with them.
const GRAFANA_VARS: [(&str, &str); 3] = [
    ("$__rate_interval", "1m"),
    ("$__interval", "1m"),
    ("$service", ".+"),
];

/// The running demo, interrupted (like Ctrl-C) and reaped when dropped.
struct Demo {
    child: Child,
    output: Arc<Mutex<String>>,
    env: BTreeMap<String, String>,
}

impl Demo {
    fn start(dir: &Path) -> Self {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut child = Command::new(cargo)
            .args(["xtask", "demo", "--keep", "--mix-secs", "15", "--dir"])
            .arg(dir)
            .current_dir(testkit::workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start cargo xtask demo");
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut out = output.lock().unwrap();
                    out.push_str(&line);
                    out.push('\n');
                }
            });
        }
        let env_file = dir.join("demo.env");
        let deadline = Instant::now() + DEMO_READY;
        while !env_file.is_file() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the demo exited ({status}) before it was up:\n{}",
                    output.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the demo was not up within {DEMO_READY:?}:\n{}",
                output.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let env = std::fs::read_to_string(&env_file)
            .unwrap()
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        Self { child, output, env }
    }

    fn url(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("demo.env has no {name}"))
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Sends SIGINT (what Ctrl-C sends) and waits for the demo to exit.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        signal(self.child.id(), "INT");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the demo did not stop within 90 s of SIGINT:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.interrupt();
        }
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

fn pid_alive(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
        && !std::fs::read_to_string(Path::new("/proc").join(pid).join("stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn get_json(url: &str, query: &[(&str, &str)]) -> Value {
    let mut request = ureq::get(url);
    for (name, value) in query {
        request = request.query(*name, *value);
    }
    let mut response = request.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

fn prometheus_query(demo: &Demo, expr: &str) -> Vec<Value> {
    let answer = get_json(
        &format!("{}/api/v1/query", demo.url("PROMETHEUS_URL")),
        &[("query", expr)],
    );
    assert_eq!(answer["status"], "success", "{expr}: {answer}");
    answer["data"]["result"].as_array().unwrap().clone()
}

/// Every PromQL query of the provisioned dashboards, with Grafana's variables substituted.
fn dashboard_queries() -> Vec<(String, String)> {
    let dir = testkit::workspace_root().join("examples/monitoring/grafana/dashboards");
    let mut queries = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let datasource = target["datasource"]["type"]
                    .as_str()
                    .or_else(|| panel["datasource"]["type"].as_str())
                    .unwrap_or("prometheus");
                if datasource != "prometheus" {
                    continue;
                }
                let mut expr = target["expr"].as_str().unwrap().to_owned();
                for (variable, value) in GRAFANA_VARS {
                    expr = expr.replace(variable, value);
                }
                assert!(!expr.contains('$'), "unsubstituted variable in {expr}");
                queries.push((panel["title"].as_str().unwrap().to_owned(), expr));
            }
        }
    }
    queries
}

fn just(demo_env: &Path, recipe: &[&str]) -> (bool, String) {
    let out = Command::new(testkit::tool("GATETRACE_JUST"))
        .args(recipe)
        .current_dir(testkit::workspace_root())
        .env("GATETRACE_DEMO_ENV", demo_env)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
#[ignore = "e2e: runs `cargo xtask demo` (Traefik, Prometheus, Redis, exporters, Python venv; GATETRACE_JUST)"]
fn the_demo_stack_serves_every_dashboard_query_and_recipe() {
    let just_bin = testkit::tool("GATETRACE_JUST");
    assert!(just_bin.is_file());
    let dir = tempfile::tempdir().unwrap();
    let work: PathBuf = dir.path().join("demo");
    let mut demo = Demo::start(&work);
    let printed = demo.output();
    for seed_metric in [
        "mcp_oauth_requests_total",
        "mcp_oauth_request_duration_seconds",
        "mcp_oauth_active_sessions",
        "mcp_oauth_token_validations_total",
        "mcp_oauth_client_registrations_total",
    ] {
        let line = printed
            .lines()
            .find(|l| l.trim_start().starts_with(seed_metric) && l.trim_end().ends_with(" ok"))
            .unwrap_or_else(|| panic!("{seed_metric} not shown non-zero:\n{printed}"));
        assert!(!line.contains("ZERO"), "{line}");
    }

    // Real Traefik loaded the gateway's config: every router of examples/traefik/dynamic.yml is
    // enabled, with the gatetrace middleware first.
    let dynamic: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(testkit::workspace_root().join("examples/traefik/dynamic.yml"))
            .unwrap(),
    )
    .unwrap();
    let routers = get_json(
        &format!("{}/api/http/routers", demo.url("TRAEFIK_API_URL")),
        &[],
    );
    let loaded: BTreeMap<String, &Value> = routers
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r))
        .collect();
    let configured = dynamic["http"]["routers"].as_mapping().unwrap();
    assert!(configured.len() >= 8);
    for (name, _) in configured {
        let name = format!("{}@file", name.as_str().unwrap());
        let router = loaded
            .get(&name)
            .unwrap_or_else(|| panic!("Traefik did not load {name}: {routers}"));
        assert_eq!(router["status"], "enabled", "{router}");
        let first = router["middlewares"][0].as_str().unwrap_or_default();
        assert!(first.starts_with("gatetrace-"), "{name}: {router}");
    }
    let middlewares = get_json(
        &format!("{}/api/http/middlewares", demo.url("TRAEFIK_API_URL")),
        &[],
    );
    for middleware in middlewares.as_array().unwrap() {
        assert_eq!(middleware["status"], "enabled", "{middleware}");
    }

    // Every scrape target of examples/monitoring/prometheus.yml is up.
    let targets = get_json(
        &format!("{}/api/v1/targets", demo.url("PROMETHEUS_URL")),
        &[],
    );
    let active = targets["data"]["activeTargets"].as_array().unwrap();
    assert!(active.len() >= 7, "{targets}");
    for target in active {
        assert_eq!(target["health"], "up", "{target}");
    }

    // Every PromQL query of the dashboards returns data; each metric it names has series.
    let queries = dashboard_queries();
    assert!(queries.len() >= 25, "only {} queries", queries.len());
    for (title, expr) in &queries {
        let result = prometheus_query(&demo, expr);
        assert!(!result.is_empty(), "panel `{title}`: no data for {expr}");
    }

    // An alert state read from Prometheus: the demo's certificate expires in 5 days.
    let rules = get_json(
        &format!("{}/api/v1/rules", demo.url("PROMETHEUS_URL")),
        &[("type", "alert")],
    );
    let states: BTreeMap<&str, &str> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| (r["name"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert!(states.len() >= 15, "{states:?}");
    assert_eq!(
        states["TlsCertificateExpiringSoon"], "pending",
        "{states:?}"
    );
    assert_eq!(states["McpServiceDown"], "inactive", "{states:?}");

    // The justfile's recipes that need no Docker, against the running demo.
    let env_file = work.join("demo.env");
    let (ok, out) = just(&env_file, &["health-check"]);
    assert!(ok, "just health-check:\n{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        10,
        "{out}"
    );
    let (ok, out) = just(&env_file, &["metrics"]);
    assert!(
        ok && out.contains("mcp_oauth_requests_total{"),
        "just metrics:\n{out}"
    );
    let (ok, out) = just(&env_file, &["alerts"]);
    assert!(
        ok && out.contains("TlsCertificateExpiringSoon"),
        "just alerts:\n{out}"
    );
    let (ok, out) = just(&env_file, &["logs", "access", "5"]);
    assert!(
        ok && out.lines().count() == 5 && out.contains("\"trace_id\""),
        "just logs:\n{out}"
    );
    let (ok, out) = just(&env_file, &["stats"]);
    let pids: Vec<String> = demo
        .url("DEMO_PIDS")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert!(pids.len() >= 10, "{pids:?}");
    assert!(
        ok && pids.iter().all(|pid| out.contains(pid.as_str())),
        "just stats:\n{out}"
    );
    let (ok, out) = just(&env_file, &["--dry-run", "monitoring-up"]);
    assert!(
        ok && out.contains("docker compose -f"),
        "just --dry-run monitoring-up:\n{out}"
    );
    let (ok, out) = just(Path::new("/nonexistent/demo.env"), &["metrics"]);
    assert!(!ok && out.contains("no running demo"), "{out}");

    // Ctrl-C stops everything it started, and the demo exits 0.
    let status = demo.interrupt();
    let output = demo.output();
    assert!(status.success(), "the demo exited {status}:\n{output}");
    assert!(
        output.contains("driver: closed 3 open sessions"),
        "{output}"
    );
    for pid in &pids {
        assert!(
            !pid_alive(pid),
            "process {pid} outlived the demo:\n{output}"
        );
    }
}
