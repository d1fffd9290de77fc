//! The demo's configuration, taken from `examples/`: the Traefik gateway's `${NAME}` templates
//! filled with loopback addresses, and Prometheus's example config rewritten from the compose
//! stack's hostnames to the demo's ports, with 2 s scrape and rule intervals.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_yaml::Value;

/// Where the gateway's templates are, below the workspace root.
pub const TRAEFIK_EXAMPLE: &str = "examples/traefik";
/// Where the monitoring example is, below the workspace root.
pub const MONITORING_EXAMPLE: &str = "examples/monitoring";

/// The only address the demo listens on and connects to.
pub const LOOPBACK: &str = "127.0.0.1";

/// `LOOPBACK:port`.
pub fn loopback(port: u16) -> String {
    format!("{LOOPBACK}:{port}")
}

/// Prometheus's intervals in the demo: short, so rates and alert states exist within it.
const DEMO_INTERVAL: &str = "2s";

/// The loopback port of every listener the demo runs (free when chosen).
#[derive(Debug, Clone)]
pub struct Ports {
    pub web: u16,
    pub websecure: u16,
    pub traefik: u16,
    pub collector: u16,
    pub auth: u16,
    pub mcp: u16,
    pub redis: u16,
    pub redis_exporter: u16,
    pub node_exporter: u16,
    pub blackbox: u16,
    pub prometheus: u16,
}

impl Ports {
    /// Ports that were free a moment ago (all bound at once, so they differ).
    pub fn pick() -> Result<Self> {
        let listeners = (0..11)
            .map(|_| TcpListener::bind((LOOPBACK, 0)))
            .collect::<std::io::Result<Vec<_>>>()
            .context("bind loopback ports")?;
        let ports = listeners
            .iter()
            .map(|listener| listener.local_addr().map(|addr| addr.port()))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self {
            web: ports[0],
            websecure: ports[1],
            traefik: ports[2],
            collector: ports[3],
            auth: ports[4],
            mcp: ports[5],
            redis: ports[6],
            redis_exporter: ports[7],
            node_exporter: ports[8],
            blackbox: ports[9],
            prometheus: ports[10],
        })
    }

    /// The compose stack's address of each service `examples/monitoring/prometheus.yml`
    /// scrapes or probes, with the demo's port for it.
    fn compose_addresses(&self) -> [(&'static str, u16); 8] {
        [
            ("collector:9464", self.collector),
            ("traefik:8082", self.traefik),
            ("traefik:8443", self.websecure),
            ("auth:8000", self.auth),
            ("mcp:3000", self.mcp),
            ("redis-exporter:9121", self.redis_exporter),
            ("node-exporter:9100", self.node_exporter),
            ("blackbox-exporter:9115", self.blackbox),
        ]
    }
}

/// Fills the `${NAME}` placeholders of a template's non-comment lines from `vars`; an unknown
/// name is an error (comment lines are kept as they are, so they may show placeholders).
pub fn fill(template: &str, vars: &[(&str, String)]) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    for line in template.lines() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            let mut rest = line;
            while let Some(at) = rest.find("${") {
                out.push_str(&rest[..at]);
                let end = rest[at..]
                    .find('}')
                    .with_context(|| format!("unclosed placeholder in `{line}`"))?;
                let name = &rest[at + 2..at + end];
                let value = vars
                    .iter()
                    .find(|(known, _)| *known == name)
                    .with_context(|| format!("unknown placeholder ${{{name}}} in `{line}`"))?;
                out.push_str(&value.1);
                rest = &rest[at + end + 1..];
            }
            out.push_str(rest);
        }
        out.push('\n');
    }
    Ok(out)
}

/// `examples/traefik/<name>` with its placeholders filled.
pub fn traefik_file(root: &Path, name: &str, vars: &[(&str, String)]) -> Result<String> {
    let path = root.join(TRAEFIK_EXAMPLE).join(name);
    let template =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    fill(&template, vars).with_context(|| format!("fill {}", path.display()))
}

