//! `examples/compose` stays runnable where no container engine is available to run it: Traefik
//! and the collector share the spool volume, path and user; the plugin config is one the core
//! accepts; Prometheus scrapes the collector's port with exemplars on (and, with promtool, its
//! config checks).

use std::path::PathBuf;
use std::process::Command;

use serde_yaml::Value;

fn compose_dir() -> PathBuf {
    testkit::workspace_root().join("examples/compose")
}

fn yaml(name: &str) -> Value {
    let path = compose_dir().join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("not a list: {value:?}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn traefik_and_the_collector_share_the_spool_volume_path_and_user() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    let (traefik, collector) = (&services["traefik"], &services["collector"]);

    // The same non-root user: Traefik's spool files are readable by their owner only.
    let user = traefik["user"]
        .as_str()
        .expect("traefik runs as a set user");
    assert_eq!(collector["user"].as_str(), Some(user));
    let args = &collector["build"]["args"];
    let built = format!(
        "{}:{}",
        args["UID"].as_str().unwrap(),
        args["GID"].as_str().unwrap()
    );
    assert_eq!(built, user, "the image is built for the user it runs as");
    assert!(!user.starts_with("0:") && !user.starts_with("root"));

    // The same volume at the same path, and the collector tails that path.
    let spool = "spool:/var/spool/gatetrace";
    assert!(strings(&traefik["volumes"]).contains(&spool));
    assert!(strings(&collector["volumes"]).contains(&spool));
    let env = &collector["environment"];
    assert_eq!(env["GATETRACE_SPOOL_DIR"], "/var/spool/gatetrace");
    assert!(
        strings(&services["volumes-init"]["volumes"]).contains(&spool),
        "the init service prepares the spool volume"
    );

    // Traefik maps that path into the plugin as /spool, where the plugin writes.
    let traefik_static = yaml("traefik/traefik.yml");
    let settings = &traefik_static["experimental"]["localPlugins"]["gatetrace"]["settings"];
    assert!(strings(&settings["mounts"]).contains(&"/var/spool/gatetrace:/spool"));
    let dynamic = yaml("traefik/dynamic.yml");
    let plugin = &dynamic["http"]["middlewares"]["gatetrace"]["plugin"]["gatetrace"];
    assert_eq!(plugin["spool"]["dir"], "/spool");

    // Spans go to the Jaeger service of the same file.
    let endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"].as_str().unwrap();
    assert_eq!(endpoint, "http://jaeger:4317");
    assert!(services["jaeger"].is_mapping());
}

#[test]
fn the_plugin_config_in_the_example_is_accepted_by_the_core() {
    let dynamic = yaml("traefik/dynamic.yml");
    let plugin = &dynamic["http"]["middlewares"]["gatetrace"]["plugin"]["gatetrace"];
    let json = serde_json::to_vec(plugin).unwrap();
    let config = gatetrace_core::config::Config::from_json(&json)
        .unwrap_or_else(|e| panic!("the core rejects the example's plugin config: {e}"));
    assert_eq!(config.spool.dir, "/spool");
    assert_eq!(config.service, "mcp-api");
    // The router sends traffic through that middleware.
    let router = &dynamic["http"]["routers"]["mcp"];
    assert!(strings(&router["middlewares"]).contains(&"gatetrace"));
}

#[test]
fn prometheus_scrapes_the_collectors_port_with_exemplars_on() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    let listen = services["collector"]["environment"]["GATETRACE_LISTEN"]
        .as_str()
        .unwrap();
    let port = listen.rsplit_once(':').unwrap().1;
    let prometheus = yaml("prometheus.yml");
    let targets: Vec<&str> = prometheus["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|job| job["static_configs"].as_sequence().unwrap())
        .flat_map(|sc| strings(&sc["targets"]))
        .collect();
    assert_eq!(targets, [format!("collector:{port}")]);
    assert!(
        strings(&services["prometheus"]["command"]).contains(&"--enable-feature=exemplar-storage")
    );
}

#[test]
#[ignore = "e2e: needs promtool"]
fn promtool_accepts_the_examples_prometheus_config() {
    let promtool = testkit::tool("GATETRACE_PROMTOOL");
    let out = Command::new(promtool)
        .args(["check", "config"])
        .arg(compose_dir().join("prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
