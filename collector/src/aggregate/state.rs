//! The aggregate state: the metric values, the spool offsets and the batch dedup memory in one
//! serialisable value, changed in one step per batch, so a checkpoint of it is always consistent.

use std::collections::{BTreeMap, HashMap};

use gatetrace_core::mcp::policy::UnknownStatus;
use gatetrace_core::record::{Record, TokenResult};
use serde::{Deserialize, Serialize};

use super::dedup::Dedup;
use super::mcp::{McpOperations, NameCaps};
use super::series::SEP;
pub use super::series::{Exemplar, Family, Hist, OVERFLOW};
use crate::batch::Reject;

/// The settings aggregation depends on (a subset of the config).
#[derive(Debug, Clone)]
pub struct Settings {
    pub latency_bounds: Vec<f64>,
    pub stream_bounds: Vec<f64>,
    pub series_cap: usize,
    pub max_sessions: usize,
    pub dedup_sources: usize,
    pub business_counters: Vec<String>,
    pub registration_endpoint: String,
    /// Tool and prompt names per service with their own label value.
    pub mcp_names: NameCaps,
}

#[cfg(test)]
impl Settings {
    /// Small settings for unit tests.
    pub(crate) fn for_tests() -> Self {
        Self {
            latency_bounds: vec![0.01, 0.1, 1.0],
            stream_bounds: vec![1.0, 10.0],
            series_cap: 3,
            max_sessions: 2,
            dedup_sources: 2,
            business_counters: vec!["orders".into()],
            registration_endpoint: "/register".into(),
            mcp_names: NameCaps {
                tools: 2,
                prompts: 2,
            },
        }
    }
}

/// Where a batch came from (for `records_received_total{transport}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Spool,
}

/// One tracked MCP session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionEntry {
    pub service: String,
    /// When its latest request ended, Unix nanoseconds.
    pub last_unix_ns: u64,
}

/// Everything a checkpoint holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// `requests_total{service,method,endpoint,status}`.
    pub requests: Family<u64>,
    /// `request_duration_seconds{service,method,endpoint}`, non-stream records.
    pub latency: Family<Hist>,
    /// `stream_duration_seconds{service,method,endpoint}`, stream records.
    pub streams: Family<Hist>,
    /// `token_validations_total{result}` by `TokenResult` order.
    pub tokens: [u64; 4],
    pub registrations: u64,
    /// Configured business counters, by name.
    pub business: BTreeMap<String, u64>,
    pub sessions: HashMap<String, SessionEntry>,
    /// Records whose session was not tracked because `max_sessions` was reached (the records
    /// themselves count).
    #[serde(alias = "sessions_untracked")]
    pub untracked_session_records: u64,
    /// Session ids ended by a `DELETE` → when, Unix ns (at most `max_sessions`, expiring with
    /// the idle window): records naming them do not bring them back.
    #[serde(default)]
    pub ended_sessions: HashMap<String, u64>,
    /// Records naming an ended session (the records count).
    #[serde(default)]
    pub ended_session_records: u64,
    /// `mcp_server_operation_duration_seconds` and its name bounds.
    #[serde(default)]
    pub mcp: McpOperations,
    /// `requests_without_status_total{service,reason}`.
    #[serde(default)]
    pub without_status: Family<u64>,
    /// Records taken, by transport: `[http, spool]`.
    pub received: [u64; 2],
    /// Rejected lines by `Reject::index`.
    pub rejected: Vec<u64>,
    /// Counter names in records that are not configured business counters (the records count).
    #[serde(default)]
    pub unknown_counter_names: u64,
    /// Drops the plugins reported in records.
    pub plugin_dropped: u64,
    /// Batches acknowledged as duplicates and not counted.
    pub duplicate_batches: u64,
    pub dedup: Dedup,
    /// Spool segment window start → bytes consumed (complete lines only).
    pub offsets: BTreeMap<u64, u64>,
    /// Histogram bounds the histograms were built with (checked on load).
    pub latency_bounds: Vec<f64>,
    pub stream_bounds: Vec<f64>,
    /// Reused key buffer (not state).
    #[serde(skip)]
    key: String,
}

impl State {
    /// A fresh state for `settings` (business counters registered at 0).
    #[must_use]
    pub fn new(settings: &Settings) -> Self {
        let mut state = Self::default();
        state.conform(settings);
        state
    }

