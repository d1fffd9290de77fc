//! What the demo prints once the traffic mix is over: per route (and per MCP tool, once the
//! collector serves per-tool metrics) rate, error ratio and latency from Prometheus; active
//! sessions, token results, registrations; a few access lines with their trace ids; the alert
//! rules' states; every seed metric's value, each of which must be non-zero.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::http;
use super::services::OAUTH_METADATA;

/// Where the figures come from.
#[derive(Debug)]
pub struct Sources {
    /// Prometheus's base URL.
    pub prometheus: String,
    /// The collector's access log (JSON lines).
    pub access_log: PathBuf,
}

/// The seed's metrics, each with the PromQL that totals it.
const SEED_METRICS: [(&str, &str); 5] = [
    ("mcp_oauth_requests_total", "sum(mcp_oauth_requests_total)"),
    (
        "mcp_oauth_request_duration_seconds",
        "sum(mcp_oauth_request_duration_seconds_count)",
    ),
    (
        "mcp_oauth_active_sessions",
        "sum(mcp_oauth_active_sessions)",
    ),
    (
        "mcp_oauth_token_validations_total",
        "sum(mcp_oauth_token_validations_total)",
    ),
    (
        "mcp_oauth_client_registrations_total",
        "sum(mcp_oauth_client_registrations_total)",
    ),
];

/// The seed's queries, prefilled in the Prometheus graph link.
const SEED_QUERIES: [&str; 5] = [
    "sum by (service, endpoint) (rate(mcp_oauth_requests_total[1m]))",
    "histogram_quantile(0.95, sum by (service, le) (rate(mcp_oauth_request_duration_seconds_bucket[1m])))",
    "sum by (service) (mcp_oauth_active_sessions)",
    "sum by (result) (rate(mcp_oauth_token_validations_total[1m]))",
    "mcp_oauth_client_registrations_total",
];

/// The per-tool histogram the MCP-aware collector serves (OpenTelemetry MCP conventions).
const TOOL_HISTOGRAM: &str = "mcp_server_operation_duration_seconds";

/// What a query parameter value must encode (all but RFC 3986's unreserved characters).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Access lines shown.
const ACCESS_LINES: usize = 6;

/// One series of an instant query: its labels and value.
type Sample = (BTreeMap<String, String>, f64);

