//! `examples/envoy/envoy.yaml`: valid against Envoy's API schema (PyPI `envoy-data-plane`,
//! parsed strictly by `examples/envoy/validate.py`), pointing at the built plugin file and at
//! the cluster its plugin configuration names; and that embedded configuration runs in the
//! harness's Envoy profile.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::proxy::{batch_key, records};
use gatetrace_core::config::Config;
use gatetrace_host::http_wasm::{BackendResponse, HttpRequest};
use gatetrace_host::proxy::{CallResponse, Profile, ProxyHost, ProxyOptions};
use serde_json::Value;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn example() -> String {
    let path: PathBuf = testkit::workspace_root().join("examples/envoy/envoy.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs the validator on the YAML `text` (handed over as JSON, so the venv needs no PyYAML):
/// `Ok(summary)` or `Err(its error output)`.
fn validate(text: &str) -> Result<Value, String> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(text).expect("YAML");
    let json = serde_json::to_vec_pretty(&yaml).expect("YAML as JSON");
    let file = std::env::temp_dir().join(format!(
        "gatetrace-envoy-{}-{}.json",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&file, json).expect("write");
    let python = testkit::tool("GATETRACE_PYTHON");
    let script = testkit::workspace_root().join("examples/envoy/validate.py");
    let output = Command::new(python)
        .arg(script)
        .arg(&file)
        .output()
        .expect("run the validator");
    let _ = std::fs::remove_file(&file);
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).expect("validator prints JSON"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn the_envoy_example_is_valid_envoy_config_and_runs_in_the_harness() {
    let summary = validate(&example()).unwrap_or_else(|e| panic!("envoy.yaml rejected: {e}"));
    let filters = summary["wasm_filters"].as_array().expect("filters");
    assert_eq!(filters.len(), 1, "{summary}");
    let filter = &filters[0];
    let filename = filter["filename"]
        .as_str()
        .expect("vm_config.code.local.filename");
    assert_eq!(
        Path::new(filename).file_name().and_then(|f| f.to_str()),
        Some("gatetrace-proxy.wasm"),
        "the filter loads the built plugin file"
    );
    let embedded = filter["configuration"].as_str().expect("configuration");
    let config = Config::from_json(embedded.as_bytes())
        .unwrap_or_else(|e| panic!("embedded plugin configuration: {e}"));
    let clusters: Vec<String> = summary["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| c.as_str().expect("name").to_owned())
        .collect();
    assert!(
        clusters.contains(&config.collector.cluster),
        "collector.cluster {} is one of the file's clusters {clusters:?}",
        config.collector.cluster
    );

    // The plugin, configured exactly as the file configures it.
    let mut options = ProxyOptions::new(Profile::Envoy);
    options.plugin_config = embedded.as_bytes().to_vec();
    options.root_id = filter["root_id"].as_str().expect("root_id").to_owned();
    options.vm_id = filter["vm_id"].as_str().expect("vm_id").to_owned();
    options.clusters = clusters;
    let mut host = ProxyHost::from_file(&testkit::wasm_artifact("gatetrace-proxy.wasm"), options)
        .unwrap_or_else(|e| panic!("the example's configuration failed: {e:#}"));
    let exchange = host.http(&HttpRequest::get("/mcp"), &BackendResponse::status(200));
    assert_eq!(exchange.failure, None);
    host.advance(Duration::from_millis(config.collector.tick_ms))
        .expect("tick");
    let calls = host.pending_calls();
    assert_eq!(calls.len(), 1, "one batch per tick");
    assert_eq!(calls[0].cluster, config.collector.cluster);
    assert_eq!(
        calls[0].headers.get(":path"),
        Some(config.collector.path.as_str())
    );
    assert_eq!(batch_key(&calls[0]).1, 1);
    let got = records(&calls[0]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].service, config.service);
    host.respond_call(calls[0].id, &CallResponse::status(200))
        .expect("answer");
}

#[test]
#[ignore = "e2e: needs cargo xtask wasm"]
fn the_validator_rejects_unknown_fields() {
    let text = example();
    let needle = "      connect_timeout: 1s\n";
    assert!(
        text.contains(needle),
        "the example has a cluster connect_timeout"
    );
    let broken = text.replacen(
        needle,
        "      connect_timeout: 1s\n      conect_timeout: 1s\n",
        1,
    );
    let error = validate(&broken).expect_err("a misspelt field must fail");
    assert!(error.contains("conect_timeout"), "{error}");
}

/// The `pluginConfig` of `examples/istio/wasmplugin.yaml` is a valid gatetrace configuration
/// whose collector cluster is Istio's name for the collector Service's port.
#[test]
fn the_istio_plugin_config_is_a_valid_configuration() {
    let path = testkit::workspace_root().join("examples/istio/wasmplugin.yaml");
    let text = std::fs::read_to_string(&path).expect("wasmplugin.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    assert_eq!(doc["kind"].as_str(), Some("WasmPlugin"));
    assert_eq!(
        doc["apiVersion"].as_str(),
        Some("extensions.istio.io/v1alpha1")
    );
    let spec = &doc["spec"];
    assert_eq!(spec["failStrategy"].as_str(), Some("FAIL_OPEN"));
    assert!(
        spec["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("oci://"))
    );
    let json = serde_json::to_vec(&spec["pluginConfig"]).expect("JSON");
    let config = Config::from_json(&json).unwrap_or_else(|e| panic!("pluginConfig: {e}"));
    let (direction, port, host) = {
        let mut parts = config.collector.cluster.split('|');
        let direction = parts.next().unwrap_or_default().to_owned();
        let port = parts.next().unwrap_or_default().to_owned();
        let host = parts.nth(1).unwrap_or_default().to_owned();
        (direction, port, host)
    };
    assert_eq!(direction, "outbound");
    assert!(port.parse::<u16>().is_ok(), "{}", config.collector.cluster);
    assert_eq!(host, config.collector.authority);
}

/// Without the Python validator: the plugin configuration embedded in the Envoy example is a
/// valid gatetrace configuration naming a cluster of the file.
#[test]
fn the_envoy_example_embeds_a_valid_configuration() {
    let doc: serde_yaml::Value = serde_yaml::from_str(&example()).expect("YAML");
    let resources = &doc["static_resources"];
    let filters = &resources["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"];
    let wasm = &filters[0]["typed_config"]["config"];
    let embedded = wasm["configuration"]["value"]
        .as_str()
        .expect("configuration.value");
    let config = Config::from_json(embedded.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let clusters: Vec<&str> = resources["clusters"]
        .as_sequence()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        clusters.contains(&config.collector.cluster.as_str()),
        "{clusters:?}"
    );
    assert!(
        wasm["vm_config"]["code"]["local"]["filename"]
            .as_str()
            .is_some_and(|f| f.ends_with("/gatetrace-proxy.wasm"))
    );
}
