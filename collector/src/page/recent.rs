//! The last sampled traces, kept for the page (bounded, in memory only: a restart starts an
//! empty list), and the `--trace-url-template` that links each to the trace backend.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use gatetrace_core::record::Record;
use serde::Serialize;

/// Sampled traces kept at most.
pub(crate) const KEPT_TRACES: usize = 20;
/// What `--trace-url-template` replaces with a trace id.
pub const TRACE_ID_PLACEHOLDER: &str = "{trace_id}";

/// A sampled request as the page lists it: ids and labels only (no addresses, agents,
/// sessions or tokens; the endpoint is the route template, without a query string).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RecentTrace {
    pub trace_id: String,
    pub service: String,
    pub method: String,
    pub endpoint: String,
    /// Absent for an unbuffered stream.
    pub status: Option<u16>,
    pub streamed: bool,
    pub duration_ms: f64,
    /// When the request ended, Unix milliseconds.
    pub end_unix_ms: u64,
}

impl RecentTrace {
    fn of(record: &Record) -> Self {
        Self {
            trace_id: record.trace_id.clone(),
            service: record.service.clone(),
            method: record.method.clone(),
            endpoint: record.endpoint.clone(),
            status: record.status,
            streamed: record.streamed,
            duration_ms: record.duration_ns as f64 / 1e6,
            end_unix_ms: record.start_unix_ns.saturating_add(record.duration_ns) / 1_000_000,
        }
    }
}

/// The last [`KEPT_TRACES`] sampled records the aggregator applied.
#[derive(Debug, Default)]
pub(crate) struct RecentTraces {
    kept: Mutex<VecDeque<RecentTrace>>,
}

impl RecentTraces {
    /// Keeps the sampled ones of a batch just applied (the oldest kept make room).
    pub fn offer(&self, records: &[Record]) {
        let mut sampled = records.iter().filter(|r| r.sampled).peekable();
        if sampled.peek().is_none() {
            return;
        }
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for record in sampled {
            if kept.len() == KEPT_TRACES {
                kept.pop_front();
            }
            kept.push_back(RecentTrace::of(record));
        }
    }

    /// The kept traces, newest first.
    pub fn latest(&self) -> Vec<RecentTrace> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.iter().rev().cloned().collect()
    }
}

/// A link to a trace in the trace backend, e.g. `http://jaeger:16686/trace/{trace_id}`: an
/// `http://` or `https://` URL holding [`TRACE_ID_PLACEHOLDER`], without credentials (it is
/// shown on the page).
#[derive(Clone, PartialEq, Eq)]
pub struct TraceUrlTemplate(String);

impl TraceUrlTemplate {
    /// The link to `trace_id` (lowercase hex, checked on ingest, so it needs no escaping).
    #[must_use]
    pub fn url(&self, trace_id: &str) -> String {
        self.0.replace(TRACE_ID_PLACEHOLDER, trace_id)
    }
}

impl fmt::Debug for TraceUrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl FromStr for TraceUrlTemplate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(rest) = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("https://"))
        else {
            return Err(format!("{s:?} must start with http:// or https://"));
        };
        if !s.contains(TRACE_ID_PLACEHOLDER) {
            return Err(format!("{s:?} must contain {TRACE_ID_PLACEHOLDER}"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{s:?} must not contain spaces"));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(
                "the template must not hold credentials (user:password@): it is shown on the page"
                    .into(),
            );
        }
        if authority.is_empty() || authority.starts_with('{') {
            return Err(format!("{s:?} needs a host"));
        }
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64, sampled: bool) -> Record {
        let line = format!(
            "{{\"v\":1,\"request_id\":\"r{n}\",\"trace_id\":\"{n:032x}\",\"span_id\":\"{n:016x}\",\
             \"sampled\":{sampled},\"start_unix_ns\":2000000000,\"duration_ns\":1500000,\
             \"method\":\"GET\",\"endpoint\":\"/a\",\"status\":200,\"service\":\"s\",\
             \"client_addr\":\"10.0.0.1\",\"user_agent\":\"agent\",\"host_kind\":\"envoy\"}}"
        );
        Record::from_ndjson_line(line.as_bytes()).unwrap()
    }

    #[test]
    fn only_sampled_records_are_kept_newest_first_and_bounded() {
        let recent = RecentTraces::default();
        let records: Vec<Record> = (1..=KEPT_TRACES as u64 + 5)
            .map(|n| record(n, n % 2 == 1 || n > 5))
            .collect();
        recent.offer(&records);
        let latest = recent.latest();
        assert_eq!(latest.len(), KEPT_TRACES);
        assert_eq!(latest[0].trace_id, format!("{:032x}", KEPT_TRACES + 5));
        assert!(!latest.iter().any(|t| t.trace_id == format!("{:032x}", 2)));
        assert_eq!(latest[0].duration_ms, 1.5);
        assert_eq!(latest[0].end_unix_ms, 2001);
        let json = serde_json::to_string(&latest).unwrap();
        assert!(
            !json.contains("10.0.0.1") && !json.contains("agent"),
            "{json}"
        );
    }

    #[test]
    fn templates_need_a_scheme_the_placeholder_and_no_credentials() {
        let ok: TraceUrlTemplate = "http://jaeger:16686/trace/{trace_id}".parse().unwrap();
        assert_eq!(ok.url("ab"), "http://jaeger:16686/trace/ab");
        for (bad, needle) in [
            ("jaeger:16686/trace/{trace_id}", "http://"),
            ("http://jaeger:16686/search", "{trace_id}"),
            ("http://admin:pw@grafana/{trace_id}", "credentials"),
            ("http://{trace_id}", "host"),
            ("http://h/{trace_id} x", "spaces"),
        ] {
            let err = bad.parse::<TraceUrlTemplate>().unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
