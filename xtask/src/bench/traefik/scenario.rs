//! What the Traefik suite measures: the Traefik instances (each its own process and config),
//! the scenarios (an instance and a request shape), and the request shapes themselves.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use super::wrk::Request;

/// The plugin's name in Traefik's config (local plugin directory and middleware name).
const PLUGIN: &str = "gatetrace";
/// Instance (and scenario) ids the suite's code names.
pub const BARE: &str = "bare";
pub const GATETRACE: &str = "gatetrace";
pub const GATETRACE_MCP_HEADERS: &str = "gatetrace-mcp-headers";
pub const GATETRACE_MCP_BODY: &str = "gatetrace-mcp-body";
pub const OWN_OBSERVABILITY: &str = "traefik-observability";
/// The optional other build of the plugin (`GATETRACE_BENCH_VARIANT_WASM`).
pub const VARIANT: &str = "gatetrace-variant";
/// The `service` every gatetrace instance records.
const SERVICE: &str = "bench";

/// The wasm middleware an instance runs, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guest {
    None,
    /// The gatetrace plugin with its default config (service and spool dir set).
    Gatetrace,
    /// Another build of the plugin, same config: measured only when one is given.
    GatetraceVariant,
    /// The harness fixture guest in a calibration mode, optionally appending one line per
    /// request to a file in the instance's spool dir.
    Fixture {
        mode: &'static str,
        spool: bool,
    },
}

/// One Traefik process.
#[derive(Debug)]
pub struct Instance {
    pub id: &'static str,
    pub guest: Guest,
    /// A gatetrace collector tails this instance's spool (its CPU counts).
    pub collector: bool,
    /// Traefik's own observability: Prometheus metrics, OTLP tracing, JSON access log.
    pub own_observability: bool,
}

/// Every Traefik instance, started once and kept for the whole run.
pub const INSTANCES: [Instance; 8] = [
    Instance {
        id: BARE,
        guest: Guest::None,
        collector: false,
        own_observability: false,
    },
    Instance {
        id: "noop-guest",
        guest: Guest::Fixture {
            mode: "noop",
            spool: false,
        },
        collector: false,
        own_observability: false,
    },
    Instance {
        id: "calls-guest",
        guest: Guest::Fixture {
            mode: "calls",
            spool: true,
        },
        collector: false,
        own_observability: false,
    },
    Instance {
        id: GATETRACE,
        guest: Guest::Gatetrace,
        collector: true,
        own_observability: false,
    },
    Instance {
        id: GATETRACE_MCP_HEADERS,
        guest: Guest::Gatetrace,
        collector: true,
        own_observability: false,
    },
    Instance {
        id: GATETRACE_MCP_BODY,
        guest: Guest::Gatetrace,
        collector: true,
        own_observability: false,
    },
    Instance {
        id: OWN_OBSERVABILITY,
        guest: Guest::None,
        collector: false,
        own_observability: true,
    },
    Instance {
        id: VARIANT,
        guest: Guest::GatetraceVariant,
        collector: true,
        own_observability: false,
    },
];

/// The request a scenario sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// wrk's plain `GET /bench`.
    Plain,
    /// An MCP `tools/call` POST of a 2026-07-28 client: the operation in `Mcp-*` headers.
    McpHeaders,
    /// The same POST of a 2025-06-18 client: the operation only in the JSON-RPC body.
    McpBody,
}

/// One measured line: an instance sent one request shape.
#[derive(Debug)]
pub struct Scenario {
    pub id: &'static str,
    pub label: &'static str,
    pub instance: &'static str,
    pub shape: Shape,
}

/// Every scenario, in table order; each is compared with the bare scenario of its shape.
pub const SCENARIOS: [Scenario; 10] = [
    Scenario {
        id: BARE,
        label: "bare Traefik",
        instance: BARE,
        shape: Shape::Plain,
    },
    Scenario {
        id: "noop-guest",
        label: "no-op wasm guest",
        instance: "noop-guest",
        shape: Shape::Plain,
    },
    Scenario {
        id: "calls-guest",
        label: "calibration guest (gatetrace's host calls + a record-sized write, no work)",
        instance: "calls-guest",
        shape: Shape::Plain,
    },
    Scenario {
        id: GATETRACE,
        label: "gatetrace, default config",
        instance: GATETRACE,
        shape: Shape::Plain,
    },
    Scenario {
        id: OWN_OBSERVABILITY,
        label: "Traefik's own metrics + tracing + access log",
        instance: OWN_OBSERVABILITY,
        shape: Shape::Plain,
    },
    Scenario {
        id: "bare-mcp-post",
        label: "bare Traefik, MCP POST",
        instance: BARE,
        shape: Shape::McpHeaders,
    },
    Scenario {
        id: GATETRACE_MCP_HEADERS,
        label: "gatetrace, MCP POST with 2026-07-28 headers",
        instance: GATETRACE_MCP_HEADERS,
        shape: Shape::McpHeaders,
    },
    Scenario {
        id: "bare-mcp-body",
        label: "bare Traefik, MCP POST (2025-06-18)",
        instance: BARE,
        shape: Shape::McpBody,
    },
    Scenario {
        id: GATETRACE_MCP_BODY,
        label: "gatetrace, MCP POST parsed from the body",
        instance: GATETRACE_MCP_BODY,
        shape: Shape::McpBody,
    },
    Scenario {
        id: VARIANT,
        label: "gatetrace, the other build (GATETRACE_BENCH_VARIANT_WASM)",
        instance: VARIANT,
        shape: Shape::Plain,
    },
];

