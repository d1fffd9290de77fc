//! `examples/monitoring` stays true to what the collector serves: every metric the rules and
//! the dashboard name is in a real `/metrics` answer; with promtool, amtool and the blackbox
//! exporter, the configs check, the rules' unit tests pass and alerts route as documented;
//! every alert has a runbook note and a test; the dashboards' LogQL is well formed (syntax
//! only: no Loki or Grafana binary runs here). Each PromQL query returning data from real
//! Prometheus is checked by `demo_stack.rs`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use axum::body::Body;
use axum::http::Request;
use gatetrace_collector::{Collector, Config};
use gatetrace_core::mcp::MessageKind;
use gatetrace_core::mcp::facts::McpFacts;
use gatetrace_core::record::{HostKind, Record, Session, SessionEvent};
use gatetrace_core::testing::ndjson_line;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

fn monitoring() -> PathBuf {
    testkit::workspace_root().join("examples/monitoring")
}

/// Identifiers starting with one of the collector's prefixes.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["mcp_oauth_", "gatetrace_collector_", "mcp_server_"] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            // Recording-rule names (`level:metric:op`) are not collector metrics.
            // A bare prefix (`mcp_oauth_<name>_total` in prose) names nothing.
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !tail[end..].starts_with(':')
                && !tail[..end].ends_with('_')
            {
                names.insert(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    names
}

#[tokio::test]
async fn rules_and_dashboard_name_only_metrics_the_collector_serves() {
    let collector = Collector::start(Config::load(["c", "--access-log", "off"]).unwrap(), None)
        .await
        .unwrap();
    let stream = Record {
        sampled: true,
        streamed: true,
        status: None,
        endpoint: "/sse".into(),
        host_kind: HostKind::Envoy,
        session: Some(Session {
            id: "x".into(),
            event: SessionEvent::Start,
        }),
        ..Record::example(1)
    };
    // And a plain request (the latency histogram).
    let plain = Record {
        streamed: false,
        status: Some(200),
        ..stream.clone()
    };
    // And an MCP tool call (the MCP operations histogram).
    let tool_call = Record {
        mcp: Some(McpFacts {
            kind: Some(MessageKind::Request),
            method: Some("tools/call".into()),
            tool: Some("search".into()),
            ..McpFacts::default()
        }),
        ..plain.clone()
    };
    let line = ndjson_line(&stream) + &ndjson_line(&plain) + &ndjson_line(&tool_call);
    let response = collector
        .app()
        .oneshot(Request::post("/v1/records").body(Body::from(line)).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = collector
        .app()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let exposition = String::from_utf8(body.to_vec()).unwrap();
    collector.shutdown().await.unwrap();
    // Sample names as served (`_total`, `_bucket`, ... included) and family names.
    let served: BTreeSet<&str> = exposition
        .lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(family) => family.split(' ').next(),
            None if l.starts_with('#') => None,
            None => l.split(['{', ' ']).next(),
        })
        .collect();

    let mut checked = 0;
    for file in [
        "rules/gatetrace.rules.yml",
        "grafana/dashboards/gatetrace.json",
        "README.md",
    ] {
        let text = std::fs::read_to_string(monitoring().join(file)).unwrap();
        for name in metric_names(&text) {
            assert!(
                served.contains(name.as_str()),
                "{file} names {name}, which /metrics does not serve:\n{exposition}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} metric references found");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring().join("grafana/dashboards/gatetrace.json")).unwrap(),
    )
    .unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() >= 10);
}

#[test]
#[ignore = "e2e: needs promtool, amtool and the blackbox exporter (GATETRACE_PROMTOOL, GATETRACE_AMTOOL, GATETRACE_BLACKBOX_EXPORTER)"]
fn promtool_amtool_and_blackbox_accept_the_configs_and_the_rule_tests_pass() {
    let promtool = testkit::tool("GATETRACE_PROMTOOL");
    let amtool = testkit::tool("GATETRACE_AMTOOL");
    let blackbox = testkit::tool("GATETRACE_BLACKBOX_EXPORTER");
    for (tool, args) in [
        (&promtool, vec!["check", "config", "prometheus.yml"]),
        (
            &promtool,
            vec!["check", "rules", "rules/gatetrace.rules.yml"],
        ),
        (
            &promtool,
            vec!["test", "rules", "rules/gatetrace.tests.yml"],
        ),
        (
            &amtool,
            vec!["check-config", "alertmanager/alertmanager.yml"],
        ),
        (
            &blackbox,
            vec!["--config.check", "--config.file=blackbox/blackbox.yml"],
        ),
    ] {
        let (ok, _, out) = run(tool, &args);
        assert!(ok, "{} {args:?}:\n{out}", tool.display());
    }
    // Alerts route as the seed routes them: pages to PagerDuty, tickets to Slack, the rest
    // to the team's e-mail.
    for (labels, receiver) in [
        ("severity=page", "pagerduty"),
        ("severity=ticket", "slack"),
        ("severity=info", "team-notifications"),
    ] {
        let (ok, out, _) = run(
            &amtool,
            &[
                "config",
                "routes",
                "test",
                "--config.file=alertmanager/alertmanager.yml",
                labels,
            ],
        );
        assert!(ok && out.trim() == receiver, "{labels} routes to {out}");
    }
}