    /// Adapts a loaded checkpoint to the current settings: indexes rebuilt, histograms reset
    /// when their bounds changed (logged), business counters added at 0 or dropped.
    pub fn conform(&mut self, settings: &Settings) {
        self.requests.reindex();
        self.latency.reindex();
        self.streams.reindex();
        self.mcp.conform();
        self.without_status.reindex();
        if self.latency_bounds != settings.latency_bounds {
            if !self.latency.series.is_empty() {
                tracing::warn!("latency buckets changed since the checkpoint; histogram restarts");
            }
            self.latency = Family::default();
            self.latency_bounds.clone_from(&settings.latency_bounds);
        }
        if self.stream_bounds != settings.stream_bounds {
            if !self.streams.series.is_empty() {
                tracing::warn!("stream buckets changed since the checkpoint; histogram restarts");
            }
            self.streams = Family::default();
            self.stream_bounds.clone_from(&settings.stream_bounds);
        }
        self.business
            .retain(|name, _| settings.business_counters.contains(name));
        for name in &settings.business_counters {
            self.business.entry(name.clone()).or_insert(0);
        }
        // Checkpoints written before unknown counter names had their own metric counted them
        // as the rejection reason after the last one.
        if let Some(unknown) = self.rejected.get(Reject::ALL.len()) {
            self.unknown_counter_names += unknown;
        }
        self.rejected.resize(Reject::ALL.len(), 0);
    }

    /// Counts lines rejected before aggregation.
    pub fn reject(&mut self, rejected: &[u64]) {
        for (total, n) in self.rejected.iter_mut().zip(rejected) {
            *total += n;
        }
    }

    /// Adds one valid record to every metric it touches.
    pub fn apply(&mut self, settings: &Settings, transport: Transport, record: &Record) {
        self.received[transport as usize] += 1;
        self.plugin_dropped += record.dropped;
        let cap = settings.series_cap;
        let end_ns = record.start_unix_ns.saturating_add(record.duration_ns);

        self.key.clear();
        self.key.push_str(&record.service);
        self.key.push(SEP);
        self.key.push_str(&record.method);
        self.key.push(SEP);
        self.key.push_str(&record.endpoint);
        let seconds = record.duration_ns as f64 / 1e9;
        let exemplar = record.sampled.then_some((record.trace_id.as_str(), end_ns));
        if record.streamed {
            let bounds = &settings.stream_bounds;
            self.streams
                .slot(&self.key, 3, cap, || Hist::new(bounds.len()))
                .observe(bounds, seconds, None);
        } else {
            let bounds = &settings.latency_bounds;
            self.latency
                .slot(&self.key, 3, cap, || Hist::new(bounds.len()))
                .observe(bounds, seconds, exemplar);
        }
        self.key.push(SEP);
        match record.status {
            Some(status) => {
                let mut digits = [0u8; 3];
                let text = status_text(status, &mut digits);
                self.key.push_str(text);
            }
            None => self.key.push_str("unknown"),
        }
        *self.requests.slot(&self.key, 4, cap, || 0) += 1;
        if record.status.is_none() {
            self.key.clear();
            self.key.push_str(&record.service);
            self.key.push(SEP);
            self.key.push_str(
                record
                    .status_unknown
                    .map_or(UNREPORTED, UnknownStatus::as_str),
            );
            *self.without_status.slot(&self.key, 2, cap, || 0) += 1;
        }
        self.mcp
            .observe(record, settings.mcp_names, cap, &mut self.key);
        self.key.clear();

        if let Some(token) = record.token {
            self.tokens[token_index(token)] += 1;
        }
        // One registration per record, whether the plugin's classification says so (its
        // default `client_registrations` counter rule) or the route does.
        let mut registration = record.method == "POST"
            && record.endpoint == settings.registration_endpoint
            && record.status.is_some_and(|s| (200..300).contains(&s));
        for name in &record.counters {
            if name == REGISTRATION_COUNTER {
                registration = true;
                continue;
            }
            match self.business.get_mut(name) {
                Some(n) => *n += 1,
                None => self.unknown_counter_names += 1,
            }
        }
        if registration {
            self.registrations += 1;
        }
        self.apply_session(settings, record, end_ns);
    }

    /// Stamps the series updated from now on with `now_unix_ns` (the aggregator's clock).
    pub fn set_clock(&mut self, now_unix_ns: u64) {
        self.requests.set_clock(now_unix_ns);
        self.latency.set_clock(now_unix_ns);
        self.streams.set_clock(now_unix_ns);
        self.mcp.family.set_clock(now_unix_ns);
        self.without_status.set_clock(now_unix_ns);
    }

