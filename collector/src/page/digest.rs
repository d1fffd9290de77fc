//! One reading of `/metrics`, reduced to what the page shows: per route and per MCP tool the
//! counts and latency buckets, active sessions, token results, registrations and the
//! collector's own health. Read from the exposition, so it holds whatever `/metrics` holds.

use std::collections::BTreeMap;

use serde::Serialize;

use super::exposition::{Sample, samples};
use crate::metrics::names::{
    self, MCP_ERROR_TYPE_LABEL, MCP_OPERATION_DURATION_SECONDS, MCP_TOOL_LABEL,
};

/// The histogram bucket bound label.
const LE_LABEL: &str = "le";

/// `(service, method, endpoint)`.
pub(crate) type RouteKey = (String, String, String);
/// `(service, tool)`.
pub(crate) type ToolKey = (String, String);

/// Counters of one route or tool, cumulative since the collector started.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Counts {
    /// Requests (or tool calls).
    pub total: f64,
    /// Answered 4xx (routes only).
    pub client_errors: f64,
    /// Answered 5xx (routes), or failed with an `error_type` (tools).
    pub errors: f64,
    /// Cumulative latency histogram: `(upper bound, count)`, increasing, `+Inf` last. Empty
    /// for a route that only streams.
    pub buckets: Vec<(f64, f64)>,
}

/// The collector's own health, as `/metrics` shows it now.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Health {
    pub records_received: f64,
    pub records_rejected: f64,
    /// Records lost before aggregation, by reason.
    pub records_dropped: BTreeMap<String, f64>,
    pub spans_exported: f64,
    pub spans_failed: f64,
    pub spans_dropped: f64,
    pub span_queue: f64,
    pub exporter_healthy: bool,
    pub access_lines_dropped: f64,
    pub queue_depth: f64,
    pub spool_lag_bytes: f64,
    pub spool_errors: f64,
    /// Seconds since the last checkpoint (`-1`: none yet or disabled).
    pub checkpoint_age_seconds: f64,
    pub checkpoint_failures: f64,
    pub series_overflow: f64,
}

/// One reading of the metrics.
#[derive(Debug, Clone, Default)]
pub(crate) struct Digest {
    /// When it was read, Unix milliseconds.
    pub at_unix_ms: u64,
    pub routes: BTreeMap<RouteKey, Counts>,
    /// `None` while `/metrics` has no MCP operations histogram.
    pub tools: Option<BTreeMap<ToolKey, Counts>>,
    /// Active MCP sessions by service.
    pub sessions: BTreeMap<String, f64>,
    /// Token validations by result.
    pub tokens: BTreeMap<String, f64>,
    pub registrations: f64,
    pub health: Health,
}

/// The full names of the request metrics under a namespace.
struct RequestNames {
    requests: String,
    latency_bucket: String,
    sessions: String,
    tokens: String,
    registrations: String,
}

impl RequestNames {
    fn new(namespace: &str) -> Self {
        let name = |metric: &str| format!("{namespace}_{metric}");
        Self {
            requests: name(names::REQUESTS_TOTAL),
            latency_bucket: name(names::REQUEST_DURATION_SECONDS) + "_bucket",
            sessions: name(names::ACTIVE_SESSIONS),
            tokens: name(names::TOKEN_VALIDATIONS_TOTAL),
            registrations: name(names::CLIENT_REGISTRATIONS_TOTAL),
        }
    }
}

