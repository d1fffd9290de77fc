//! The Traefik plugin catalog's package: `cargo xtask package` writes a zip with `.traefik.yml`
//! and `plugin.wasm` at its top level; unpacked by Traefik's rules (the first path component
//! stripped when every entry has one) into `plugins-local/src/<moduleName>/`, it loads in real
//! Traefik with the manifest's `testData` and no mounts, serves requests through the plugin,
//! and a bad config is still refused. (The catalog's download step needs its servers.)

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_yaml::{Mapping, Value};

/// The plugin's name in the static config (Traefik's local plugins use it as the directory).
const MODULE: &str = "gatetrace";

/// The zip's entries as (path, bytes), unpacked by Traefik's rule: when every entry lies
/// below one top directory, that first component is stripped.
fn unpack(zip_path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        if file.is_dir() {
            continue;
        }
        let path = file.enclosed_name().expect("no path escapes the archive");
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        entries.push((path, bytes));
    }
    let first = |p: &PathBuf| p.components().next().map(|c| c.as_os_str().to_owned());
    let top = entries.first().and_then(|(p, _)| first(p));
    let nested = entries
        .iter()
        .all(|(p, _)| p.components().count() > 1 && first(p) == top);
    if nested {
        for (path, _) in &mut entries {
            *path = path.components().skip(1).collect();
        }
    }
    entries
}

fn get(port: u16, case: &str) -> (u16, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    match agent
        .get(format!("http://127.0.0.1:{port}/ping"))
        .header("X-Case", case)
        .call()
    {
        Ok(response) => (
            response.status().as_u16(),
            response
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ),
        Err(_) => (0, None),
    }
}

#[test]
#[ignore = "e2e: runs `cargo xtask package` and real Traefik (GATETRACE_TRAEFIK)"]
fn the_catalog_zip_loads_in_real_traefik_with_its_test_data_and_no_mounts() {
    let traefik = testkit::tool("GATETRACE_TRAEFIK");
    let root = testkit::workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let out = Command::new(cargo)
        .args(["xtask", "package"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo xtask package:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let zip_path = root.join(format!(
        "target/gatetrace-{}.zip",
        env!("CARGO_PKG_VERSION")
    ));
    let entries = unpack(&zip_path);
    let mut names: Vec<String> = entries
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".traefik.yml", "plugin.wasm"],
        "the zip's top level"
    );

    // The manifest the catalog reads is the repository root's.
    let manifest_bytes = &entries
        .iter()
        .find(|(p, _)| p == Path::new(".traefik.yml"))
        .unwrap()
        .1;
    assert_eq!(
        manifest_bytes,
        &std::fs::read(root.join(".traefik.yml")).unwrap(),
        "the zip carries the root .traefik.yml"
    );
    let manifest: Value = serde_yaml::from_slice(manifest_bytes).unwrap();
    assert_eq!(manifest["type"], "middleware");
    assert_eq!(manifest["runtime"], "wasm");
    assert_eq!(manifest["wasmPath"], "plugin.wasm");
    assert!(
        manifest["displayName"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(manifest["summary"].as_str().is_some_and(|s| s.len() > 20));
    let test_data = manifest["testData"].as_mapping().expect("testData").clone();

    let work = tempfile::tempdir().unwrap();
    let plugin_dir = work.path().join("plugins-local/src").join(MODULE);
    std::fs::create_dir_all(&plugin_dir).unwrap();
    for (path, bytes) in &entries {
        std::fs::write(plugin_dir.join(path), bytes).unwrap();
    }

    let port = testkit::free_port();
    let dynamic_path = work.path().join("dynamic.yml");
    // Traefik's own ping handler is the backend, so nothing but Traefik and the plugin runs.
    let static_config = format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:{port}\"\n\
         ping:\n  entryPoint: web\n  manualRouting: true\n\
         providers:\n  file:\n    filename: \"{}\"\n\
         log:\n  level: INFO\n\
         experimental:\n  localPlugins:\n    {MODULE}:\n      moduleName: {MODULE}\n",
        dynamic_path.display()
    );
    let mut bad = test_data.clone();
    bad.insert("bogusOption".into(), "1".into());
    let plugin = |config: Mapping| {
        let mut inner = Mapping::new();
        inner.insert(MODULE.into(), Value::Mapping(config));
        let mut plugin = Mapping::new();
        plugin.insert("plugin".into(), Value::Mapping(inner));
        Value::Mapping(plugin)
    };
    let router = |case: &str, middleware: &str| {
        serde_yaml::from_str::<Value>(&format!(
            "rule: \"Path(`/ping`) && Header(`X-Case`, `{case}`)\"\n\
             entryPoints: [web]\nservice: ping@internal\nmiddlewares: [{middleware}]\n"
        ))
        .unwrap()
    };
    let mut routers = Mapping::new();
    routers.insert("good".into(), router("good", "catalog"));
    routers.insert("bad".into(), router("bad", "broken"));
    let mut middlewares = Mapping::new();
    middlewares.insert("catalog".into(), plugin(test_data));
    middlewares.insert("broken".into(), plugin(bad));
    let mut http = Mapping::new();
    http.insert("routers".into(), Value::Mapping(routers));
    http.insert("middlewares".into(), Value::Mapping(middlewares));
    let mut dynamic = Mapping::new();
    dynamic.insert("http".into(), Value::Mapping(http));
    std::fs::write(&dynamic_path, serde_yaml::to_string(&dynamic).unwrap()).unwrap();
    let static_path = work.path().join("traefik.yml");
    std::fs::write(&static_path, static_config).unwrap();

    let traefik = testkit::ChildGuard::spawn(
        Command::new(traefik)
            .arg(format!("--configFile={}", static_path.display()))
            .current_dir(work.path())
            .env("HOSTNAME", "catalog-test"),
        work.path().join("traefik.log"),
    );
    testkit::wait_for_port("traefik", port, Duration::from_secs(30));
    testkit::wait_until(
        &format!("the plugin's route to answer\n{}", traefik.log()),
        Duration::from_secs(30),
        || get(port, "good").0 == 200,
    );
    // Requests pass through the plugin: testData echoes the request id it assigns.
    let mut ids = Vec::new();
    for _ in 0..20 {
        let (status, id) = get(port, "good");
        assert_eq!(status, 200, "{}", traefik.log());
        ids.push(id.expect("the plugin echoes X-Request-Id (testData echoRequestId)"));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "request ids are unique");

    // A bad config is refused, with the key named.
    testkit::wait_until(
        "traefik to log the bad config",
        Duration::from_secs(20),
        || traefik.log().contains("bogusOption"),
    );
    assert_ne!(
        get(port, "bad").0,
        200,
        "a broken middleware must not serve"
    );
}