/// Runs `tool` in `examples/monitoring`: success, stdout, and stdout with stderr.
fn run(tool: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(monitoring())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn yaml(path: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(monitoring().join(path)).unwrap()).unwrap()
}

#[test]
fn every_alert_has_a_severity_a_runbook_note_and_a_unit_test() {
    let rules = yaml("rules/gatetrace.rules.yml");
    let tests = std::fs::read_to_string(monitoring().join("rules/gatetrace.tests.yml")).unwrap();
    let mut alerts = 0;
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let Some(name) = rule["alert"].as_str() else {
                continue;
            };
            alerts += 1;
            let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
            assert!(matches!(severity, "page" | "ticket"), "{name}: {severity}");
            for annotation in ["summary", "description", "runbook"] {
                let text = rule["annotations"][annotation].as_str().unwrap_or_default();
                assert!(text.len() > 20, "{name} has no {annotation}");
            }
            assert!(
                tests.contains(&format!("alertname: {name}\n")),
                "{name} has no promtool test case"
            );
        }
    }
    // The seed's alerts (service down, error ratio, token failures, latency, collector lag and
    // drops, Redis, memory, certificates), adapted.
    assert!(alerts >= 15, "only {alerts} alerts");
}

/// A LogQL query's syntax, as far as it can be checked without Loki: a stream selector of
/// well-formed matchers, then pipeline stages Loki knows. (Hand-written: no crate parses
/// LogQL.)
fn check_logql(query: &str) -> Result<Vec<String>, String> {
    let query = query.trim();
    let rest = query.strip_prefix('{').ok_or("no stream selector")?;
    let end = rest.find('}').ok_or("unclosed stream selector")?;
    let mut labels = Vec::new();
    for matcher in rest[..end].split(',') {
        let matcher = matcher.trim();
        let at = matcher
            .find(['=', '!'])
            .ok_or_else(|| format!("no operator in `{matcher}`"))?;
        let (name, tail) = matcher.split_at(at);
        let name = name.trim();
        if name.is_empty()
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || name.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(format!("bad label name in `{matcher}`"));
        }
        let value = ["=~", "!~", "!=", "="]
            .iter()
            .find_map(|op| tail.strip_prefix(op))
            .ok_or_else(|| format!("bad operator in `{matcher}`"))?
            .trim();
        if value.len() < 2 || !value.starts_with('"') || !value.ends_with('"') {
            return Err(format!("value not quoted in `{matcher}`"));
        }
        labels.push(name.to_owned());
    }
    let pipeline = rest[end + 1..].trim();
    for stage in pipeline
        .split(" | ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let stage = stage.trim_start_matches('|').trim();
        let word = stage.split_whitespace().next().unwrap_or_default();
        let known = [
            "json",
            "logfmt",
            "regexp",
            "pattern",
            "unpack",
            "line_format",
            "label_format",
            "drop",
            "keep",
            "decolorize",
        ];
        let filter = ["=", "~", "!=", "!~"]
            .iter()
            .any(|op| stage.starts_with(op));
        if !known.contains(&word) && !filter && !stage.contains(['=', '>', '<']) {
            return Err(format!("unknown stage `{stage}`"));
        }
    }
    Ok(labels)
}

#[test]
fn the_dashboards_logql_is_well_formed_and_uses_labels_alloy_sets() {
    let alloy = std::fs::read_to_string(monitoring().join("alloy/config.alloy")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring().join("grafana/dashboards/gatetrace.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if target["datasource"]["type"] != "loki" {
                continue;
            }
            let expr = target["expr"].as_str().unwrap();
            let labels = check_logql(&expr.replace("$service", ".+"))
                .unwrap_or_else(|e| panic!("{expr}: {e}"));
            for label in labels {
                assert!(
                    alloy.contains(&format!("{label} ")) || alloy.contains(&format!("\"{label}\"")),
                    "{expr} selects on {label}, which the Alloy pipeline does not set"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 1);
    assert_eq!(check_logql("{job=\"a\"} | json").unwrap(), ["job"]);
    for bad in [
        "job=\"a\"",
        "{job=a}",
        "{job=\"a\"",
        "{1x=\"a\"}",
        "{job=\"a\"} | frobnicate",
    ] {
        assert!(check_logql(bad).is_err(), "{bad} passed");
    }
}

#[test]
fn grafana_provisioning_names_the_datasources_the_dashboard_uses() {
    let datasources = yaml("grafana/provisioning/datasources/gatetrace.yml");
    let uids: Vec<&str> = datasources["datasources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|d| d["uid"].as_str().unwrap())
        .collect();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring().join("grafana/dashboards/gatetrace.json")).unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        let uid = panel["datasource"]["uid"].as_str().unwrap();
        assert!(
            uid == "${datasource}" || uids.contains(&uid),
            "panel {} uses datasource {uid}",
            panel["title"]
        );
    }
}