impl Scenario {
    /// The bare scenario sending the same request, or `None` for a bare one.
    pub fn reference(&self) -> Option<&'static Scenario> {
        if self.instance == BARE {
            return None;
        }
        SCENARIOS
            .iter()
            .find(|other| other.instance == BARE && other.shape == self.shape)
    }
}

impl Shape {
    /// The request with nothing added.
    pub fn request(self) -> Request {
        match self {
            Self::Plain => plain_request(),
            Self::McpHeaders => mcp_request(true, 0),
            Self::McpBody => mcp_request(false, 0),
        }
    }
}

/// wrk's plain `GET /bench`.
pub fn plain_request() -> Request {
    Request {
        method: "GET",
        path: "/bench",
        headers: Vec::new(),
        body: None,
    }
}

/// An MCP `tools/call` POST (the harness's `bench/harness-mcp-*.yaml` shapes), its arguments
/// padded by `pad` bytes; `with_headers`: a 2026-07-28 client's `Mcp-*` headers, else a
/// 2025-06-18 client (the operation only in the body).
pub fn mcp_request(with_headers: bool, pad: usize) -> Request {
    let mut arguments = json!({"city": "Berlin"});
    if pad > 0 {
        arguments["note"] = Value::String("x".repeat(pad));
    }
    let body = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "get_weather", "arguments": arguments},
    });
    let mut headers = vec![
        ("Content-Type".to_owned(), "application/json".to_owned()),
        (
            "Accept".to_owned(),
            "application/json, text/event-stream".to_owned(),
        ),
    ];
    if with_headers {
        headers.extend(
            [
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "get_weather"),
                ("Mcp-Param-City", "Berlin"),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
        );
    } else {
        headers.push(("MCP-Protocol-Version".to_owned(), "2025-06-18".to_owned()));
    }
    Request {
        method: "POST",
        path: "/mcp",
        headers,
        body: Some(body.to_string()),
    }
}

/// `request` with `count` more headers of `value_len`-byte values.
pub fn with_extra_headers(mut request: Request, count: usize, value_len: usize) -> Request {
    for i in 0..count {
        request
            .headers
            .push((format!("X-Bench-{i}"), "v".repeat(value_len)));
    }
    request
}

/// Where an instance's files go and what it talks to.
#[derive(Debug)]
pub struct Ports {
    pub web: u16,
    /// Traefik's own metrics entry point (own-observability instance only).
    pub metrics: u16,
    pub backend: u16,
    pub otlp_sink: u16,
}