/// `examples/monitoring/prometheus.yml` for the demo: every compose address replaced by its
/// loopback port, 2 s intervals, rule files by absolute path, no Alertmanager. Fails when the
/// example scrapes something the demo does not run, so the two cannot drift apart.
pub fn prometheus_config(root: &Path, ports: &Ports) -> Result<String> {
    let dir = root.join(MONITORING_EXAMPLE);
    let path = dir.join("prometheus.yml");
    let mut text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    for (address, port) in ports.compose_addresses() {
        text = text.replace(address, &loopback(port));
    }
    let mut config: Value =
        serde_yaml::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    let global = config
        .get_mut("global")
        .and_then(Value::as_mapping_mut)
        .context("prometheus.yml has no `global` section")?;
    for key in ["scrape_interval", "scrape_timeout", "evaluation_interval"] {
        global.insert(key.into(), DEMO_INTERVAL.into());
    }
    let rule_files: Vec<Value> = config["rule_files"]
        .as_sequence()
        .context("prometheus.yml has no `rule_files`")?
        .iter()
        .map(|file| {
            let file = file.as_str().context("a rule file is not a string")?;
            Ok(dir.join(file).display().to_string().into())
        })
        .collect::<Result<_>>()?;
    config["rule_files"] = Value::Sequence(rule_files);
    if let Some(mapping) = config.as_mapping_mut() {
        mapping.remove("alerting");
    }
    for target in static_targets(&config)? {
        let host = target
            .split_once("://")
            .map_or(target.as_str(), |(_, rest)| rest);
        if !host.starts_with(&format!("{LOOPBACK}:")) {
            bail!(
                "{} scrapes {target}, which the demo does not run",
                path.display()
            );
        }
    }
    serde_yaml::to_string(&config).context("write the demo's prometheus.yml")
}

/// Every `static_configs` target of every scrape job.
pub fn static_targets(config: &Value) -> Result<Vec<String>> {
    let mut targets = Vec::new();
    for job in config["scrape_configs"]
        .as_sequence()
        .context("prometheus.yml has no `scrape_configs`")?
    {
        for static_config in job["static_configs"].as_sequence().into_iter().flatten() {
            for target in static_config["targets"].as_sequence().into_iter().flatten() {
                targets.push(
                    target
                        .as_str()
                        .context("a target is not a string")?
                        .to_owned(),
                );
            }
        }
    }
    Ok(targets)
}

/// The demo's working directory layout.
#[derive(Debug)]
pub struct Dirs {
    pub root: PathBuf,
    pub logs: PathBuf,
    pub spool: PathBuf,
    pub state: PathBuf,
    pub prometheus_data: PathBuf,
    /// Traefik's working directory (holds `plugins-local/`).
    pub traefik: PathBuf,
}

impl Dirs {
    /// Empties `root` (a previous run's leftovers) and lays out the directories.
    pub fn prepare(root: &Path) -> Result<Self> {
        if root.exists() {
            std::fs::remove_dir_all(root).with_context(|| format!("empty {}", root.display()))?;
        }
        let dirs = Self {
            root: root.to_path_buf(),
            logs: root.join("logs"),
            spool: root.join("spool"),
            state: root.join("state"),
            prometheus_data: root.join("prometheus-data"),
            traefik: root.join("traefik"),
        };
        for dir in [
            &dirs.logs,
            &dirs.spool,
            &dirs.state,
            &dirs.prometheus_data,
            &dirs.traefik,
        ] {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        Ok(dirs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_and_refuses_unknown_ones() {
        let vars = [("PORT", "8080".to_owned())];
        let text = "# keeps ${COMMENTS}\naddress: \"127.0.0.1:${PORT}\"\n";
        assert_eq!(
            fill(text, &vars).unwrap(),
            "# keeps ${COMMENTS}\naddress: \"127.0.0.1:8080\"\n"
        );
        let err = fill("x: ${NOPE}", &vars).unwrap_err().to_string();
        assert!(err.contains("unknown placeholder ${NOPE}"), "{err}");
        assert!(fill("x: ${PORT", &vars).is_err());
    }

    #[test]
    fn the_monitoring_example_maps_onto_the_demo() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let ports = Ports::pick().unwrap();
        let config: Value =
            serde_yaml::from_str(&prometheus_config(root, &ports).unwrap()).unwrap();
        assert_eq!(config["global"]["scrape_interval"], "2s");
        assert!(config.get("alerting").is_none());
        let targets = static_targets(&config).unwrap();
        assert!(targets.contains(&format!("127.0.0.1:{}", ports.collector)));
        for file in config["rule_files"].as_sequence().unwrap() {
            assert!(Path::new(file.as_str().unwrap()).is_file(), "{file:?}");
        }
    }
}