    /// Removes the per-route series not updated since `cutoff_unix_ns`; how many went.
    pub fn expire_series(&mut self, cutoff_unix_ns: u64) -> u64 {
        self.requests.expire(cutoff_unix_ns)
            + self.latency.expire(cutoff_unix_ns)
            + self.streams.expire(cutoff_unix_ns)
            + self.mcp.family.expire(cutoff_unix_ns)
            + self.without_status.expire(cutoff_unix_ns)
    }
}

/// `reason` of a record without a status whose plugin gave no reason (an older plugin).
pub const UNREPORTED: &str = "unreported";

/// The counter name (in a record's `counters`) that feeds `client_registrations_total`.
pub const REGISTRATION_COUNTER: &str = "client_registrations";

/// The label value of a `TokenResult`, in `State::tokens` order.
pub const TOKEN_RESULTS: [&str; 4] = ["success", "failure", "missing", "forbidden"];

fn token_index(token: TokenResult) -> usize {
    match token {
        TokenResult::Success => 0,
        TokenResult::Failure => 1,
        TokenResult::Missing => 2,
        TokenResult::Forbidden => 3,
    }
}

/// Formats a status already known to be 100–599 without allocating.
fn status_text(status: u16, buf: &mut [u8; 3]) -> &str {
    let status = status.clamp(100, 999);
    buf[0] = b'0' + (status / 100) as u8;
    buf[1] = b'0' + (status / 10 % 10) as u8;
    buf[2] = b'0' + (status % 10) as u8;
    std::str::from_utf8(buf).unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use gatetrace_core::record::{HostKind, Session, SessionEvent};

    use super::*;

    fn settings() -> Settings {
        Settings::for_tests()
    }

    fn record(endpoint: &str, status: Option<u16>) -> Record {
        Record {
            v: 1,
            request_id: "r".into(),
            trace_id: "1".repeat(32),
            span_id: "2".repeat(16),
            parent_span_id: None,
            sampled: true,
            start_unix_ns: 1_000_000_000,
            duration_ns: 50_000_000,
            streamed: false,
            method: "POST".into(),
            endpoint: endpoint.into(),
            status,
            status_source: None,
            status_unknown: None,
            service: "svc".into(),
            host: None,
            client_addr: None,
            user_agent: None,
            request_bytes: None,
            response_bytes: None,
            session: None,
            token: None,
            mcp: None,
            counters: Vec::new(),
            host_kind: HostKind::Envoy,
            dropped: 0,
        }
    }

    #[test]
    fn the_cap_sends_new_label_sets_to_other() {
        let s = settings();
        let mut state = State::new(&s);
        for endpoint in ["/a", "/b", "/c", "/d", "/e"] {
            state.apply(&s, Transport::Http, &record(endpoint, Some(200)));
        }
        let keys: Vec<_> = state
            .requests
            .iter()
            .map(|(labels, v)| (labels.collect::<Vec<_>>().join(","), *v))
            .collect();
        assert_eq!(
            keys,
            [
                ("svc,POST,/a,200".to_owned(), 1),
                ("svc,POST,/b,200".to_owned(), 1),
                ("svc,POST,/c,200".to_owned(), 1),
                ("other,other,other,other".to_owned(), 2),
            ]
        );
        assert_eq!(state.requests.overflowed, 2);
    }

    #[test]
    fn idle_series_expire_free_room_under_the_cap_and_survive_a_checkpoint() {
        let s = settings();
        let mut state = State::new(&s);
        state.set_clock(1_000);
        for endpoint in ["/a", "/b", "/c", "/d"] {
            state.apply(&s, Transport::Http, &record(endpoint, Some(200)));
        }
        assert_eq!(state.requests.overflowed, 1, "/d went to `other`");
        state.set_clock(5_000);
        state.apply(&s, Transport::Http, &record("/a", Some(200)));
        // Idle since before 2_000: /b, /c and `other` go, in every per-route family.
        assert_eq!(state.expire_series(2_000), 6);
        let keys = |state: &State| -> Vec<String> {
            state
                .requests
                .iter()
                .map(|(labels, _)| labels.collect::<Vec<_>>().join(","))
                .collect()
        };
        assert_eq!(keys(&state), ["svc,POST,/a,200"]);
        assert_eq!(state.requests.expired, 3);
        assert_eq!(state.requests.created, [1_000]);
        assert_eq!(state.requests.touched, [5_000]);
        // Room again: a new endpoint gets its own series, with a fresh creation time.
        state.set_clock(6_000);
        state.apply(&s, Transport::Http, &record("/d", Some(200)));
        assert_eq!(keys(&state), ["svc,POST,/a,200", "svc,POST,/d,200"]);
        assert_eq!(state.requests.overflowed, 1);
        assert_eq!(state.requests.created, [1_000, 6_000]);
        // The times and the expiry count are checkpointed.
        let mut back: State =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        back.conform(&s);
        assert_eq!(back.requests.created, [1_000, 6_000]);
        assert_eq!(back.requests.touched, [5_000, 6_000]);
        assert_eq!(back.requests.expired, 3);
        assert_eq!(back.expire_series(5_500), 2, "/a in requests and latency");
        assert_eq!(keys(&back), ["svc,POST,/d,200"]);
        back.apply(&s, Transport::Http, &record("/d", Some(200)));
        assert_eq!(back.requests.series[0].1, 2, "the index was rebuilt");
    }

    #[test]
    fn streams_stay_out_of_the_latency_histogram_and_sessions_end_on_delete() {
        let s = settings();
        let mut state = State::new(&s);
        let mut stream = record("/mcp", None);
        stream.streamed = true;
        stream.duration_ns = 5_000_000_000;
        stream.session = Some(Session {
            id: "s1".into(),
            event: SessionEvent::Start,
        });
        state.apply(&s, Transport::Spool, &stream);
        assert!(state.latency.series.is_empty());
        assert_eq!(state.streams.series[0].1.counts, [0, 1, 0]);
        assert_eq!(state.active_sessions(0, &[]).get("svc"), Some(&1));
        let mut end = record("/mcp", Some(200));
        end.session = Some(Session {
            id: "s1".into(),
            event: SessionEvent::End,
        });
        state.apply(&s, Transport::Spool, &end);
        // Ended: the service stays known, with 0 active sessions (not absent).
        assert_eq!(state.active_sessions(0, &[]).get("svc"), Some(&0));
        assert_eq!(state.received, [0, 2]);
    }

    #[test]
    fn a_registration_counts_once_from_the_counter_or_the_route() {
        let s = settings();
        let mut state = State::new(&s);
        let mut by_counter = record("/oauth/register", Some(201));
        by_counter.counters = vec![REGISTRATION_COUNTER.into(), "orders".into()];
        state.apply(&s, Transport::Http, &by_counter);
        let mut both = record("/register", Some(201));
        both.counters = vec![REGISTRATION_COUNTER.into()];
        state.apply(&s, Transport::Http, &both);
        state.apply(&s, Transport::Http, &record("/register", Some(400)));
        assert_eq!(state.registrations, 2);
        assert_eq!(state.business.get("orders"), Some(&1));
        assert_eq!(state.unknown_counter_names, 0);
    }

    #[test]
    fn an_older_checkpoint_keeps_its_untracked_sessions_and_unknown_counter_names() {
        let s = settings();
        let mut state = State::new(&s);
        state.untracked_session_records = 3;
        let mut json = serde_json::to_value(&state).unwrap();
        // The layout before these two counted one thing each: the session count under its
        // old name, unknown counter names as a seventh rejection reason.
        let object = json.as_object_mut().unwrap();
        object.remove("unknown_counter_names");
        let untracked = object.remove("untracked_session_records").unwrap();
        object.insert("sessions_untracked".into(), untracked);
        object.insert("rejected".into(), serde_json::json!([1, 0, 0, 0, 0, 0, 4]));
        let mut back: State = serde_json::from_value(json).unwrap();
        back.conform(&s);
        assert_eq!(back.untracked_session_records, 3);
        assert_eq!(back.unknown_counter_names, 4);
        assert_eq!(back.rejected, [1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_checkpoint_round_trip_keeps_counting_the_same_series() {
        let s = settings();
        let mut state = State::new(&s);
        state.apply(&s, Transport::Http, &record("/a", Some(200)));
        let text = serde_json::to_string(&state).unwrap();
        let mut back: State = serde_json::from_str(&text).unwrap();
        back.conform(&s);
        back.apply(&s, Transport::Http, &record("/a", Some(200)));
        assert_eq!(back.requests.series.len(), 1);
        assert_eq!(back.requests.series[0].1, 2);
        assert_eq!(back.latency.series[0].1.count(), 2);
        assert_eq!(back.business.get("orders"), Some(&0));
    }
}
