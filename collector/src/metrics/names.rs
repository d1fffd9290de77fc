//! Every metric and label name the collector serves, defined once: `/metrics` writes these and
//! the collector's tests look for them. Names are as Prometheus stores and PromQL queries them
//! (a counter ends in `_total`; [`family_name`] is what the encoder declares).

/// Suffix of a counter's sample name, not part of its family name.
pub const TOTAL_SUFFIX: &str = "_total";

/// The family name of a metric named here (a counter's name without `_total`).
#[must_use]
pub fn family_name(name: &str) -> &str {
    name.strip_suffix(TOTAL_SUFFIX).unwrap_or(name)
}

/// Default `--namespace`: the request metrics are `<namespace>_<name>`.
pub const DEFAULT_NAMESPACE: &str = "mcp_oauth";

// === Request metrics: the part after `<namespace>_` ===

/// Counter `{service,method,endpoint,status}`.
pub const REQUESTS_TOTAL: &str = "requests_total";
/// Histogram `{service,method,endpoint}` of non-stream requests, with trace exemplars.
pub const REQUEST_DURATION_SECONDS: &str = "request_duration_seconds";
/// Histogram `{service,method,endpoint}` of streamed responses' lifetimes.
pub const STREAM_DURATION_SECONDS: &str = "stream_duration_seconds";
/// Gauge `{service}`.
pub const ACTIVE_SESSIONS: &str = "active_sessions";
/// Counter `{result}`.
pub const TOKEN_VALIDATIONS_TOTAL: &str = "token_validations_total";
/// Counter.
pub const CLIENT_REGISTRATIONS_TOTAL: &str = "client_registrations_total";

/// The request metrics; a business counter may not take one of their family names.
pub const REQUEST_METRICS: [&str; 6] = [
    REQUESTS_TOTAL,
    REQUEST_DURATION_SECONDS,
    STREAM_DURATION_SECONDS,
    ACTIVE_SESSIONS,
    TOKEN_VALIDATIONS_TOTAL,
    CLIENT_REGISTRATIONS_TOTAL,
];

// === MCP metrics (OpenTelemetry MCP semantic conventions; not namespaced) ===

/// Histogram `{service,mcp_method_name,gen_ai_tool_name,gen_ai_prompt_name,error_type,
/// rpc_response_status_code,mcp_protocol_version}`: semconv `mcp.server.operation.duration`,
/// one observation per record with an MCP method; its `_count` counts the operations.
pub const MCP_OPERATION_DURATION_SECONDS: &str = "mcp_server_operation_duration_seconds";
/// Its label naming the tool of a `tools/call` (empty for other operations).
pub const MCP_TOOL_LABEL: &str = "gen_ai_tool_name";
/// Its label holding the JSON-RPC error code, `tool_error` or an HTTP 5xx (empty when none).
pub const MCP_ERROR_TYPE_LABEL: &str = "error_type";
/// Labels of [`MCP_OPERATION_DURATION_SECONDS`], in series-key order.
pub const MCP_OPERATION_LABELS: [&str; 7] = [
    SERVICE_LABEL,
    "mcp_method_name",
    MCP_TOOL_LABEL,
    "gen_ai_prompt_name",
    MCP_ERROR_TYPE_LABEL,
    "rpc_response_status_code",
    "mcp_protocol_version",
];

// === The collector's own metrics ===

/// Prefix of the collector's own metrics.
pub const OWN_PREFIX: &str = "gatetrace_collector_";
/// Counter `{transport}`: valid records taken.
pub const RECORDS_RECEIVED_TOTAL: &str = "gatetrace_collector_records_received_total";
/// Counter `{reason}`: lines rejected.
pub const RECORDS_REJECTED_TOTAL: &str = "gatetrace_collector_records_rejected_total";
/// Counter `{reason}`: records lost before aggregation.
pub const RECORDS_DROPPED_TOTAL: &str = "gatetrace_collector_records_dropped_total";
/// Counter: records whose MCP session was not tracked (`--max-sessions` reached).
pub const UNTRACKED_SESSION_RECORDS_TOTAL: &str =
    "gatetrace_collector_untracked_session_records_total";