/// Writes `traefik.yml` and `dynamic.yml` (and the local plugin) for `instance` into `dir`;
/// returns the static config's path.
pub fn write_traefik_config(
    instance: &Instance,
    dir: &Path,
    ports: &Ports,
    wasm: &Path,
    plugin_manifest: &Path,
) -> Result<std::path::PathBuf> {
    let spool = dir.join("spool");
    let mut static_config = json!({
        "entryPoints": {"web": {"address": format!("127.0.0.1:{}", ports.web)}},
        "providers": {"file": {"filename": dir.join("dynamic.yml")}},
        "log": {"level": "ERROR"},
    });
    let mut router = json!({
        "rule": "PathPrefix(`/`)", "entryPoints": ["web"], "service": "backend",
    });
    let mut dynamic = json!({"http": {
        "routers": {},
        "services": {"backend": {"loadBalancer": {"servers": [
            {"url": format!("http://127.0.0.1:{}", ports.backend)},
        ]}}},
    }});
    let plugin_config = match instance.guest {
        Guest::None => None,
        Guest::Gatetrace | Guest::GatetraceVariant => {
            Some(json!({"service": SERVICE, "spool": {"dir": spool}}))
        }
        Guest::Fixture { mode, spool: false } => Some(json!({"mode": mode})),
        Guest::Fixture { mode, spool: true } => Some(json!({"mode": mode, "spool": spool})),
    };
    if let Some(config) = plugin_config {
        let plugin_dir = dir.join("plugins-local/src").join(PLUGIN);
        std::fs::create_dir_all(&plugin_dir)?;
        std::fs::create_dir_all(&spool)?;
        std::fs::copy(wasm, plugin_dir.join("plugin.wasm"))
            .with_context(|| format!("copy {}", wasm.display()))?;
        std::fs::copy(plugin_manifest, plugin_dir.join(".traefik.yml"))
            .with_context(|| format!("copy {}", plugin_manifest.display()))?;
        static_config["experimental"] = json!({"localPlugins": {PLUGIN: {
            "moduleName": PLUGIN, "settings": {"mounts": [spool]},
        }}});
        router["middlewares"] = json!([PLUGIN]);
        dynamic["http"]["middlewares"] = json!({PLUGIN: {"plugin": {PLUGIN: config}}});
    }
    if instance.own_observability {
        static_config["entryPoints"]["metrics"] =
            json!({"address": format!("127.0.0.1:{}", ports.metrics)});
        static_config["metrics"] = json!({"prometheus": {"entryPoint": "metrics"}});
        static_config["tracing"] = json!({"otlp": {"http": {
            "endpoint": format!("http://127.0.0.1:{}/v1/traces", ports.otlp_sink),
        }}});
        static_config["accessLog"] = json!({"filePath": dir.join("access.log"), "format": "json"});
    }
    dynamic["http"]["routers"]["all"] = router;
    let static_file = dir.join("traefik.yml");
    std::fs::write(&static_file, serde_yaml::to_string(&static_config)?)?;
    std::fs::write(dir.join("dynamic.yml"), serde_yaml::to_string(&dynamic)?)?;
    Ok(static_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_has_its_instance_and_a_bare_reference_of_its_shape() {
        for scenario in &SCENARIOS {
            assert!(
                INSTANCES.iter().any(|i| i.id == scenario.instance),
                "{scenario:?}"
            );
            match scenario.reference() {
                None => assert_eq!(scenario.instance, BARE),
                Some(bare) => assert_eq!(bare.shape, scenario.shape),
            }
        }
    }

    #[test]
    fn mcp_requests_carry_the_harness_shapes() {
        let headers = mcp_request(true, 0);
        assert_eq!(
            headers.body.as_deref(),
            Some(
                r#"{"id":7,"jsonrpc":"2.0","method":"tools/call","params":{"arguments":{"city":"Berlin"},"name":"get_weather"}}"#
            )
        );
        assert!(
            headers
                .headers
                .contains(&("Mcp-Method".into(), "tools/call".into()))
        );
        let body = mcp_request(false, 1000);
        assert!(!body.headers.iter().any(|(name, _)| name == "Mcp-Method"));
        assert!(body.body.unwrap().len() > 1100);
        let padded = with_extra_headers(plain_request(), 3, 10);
        assert_eq!(padded.headers.len(), 3);
        assert_eq!(padded.headers[2], ("X-Bench-2".into(), "v".repeat(10)));
    }

    #[test]
    fn configs_wire_the_plugin_and_traefiks_own_observability() {
        let dir = std::env::temp_dir().join(format!("xtask-traefik-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wasm = dir.join("in.wasm");
        std::fs::write(&wasm, b"\0asm").unwrap();
        let ports = Ports {
            web: 1001,
            metrics: 1002,
            backend: 1003,
            otlp_sink: 1004,
        };
        let gatetrace = &INSTANCES[3];
        let file = write_traefik_config(gatetrace, &dir, &ports, &wasm, &wasm).unwrap();
        let static_yaml = std::fs::read_to_string(file).unwrap();
        assert!(
            static_yaml.contains("moduleName: gatetrace"),
            "{static_yaml}"
        );
        assert!(!static_yaml.contains("tracing"));
        let dynamic = std::fs::read_to_string(dir.join("dynamic.yml")).unwrap();
        assert!(dynamic.contains("service: bench"), "{dynamic}");
        assert!(dynamic.contains("http://127.0.0.1:1003"));
        assert!(
            dir.join("plugins-local/src/gatetrace/plugin.wasm")
                .is_file()
        );
        let own = &INSTANCES[6];
        let file = write_traefik_config(own, &dir, &ports, &wasm, &wasm).unwrap();
        let static_yaml = std::fs::read_to_string(file).unwrap();
        for expected in [
            "http://127.0.0.1:1004/v1/traces",
            "entryPoint: metrics",
            "format: json",
        ] {
            assert!(
                static_yaml.contains(expected),
                "{expected} in {static_yaml}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