impl Digest {
    /// Reads the exposition `text` (request metrics under `namespace`), taken at `at_unix_ms`.
    pub fn read(text: &str, namespace: &str, at_unix_ms: u64) -> Self {
        let request = RequestNames::new(namespace);
        let tool_bucket = format!("{MCP_OPERATION_DURATION_SECONDS}_bucket");
        let tool_count = format!("{MCP_OPERATION_DURATION_SECONDS}_count");
        let mut digest = Self {
            at_unix_ms,
            ..Self::default()
        };
        for sample in samples(text) {
            let name = sample.name;
            if name == request.requests {
                digest.count_request(&sample);
            } else if name == request.latency_bucket {
                let route = route_key(&sample);
                add_bucket(
                    &mut digest.routes.entry(route).or_default().buckets,
                    &sample,
                );
            } else if name.starts_with(MCP_OPERATION_DURATION_SECONDS) {
                let tools = digest.tools.get_or_insert_with(BTreeMap::new);
                let tool = sample.label(MCP_TOOL_LABEL);
                if tool.is_empty() {
                    continue;
                }
                let key = (
                    sample.label(names::SERVICE_LABEL).to_owned(),
                    tool.to_owned(),
                );
                let counts = tools.entry(key).or_default();
                if name == tool_count {
                    counts.total += sample.value;
                    if !sample.label(MCP_ERROR_TYPE_LABEL).is_empty() {
                        counts.errors += sample.value;
                    }
                } else if name == tool_bucket {
                    add_bucket(&mut counts.buckets, &sample);
                }
            } else if name == request.sessions {
                *digest
                    .sessions
                    .entry(sample.label(names::SERVICE_LABEL).to_owned())
                    .or_default() += sample.value;
            } else if name == request.tokens {
                *digest
                    .tokens
                    .entry(sample.label("result").to_owned())
                    .or_default() += sample.value;
            } else if name == request.registrations {
                digest.registrations += sample.value;
            } else if name.starts_with(names::OWN_PREFIX) {
                digest.health.read(&sample);
            }
        }
        digest
    }

    fn count_request(&mut self, sample: &Sample<'_>) {
        let counts = self.routes.entry(route_key(sample)).or_default();
        counts.total += sample.value;
        match sample.label("status").as_bytes().first() {
            Some(b'4') => counts.client_errors += sample.value,
            Some(b'5') => counts.errors += sample.value,
            _ => {}
        }
    }
}

impl Health {
    fn read(&mut self, sample: &Sample<'_>) {
        let value = sample.value;
        match sample.name {
            names::RECORDS_RECEIVED_TOTAL => self.records_received += value,
            names::RECORDS_REJECTED_TOTAL => self.records_rejected += value,
            names::RECORDS_DROPPED_TOTAL => {
                *self
                    .records_dropped
                    .entry(sample.label(names::REASON_LABEL).to_owned())
                    .or_default() += value;
            }
            names::SPANS_EXPORTED_TOTAL => self.spans_exported = value,
            names::SPANS_FAILED_TOTAL => self.spans_failed = value,
            names::SPANS_DROPPED_TOTAL => self.spans_dropped = value,
            names::SPAN_QUEUE => self.span_queue = value,
            names::EXPORTER_HEALTHY => self.exporter_healthy = value >= 1.0,
            names::ACCESS_LINES_DROPPED_TOTAL => self.access_lines_dropped = value,
            names::QUEUE_DEPTH => self.queue_depth = value,
            names::SPOOL_LAG_BYTES => self.spool_lag_bytes = value,
            names::SPOOL_ERRORS_TOTAL => self.spool_errors += value,
            names::CHECKPOINT_AGE_SECONDS => self.checkpoint_age_seconds = value,
            names::CHECKPOINT_FAILURES_TOTAL => self.checkpoint_failures = value,
            names::SERIES_OVERFLOW_TOTAL => self.series_overflow += value,
            _ => {}
        }
    }
}

fn route_key(sample: &Sample<'_>) -> RouteKey {
    let [service, method, endpoint] = names::ROUTE_LABELS.map(|l| sample.label(l).to_owned());
    (service, method, endpoint)
}