/// Counter: records naming a session already ended by a `DELETE` (not brought back).
pub const ENDED_SESSION_RECORDS_TOTAL: &str = "gatetrace_collector_ended_session_records_total";
/// Counter `{kind}` (`tool`, `prompt`): MCP operations whose name was labelled `_OTHER` because
/// its service already has `--max-tools-per-service` / `--max-prompts-per-service` names.
pub const MCP_NAMES_OVERFLOW_TOTAL: &str = "gatetrace_collector_mcp_names_overflow_total";
/// Counter `{service,reason}`: requests recorded without a status, by the plugin's reason.
pub const REQUESTS_WITHOUT_STATUS_TOTAL: &str = "gatetrace_collector_requests_without_status_total";
/// Counter: counter names in records that are not configured business counters.
pub const UNKNOWN_COUNTER_NAMES_TOTAL: &str = "gatetrace_collector_unknown_counter_names_total";
/// Counter: batches acknowledged as duplicates.
pub const DUPLICATE_BATCHES_TOTAL: &str = "gatetrace_collector_duplicate_batches_total";
/// Gauge `{metric}`: label sets held per capped metric.
pub const SERIES: &str = "gatetrace_collector_series";
/// Counter `{metric}`: label sets sent to the overflow series.
pub const SERIES_OVERFLOW_TOTAL: &str = "gatetrace_collector_series_overflow_total";
/// Counter `{metric}`: series removed after `--series-idle-secs` without an update.
pub const SERIES_EXPIRED_TOTAL: &str = "gatetrace_collector_series_expired_total";
/// Counter `{reason}`: connections and requests refused before their body was read.
pub const REQUESTS_REFUSED_TOTAL: &str = "gatetrace_collector_requests_refused_total";
/// Gauge: batch sources remembered for duplicate detection.
pub const DEDUP_SOURCES: &str = "gatetrace_collector_dedup_sources";
/// Counter.
pub const SPANS_EXPORTED_TOTAL: &str = "gatetrace_collector_spans_exported_total";
/// Counter.
pub const SPANS_FAILED_TOTAL: &str = "gatetrace_collector_spans_failed_total";
/// Counter.
pub const SPANS_DROPPED_TOTAL: &str = "gatetrace_collector_spans_dropped_total";
/// Gauge.
pub const SPAN_QUEUE: &str = "gatetrace_collector_span_queue";
/// Gauge, 0 or 1.
pub const EXPORTER_HEALTHY: &str = "gatetrace_collector_exporter_healthy";
/// Counter.
pub const ACCESS_LINES_DROPPED_TOTAL: &str = "gatetrace_collector_access_lines_dropped_total";
/// Gauge: HTTP batches waiting for aggregation.
pub const QUEUE_DEPTH: &str = "gatetrace_collector_queue_depth";
/// Gauge.
pub const SPOOL_LAG_BYTES: &str = "gatetrace_collector_spool_lag_bytes";
/// Counter `{kind}`.
pub const SPOOL_ERRORS_TOTAL: &str = "gatetrace_collector_spool_errors_total";
/// Gauge (-1: no checkpoint yet).
pub const CHECKPOINT_AGE_SECONDS: &str = "gatetrace_collector_checkpoint_age_seconds";
/// Counter.
pub const CHECKPOINT_FAILURES_TOTAL: &str = "gatetrace_collector_checkpoint_failures_total";

// === Label names ===

/// Label of the per-route metrics and of [`ACTIVE_SESSIONS`].
pub const SERVICE_LABEL: &str = "service";
const METHOD_LABEL: &str = "method";
const ENDPOINT_LABEL: &str = "endpoint";
/// Labels of the per-route histograms.
pub const ROUTE_LABELS: [&str; 3] = [SERVICE_LABEL, METHOD_LABEL, ENDPOINT_LABEL];
/// Labels of [`REQUESTS_TOTAL`].
pub const REQUEST_LABELS: [&str; 4] = [SERVICE_LABEL, METHOD_LABEL, ENDPOINT_LABEL, "status"];
/// Label of the drop and rejection counters.
pub const REASON_LABEL: &str = "reason";
/// Label naming a capped metric in [`SERIES`] and [`SERIES_OVERFLOW_TOTAL`].
pub const METRIC_LABEL: &str = "metric";
/// Label of the exemplars.
pub const TRACE_ID_LABEL: &str = "trace_id";
