//! `examples/monitoring` stays true to what the collector serves: every metric the rules and
//! the dashboard name is in a real `/metrics` answer; with promtool and amtool, the configs
//! check and the rules' unit tests pass.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use axum::body::Body;
use axum::http::Request;
use gatetrace_collector::{Collector, Config};
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
    for prefix in ["mcp_oauth_", "gatetrace_collector_"] {
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
    let line = ndjson_line(&stream) + &ndjson_line(&plain);
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
#[ignore = "e2e: needs promtool and amtool (GATETRACE_PROMTOOL, GATETRACE_AMTOOL)"]
fn promtool_and_amtool_accept_the_configs_and_the_rule_tests_pass() {
    let promtool = testkit::tool("GATETRACE_PROMTOOL");
    let amtool = testkit::tool("GATETRACE_AMTOOL");
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
    ] {
        let out = Command::new(tool)
            .args(&args)
            .current_dir(monitoring())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}:\n{}{}",
            tool.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