/// Runs an instant query.
fn query(prometheus: &str, expr: &str) -> Result<Vec<Sample>> {
    let answer = http::get_json(&format!("{prometheus}/api/v1/query"), &[("query", expr)])
        .with_context(|| format!("query {expr}"))?;
    let result = answer["data"]["result"]
        .as_array()
        .with_context(|| format!("query {expr}: no result in {answer}"))?;
    Ok(result
        .iter()
        .map(|series| {
            let labels = series["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            let value = series["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            (labels, value)
        })
        .collect())
}

/// Values of a query keyed by the given labels joined with spaces.
fn keyed(prometheus: &str, expr: &str, by: &[&str]) -> Result<BTreeMap<String, f64>> {
    Ok(query(prometheus, expr)?
        .into_iter()
        .map(|(labels, value)| {
            let key = by
                .iter()
                .map(|name| labels.get(*name).map_or("", String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            (key, value)
        })
        .collect())
}

fn heading(title: &str) {
    println!(
        "\n== {title} {}",
        "=".repeat(78usize.saturating_sub(title.len() + 4))
    );
}

fn millis(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_finite() => format!("{:.0} ms", s * 1000.0),
        _ => "-".into(),
    }
}

fn percent(part: Option<f64>, whole: Option<f64>) -> String {
    match (part, whole) {
        (_, Some(w)) if w > 0.0 => format!("{:.1}%", 100.0 * part.unwrap_or(0.0) / w),
        _ => "-".into(),
    }
}

/// Prints everything; returns the problems found (a seed metric at zero, no alert rules).
pub fn print(sources: &Sources) -> Result<Vec<String>> {
    let prom = sources.prometheus.as_str();
    let mut problems = Vec::new();
    routes(prom)?;
    tools(prom)?;
    totals(prom)?;
    access_lines(sources);
    alerts(prom, &mut problems)?;
    heading("seed metrics (sums, all must be non-zero)");
    for (name, expr) in SEED_METRICS {
        let value = query(prom, expr)?.first().map_or(0.0, |(_, v)| *v);
        let mark = if value > 0.0 { "ok" } else { "ZERO" };
        println!("  {name:<40} {value:>10.0}  {mark}");
        if value <= 0.0 || value.is_nan() {
            problems.push(format!("{name} is zero"));
        }
    }
    Ok(problems)
}

fn routes(prom: &str) -> Result<()> {
    const BY: [&str; 3] = ["service", "method", "endpoint"];
    let rate = keyed(
        prom,
        "sum by (service, method, endpoint) (rate(mcp_oauth_requests_total[1m]))",
        &BY,
    )?;
    let errors = keyed(
        prom,
        "sum by (service, method, endpoint) (rate(mcp_oauth_requests_total{status=~\"4..|5..\"}[1m]))",
        &BY,
    )?;
    let known = keyed(
        prom,
        "sum by (service, method, endpoint) (rate(mcp_oauth_requests_total{status!=\"unknown\"}[1m]))",
        &BY,
    )?;
    let quantile = |metric: &str, q: f64| {
        keyed(
            prom,
            &format!(
                "histogram_quantile({q}, sum by (service, method, endpoint, le) (rate({metric}_bucket[1m])))"
            ),
            &BY,
        )
    };
    let (p50, p95) = (
        quantile("mcp_oauth_request_duration_seconds", 0.5)?,
        quantile("mcp_oauth_request_duration_seconds", 0.95)?,
    );
    let (s50, s95) = (
        quantile("mcp_oauth_stream_duration_seconds", 0.5)?,
        quantile("mcp_oauth_stream_duration_seconds", 0.95)?,
    );
    heading("per route, last minute (Prometheus)");
    println!(
        "  {:<7} {:<7} {:<24} {:>7} {:>7} {:>9} {:>9} {:>9}",
        "service", "method", "route", "req/s", "errors", "no status", "p50", "p95"
    );
    for (key, r) in &rate {
        let mut parts = key.splitn(3, ' ');
        let (service, method, endpoint) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let k = known.get(key).copied();
        let unknown = r - k.unwrap_or(0.0);
        let (q50, q95) = match (p50.get(key), p95.get(key)) {
            (Some(a), Some(b)) if a.is_finite() => (millis(Some(*a)), millis(Some(*b))),
            _ => (
                format!("~{}", millis(s50.get(key).copied())),
                format!("~{}", millis(s95.get(key).copied())),
            ),
        };
        println!(
            "  {service:<7} {method:<7} {endpoint:<24} {r:>7.2} {:>7} {:>9} {q50:>9} {q95:>9}",
            percent(errors.get(key).copied(), k),
            percent(Some(unknown.max(0.0)), Some(*r)),
        );
    }
    println!(
        "  errors: 4xx and 5xx among requests with a known status. no status: unbuffered responses\n  \
         whose headers fix no status (SSE implies 200). ~: their stream lifetime."
    );
    Ok(())
}

fn tools(prom: &str) -> Result<()> {
    heading("per MCP tool, last minute (Prometheus)");
    let count = format!("{TOOL_HISTOGRAM}_count");
    if query(prom, &format!("count({count})"))?.is_empty() {
        println!(
            "  (no {TOOL_HISTOGRAM} series: this collector does not measure MCP tools yet;\n   \
             the routes above carry the MCP traffic)"
        );
        return Ok(());
    }
    const BY: [&str; 1] = ["gen_ai_tool_name"];
    let rate = keyed(
        prom,
        &format!("sum by (gen_ai_tool_name) (rate({count}{{gen_ai_tool_name!=\"\"}}[1m]))"),
        &BY,
    )?;
    let errors = keyed(
        prom,
        &format!(
            "sum by (gen_ai_tool_name) (rate({count}{{gen_ai_tool_name!=\"\",error_type!=\"\"}}[1m]))"
        ),
        &BY,
    )?;
    let quantile = |q: f64| {
        keyed(
            prom,
            &format!(
                "histogram_quantile({q}, sum by (gen_ai_tool_name, le) (rate({TOOL_HISTOGRAM}_bucket{{gen_ai_tool_name!=\"\"}}[1m])))"
            ),
            &BY,
        )
    };
    let (p50, p95) = (quantile(0.5)?, quantile(0.95)?);
    println!(
        "  {:<24} {:>7} {:>7} {:>9} {:>9}",
        "tool", "calls/s", "errors", "p50", "p95"
    );
    for (tool, r) in &rate {
        println!(
            "  {tool:<24} {r:>7.2} {:>7} {:>9} {:>9}",
            percent(errors.get(tool).copied(), Some(*r)),
            millis(p50.get(tool).copied()),
            millis(p95.get(tool).copied())
        );
    }
    Ok(())
}

fn totals(prom: &str) -> Result<()> {
    heading("sessions, tokens, registrations (totals since start)");
    let list = |expr: &str, by: &str| -> Result<String> {
        let parts: Vec<String> = keyed(prom, expr, &[by])?
            .iter()
            .map(|(key, value)| format!("{key} {value:.0}"))
            .collect();
        Ok(if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        })
    };
    println!(
        "  active MCP sessions:  {}",
        list("sum by (service) (mcp_oauth_active_sessions)", "service")?
    );
    println!(
        "  token validations:    {}",
        list(
            "sum by (result) (mcp_oauth_token_validations_total)",
            "result"
        )?
    );
    let registrations = query(prom, "sum(mcp_oauth_client_registrations_total)")?
        .first()
        .map_or(0.0, |(_, v)| *v);
    println!("  client registrations: {registrations:.0}");
    Ok(())
}

fn access_lines(sources: &Sources) {
    heading("access lines (collector, most recent of each kind)");
    let text = std::fs::read_to_string(&sources.access_log).unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut shown = Vec::new();
    for line in text.lines().rev() {
        let Ok(record) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let field = |name: &str| match &record[name] {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        };
        if !seen.insert((field("method"), field("endpoint"), field("status"))) {
            continue;
        }
        shown.push(format!(
            "  {} {:<5} {:<6} {:<24} {:>4} {:>8.1} ms  trace {}",
            field("time"),
            field("service"),
            field("method"),
            field("endpoint"),
            field("status"),
            record["duration_ms"].as_f64().unwrap_or(f64::NAN),
            field("trace_id")
        ));
        if shown.len() == ACCESS_LINES {
            break;
        }
    }
    if shown.is_empty() {
        println!("  (none yet in {})", sources.access_log.display());
    }
    for line in shown.iter().rev() {
        println!("{line}");
    }
}

fn alerts(prom: &str, problems: &mut Vec<String>) -> Result<()> {
    heading("alert rules (Prometheus; `for:` as in production, so `pending` first)");
    let answer = http::get_json(&format!("{prom}/api/v1/rules"), &[("type", "alert")])?;
    let mut inactive = Vec::new();
    let mut total = 0;
    for group in answer["data"]["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            total += 1;
            let name = rule["name"].as_str().unwrap_or_default();
            let state = rule["state"].as_str().unwrap_or_default();
            if state == "inactive" {
                inactive.push(name.to_owned());
                continue;
            }
            for alert in rule["alerts"].as_array().into_iter().flatten() {
                let labels: Vec<String> = alert["labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "severity"))
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                println!(
                    "  {name:<28} {:<8} {}",
                    alert["state"].as_str().unwrap_or(state),
                    labels.join(" ")
                );
            }
        }
    }
    if total == 0 {
        problems.push("Prometheus loaded no alert rules".into());
    }
    println!("  inactive ({}): {}", inactive.len(), inactive.join(", "));
    Ok(())
}

/// Prints what to open.
pub fn print_urls(urls: &[(&str, String)]) {
    heading("open");
    let get = |name: &str| {
        urls.iter()
            .find(|(key, _)| *key == name)
            .map_or_else(String::new, |(_, url)| url.clone())
    };
    let prometheus = get("PROMETHEUS_URL");
    let graph: Vec<String> = SEED_QUERIES
        .iter()
        .enumerate()
        .map(|(i, expr)| {
            format!(
                "g{i}.expr={}&g{i}.tab=0&g{i}.range_input=5m",
                utf8_percent_encode(expr, QUERY_VALUE)
            )
        })
        .collect();
    println!("  collector page:      {}/", get("COLLECTOR_URL"));
    println!("  collector metrics:   {}/metrics", get("COLLECTOR_URL"));
    println!(
        "  Prometheus (seed queries): {prometheus}/graph?{}",
        graph.join("&")
    );
    println!("  Prometheus alerts:   {prometheus}/alerts");
    println!(
        "  Traefik dashboard:   {}/dashboard/",
        get("TRAEFIK_API_URL")
    );
    println!(
        "  gateway (MCP, OAuth): {}/mcp, {}{OAUTH_METADATA}",
        get("GATEWAY_URL"),
        get("GATEWAY_URL")
    );
}