/// Adds one `_bucket` sample to a cumulative histogram, summing series with the same bound.
fn add_bucket(buckets: &mut Vec<(f64, f64)>, sample: &Sample<'_>) {
    let Ok(bound) = sample.label(LE_LABEL).parse::<f64>() else {
        return;
    };
    match buckets.binary_search_by(|(b, _)| b.total_cmp(&bound)) {
        Ok(i) => buckets[i].1 += sample.value,
        Err(i) => buckets.insert(i, (bound, sample.value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
mcp_oauth_request_duration_seconds_bucket{service=\"auth\",method=\"POST\",endpoint=\"/token\",le=\"0.1\"} 3 # {trace_id=\"ab\"} 0.05 1.0
mcp_oauth_request_duration_seconds_bucket{service=\"auth\",method=\"POST\",endpoint=\"/token\",le=\"+Inf\"} 4
mcp_oauth_requests_total{service=\"auth\",method=\"POST\",endpoint=\"/token\",status=\"200\"} 2
mcp_oauth_requests_total{service=\"auth\",method=\"POST\",endpoint=\"/token\",status=\"401\"} 1
mcp_oauth_requests_total{service=\"auth\",method=\"POST\",endpoint=\"/token\",status=\"503\"} 1
mcp_oauth_requests_total{service=\"mcp\",method=\"GET\",endpoint=\"/mcp\",status=\"unknown\"} 5
mcp_oauth_active_sessions{service=\"mcp\"} 2
mcp_oauth_token_validations_total{result=\"failure\"} 1
mcp_oauth_client_registrations_total 6
gatetrace_collector_records_dropped_total{reason=\"plugin\"} 7
gatetrace_collector_exporter_healthy 1
gatetrace_collector_spool_lag_bytes 4096
# EOF
";

    #[test]
    fn a_reading_sums_routes_statuses_buckets_and_health() {
        let digest = Digest::read(TEXT, "mcp_oauth", 9);
        let token = &digest.routes[&("auth".into(), "POST".into(), "/token".into())];
        assert_eq!(
            (token.total, token.client_errors, token.errors),
            (4.0, 1.0, 1.0)
        );
        assert_eq!(token.buckets, [(0.1, 3.0), (f64::INFINITY, 4.0)]);
        let stream = &digest.routes[&("mcp".into(), "GET".into(), "/mcp".into())];
        assert_eq!((stream.total, stream.buckets.len()), (5.0, 0));
        assert_eq!(digest.sessions["mcp"], 2.0);
        assert_eq!(digest.tokens["failure"], 1.0);
        assert_eq!(digest.registrations, 6.0);
        assert_eq!(digest.health.records_dropped["plugin"], 7.0);
        assert!(digest.health.exporter_healthy);
        assert_eq!(digest.health.spool_lag_bytes, 4096.0);
        assert!(digest.tools.is_none(), "no MCP histogram, no tools");
        assert_eq!(digest.at_unix_ms, 9);
    }

    #[test]
    fn tools_come_from_the_mcp_histogram_summed_over_its_other_labels() {
        let text = "\
mcp_server_operation_duration_seconds_bucket{service=\"mcp\",mcp_method_name=\"tools/call\",gen_ai_tool_name=\"search\",error_type=\"\",le=\"0.1\"} 2
mcp_server_operation_duration_seconds_bucket{service=\"mcp\",mcp_method_name=\"tools/call\",gen_ai_tool_name=\"search\",error_type=\"\",le=\"+Inf\"} 3
mcp_server_operation_duration_seconds_count{service=\"mcp\",mcp_method_name=\"tools/call\",gen_ai_tool_name=\"search\",error_type=\"\"} 3
mcp_server_operation_duration_seconds_bucket{service=\"mcp\",mcp_method_name=\"tools/call\",gen_ai_tool_name=\"search\",error_type=\"tool_error\",le=\"0.1\"} 0
mcp_server_operation_duration_seconds_bucket{service=\"mcp\",mcp_method_name=\"tools/call\",gen_ai_tool_name=\"search\",error_type=\"tool_error\",le=\"+Inf\"} 1
mcp_server_operation_duration_seconds_count{service=\"mcp\",mcp_method_name=\"tools/call\",gen_ai_tool_name=\"search\",error_type=\"tool_error\"} 1
mcp_server_operation_duration_seconds_count{service=\"mcp\",mcp_method_name=\"initialize\",gen_ai_tool_name=\"\",error_type=\"\"} 4
";
        let digest = Digest::read(text, "mcp_oauth", 0);
        let tools = digest.tools.expect("the histogram is there");
        assert_eq!(tools.len(), 1, "{tools:?}");
        let search = &tools[&("mcp".into(), "search".into())];
        assert_eq!((search.total, search.errors), (4.0, 1.0));
        assert_eq!(search.buckets, [(0.1, 2.0), (f64::INFINITY, 4.0)]);
    }
}
