//! The shipped configs are valid plugin configs: the manifest's `testData` and every
//! gatetrace middleware in `examples/traefik/dynamic.yml` parse with the core's config parser.

use std::path::Path;

use gatetrace_core::config::Config;

fn yaml(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(what: &str, value: &serde_json::Value) -> Config {
    let json = serde_json::to_vec(value).unwrap();
    Config::from_json(&json).unwrap_or_else(|e| panic!("{what}: {e}"))
}

#[test]
fn manifest_is_a_complete_wasm_middleware_manifest_with_working_test_data() {
    let manifest = yaml(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".traefik.yml"));
    assert_eq!(manifest["type"], "middleware");
    assert_eq!(manifest["runtime"], "wasm");
    assert_eq!(manifest["wasmPath"], "plugin.wasm");
    for key in ["displayName", "summary"] {
        assert!(
            manifest[key].as_str().is_some_and(|s| !s.is_empty()),
            "{key}"
        );
    }
    let config = parse("testData", &manifest["testData"]);
    assert_eq!(config.service, "mcp-gateway");
    assert_eq!(config.spool.dir, "/var/spool/gatetrace");
}

#[test]
fn example_dynamic_config_middlewares_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/traefik");
    let dynamic = yaml(&root.join("dynamic.yml"));
    let middlewares = dynamic["http"]["middlewares"].as_object().unwrap();
    let mut services = Vec::new();
    // The gatetrace middlewares; the others (ForwardAuth) are Traefik's own.
    for (name, middleware) in middlewares {
        if middleware["plugin"]["gatetrace"].is_null() {
            continue;
        }
        let config = parse(name, &middleware["plugin"]["gatetrace"]);
        assert_eq!(config.spool.dir, "/spool", "{name}");
        services.push(config.service);
    }
    services.sort();
    assert_eq!(services, ["auth", "mcp"]);
    // The static config mounts the same spool dir into the plugin.
    let static_cfg = yaml(&root.join("traefik.yml"));
    let settings = &static_cfg["experimental"]["localPlugins"]["gatetrace"]["settings"];
    assert_eq!(settings["mounts"][0], "${SPOOL_DIR}:/spool");
    assert_eq!(settings["envs"][0], "HOSTNAME");
}
