//! `/api/overview`, what the page shows: the live reading against the history, rates, error
//! ratios and p95 over the last minute — a counter that went down read as restarted (as PromQL's
//! `rate` does), p95 interpolated within its bucket (as `histogram_quantile` does).

use std::collections::BTreeMap;

use serde::Serialize;

use super::digest::{Counts, Digest, Health};
use super::history::{History, ServiceTotals};
use super::recent::{RecentTrace, TraceUrlTemplate};

/// Routes and tools listed at most (the busiest).
pub(crate) const TOP_ROWS: usize = 10;
/// Services listed at most (the busiest).
pub(crate) const TOP_SERVICES: usize = 12;
/// The latency quantile shown.
const QUANTILE: f64 = 0.95;

/// The whole answer of `/api/overview`.
#[derive(Debug, Serialize)]
pub(crate) struct Overview {
    /// When the live reading was taken, Unix milliseconds.
    pub at_unix_ms: u64,
    /// Seconds the rates are over (`null` until a reading older than the live one exists).
    pub window_secs: Option<f64>,
    /// Seconds the services' histories cover (0 without an earlier reading).
    pub history_secs: f64,
    pub services: Vec<ServiceRow>,
    pub routes: Vec<RouteRow>,
    /// `null` while the collector serves no MCP operations histogram.
    pub tools: Option<Vec<ToolRow>>,
    /// Active MCP sessions by service.
    pub sessions: BTreeMap<String, f64>,
    /// Token validations by result, since start.
    pub tokens: BTreeMap<String, f64>,
    pub registrations: f64,
    pub health: Health,
    /// The last sampled traces, newest first.
    pub traces: Vec<TraceRow>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ServiceRow {
    pub service: String,
    /// Requests since start.
    pub requests: f64,
    pub rate: Option<f64>,
    /// 5xx among the window's requests.
    pub error_ratio: Option<f64>,
    /// Rate and 5xx ratio between successive readings, oldest first, the live one last.
    pub history: Vec<Point>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Point {
    pub at_unix_ms: u64,
    pub rate: f64,
    pub error_ratio: Option<f64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct RouteRow {
    pub service: String,
    pub method: String,
    pub endpoint: String,
    /// Requests since start.
    pub requests: f64,
    pub rate: Option<f64>,
    /// 4xx among the window's requests.
    pub client_error_ratio: Option<f64>,
    /// 5xx among the window's requests.
    pub error_ratio: Option<f64>,
    /// `null` when the window has no buffered request (streams are not in the histogram).
    pub p95_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ToolRow {
    pub service: String,
    pub tool: String,
    /// Calls since start.
    pub calls: f64,
    pub rate: Option<f64>,
    /// Calls with an `error_type` (JSON-RPC error or tool error) among the window's calls.
    pub error_ratio: Option<f64>,
    pub p95_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct TraceRow {
    #[serde(flatten)]
    pub trace: RecentTrace,
    /// The trace backend's link, when `--trace-url-template` is set.
    pub url: Option<String>,
}

/// Builds the overview of `live` against `history`.
pub(crate) fn build(
    live: Digest,
    history: &History,
    traces: Vec<RecentTrace>,
    template: Option<&TraceUrlTemplate>,
) -> Overview {
    let base = history
        .base(live.at_unix_ms)
        .filter(|b| b.at_unix_ms < live.at_unix_ms);
    let empty = Digest::default();
    let (base, window_secs) = match &base {
        Some(b) => (&**b, Some((live.at_unix_ms - b.at_unix_ms) as f64 / 1000.0)),
        None => (&empty, None),
    };
    let window = Window { secs: window_secs };

    let mut routes: Vec<RouteRow> = live
        .routes
        .iter()
        .map(|(key, now)| {
            let delta = window.delta(now, base.routes.get(key));
            let (service, method, endpoint) = key.clone();
            RouteRow {
                service,
                method,
                endpoint,
                requests: now.total,
                rate: window.rate(delta.total),
                client_error_ratio: ratio(delta.client_errors, delta.total),
                error_ratio: ratio(delta.errors, delta.total),
                p95_seconds: quantile(QUANTILE, &delta.buckets),
            }
        })
        .collect();
    busiest_first(&mut routes, |r| (r.rate, r.requests));
    routes.truncate(TOP_ROWS);

    let tools = live.tools.as_ref().map(|tools| {
        let mut rows: Vec<ToolRow> = tools
            .iter()
            .map(|(key, now)| {
                let delta = window.delta(now, base.tools.as_ref().and_then(|t| t.get(key)));
                ToolRow {
                    service: key.0.clone(),
                    tool: key.1.clone(),
                    calls: now.total,
                    rate: window.rate(delta.total),
                    error_ratio: ratio(delta.errors, delta.total),
                    p95_seconds: quantile(QUANTILE, &delta.buckets),
                }
            })
            .collect();
        busiest_first(&mut rows, |r| (r.rate, r.calls));
        rows.truncate(TOP_ROWS);
        rows
    });

    let mut points = history.service_points();
    points.retain(|p| p.at_unix_ms < live.at_unix_ms);
    let history_secs = points
        .first()
        .map_or(0.0, |p| (live.at_unix_ms - p.at_unix_ms) as f64 / 1000.0);
    let live_services = ServiceTotals::of(&live);
    let base_services = ServiceTotals::of(base);
    let mut services: Vec<ServiceRow> = live_services
        .by_service
        .iter()
        .map(|(service, now)| {
            let before = base_services.by_service.get(service).copied();
            let requests = counter_delta(now.requests, before.map(|b| b.requests));
            let errors = counter_delta(now.errors, before.map(|b| b.errors));
            ServiceRow {
                service: service.clone(),
                requests: now.requests,
                rate: window.rate(requests),
                error_ratio: ratio(errors, requests),
                history: service_history(service, &points, &live_services),
            }
        })
        .collect();
    busiest_first(&mut services, |s| (s.rate, s.requests));
    services.truncate(TOP_SERVICES);

    Overview {
        at_unix_ms: live.at_unix_ms,
        window_secs,
        history_secs,
        services,
        routes,
        tools,
        sessions: live.sessions,
        tokens: live.tokens,
        registrations: live.registrations,
        health: live.health,
        traces: traces
            .into_iter()
            .map(|trace| TraceRow {
                url: template.map(|t| t.url(&trace.trace_id)),
                trace,
            })
            .collect(),
    }
}

/// The rate window (`None`: no earlier reading, so no rates).
struct Window {
    secs: Option<f64>,
}

impl Window {
    fn rate(&self, increase: f64) -> Option<f64> {
        self.secs.map(|secs| increase / secs)
    }

    /// What happened in the window: `now` minus `before` (all of `now` without a window, or
    /// when `before` is missing or the counters restarted).
    fn delta(&self, now: &Counts, before: Option<&Counts>) -> Counts {
        let Some(before) = before.filter(|_| self.secs.is_some()) else {
            return now.clone();
        };
        let restarted = now.total < before.total;
        let same_bounds = now.buckets.len() == before.buckets.len()
            && now
                .buckets
                .iter()
                .zip(&before.buckets)
                .all(|(a, b)| a.0 == b.0);
        let histogram_restarted =
            now.buckets.last().map(|b| b.1) < before.buckets.last().map(|b| b.1);
        Counts {
            total: counter_delta(now.total, (!restarted).then_some(before.total)),
            client_errors: counter_delta(
                now.client_errors,
                (!restarted).then_some(before.client_errors),
            ),
            errors: counter_delta(now.errors, (!restarted).then_some(before.errors)),
            buckets: if same_bounds && !histogram_restarted {
                now.buckets
                    .iter()
                    .zip(&before.buckets)
                    .map(|(a, b)| (a.0, a.1 - b.1))
                    .collect()
            } else {
                now.buckets.clone()
            },
        }
    }
}

/// A counter's increase since `before` (all of `now` when it restarted or was not there).
fn counter_delta(now: f64, before: Option<f64>) -> f64 {
    match before {
        Some(before) if now >= before => now - before,
        _ => now,
    }
}

fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole)
}

/// Busiest (by rate, then by total) first; ties by the existing (label) order.
fn busiest_first<T>(rows: &mut [T], key: impl Fn(&T) -> (Option<f64>, f64)) {
    rows.sort_by(|a, b| {
        let (ra, ta) = key(a);
        let (rb, tb) = key(b);
        rb.unwrap_or(0.0)
            .total_cmp(&ra.unwrap_or(0.0))
            .then(tb.total_cmp(&ta))
    });
}

/// The `q` quantile of a cumulative histogram `(upper bound, count)` with `+Inf` last, as
/// PromQL's `histogram_quantile`: linear within the bucket it falls in, the highest finite
/// bound when it falls in `+Inf`. `None` without observations.
pub(crate) fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            if count == lower.1 {
                return Some(bound);
            }
            return Some(lower.0 + (bound - lower.0) * (rank - lower.1) / (count - lower.1));
        }
        lower = (bound, count);
    }
    None
}

/// Rate and 5xx ratio of `service` between successive points, the live totals last.
fn service_history(service: &str, points: &[ServiceTotals], live: &ServiceTotals) -> Vec<Point> {
    let totals = |p: &ServiceTotals| p.by_service.get(service).copied();
    points
        .iter()
        .zip(points.iter().skip(1).chain(std::iter::once(live)))
        .map(|(before, after)| {
            let secs = after.at_unix_ms.saturating_sub(before.at_unix_ms).max(1) as f64 / 1000.0;
            let (b, a) = (totals(before), totals(after).unwrap_or_default());
            let requests = counter_delta(a.requests, b.map(|t| t.requests));
            let errors = counter_delta(a.errors, b.map(|t| t.errors));
            Point {
                at_unix_ms: after.at_unix_ms,
                rate: requests / secs,
                error_ratio: ratio(errors, requests),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::digest::RouteKey;

    fn route() -> RouteKey {
        ("svc".into(), "POST".into(), "/token".into())
    }

    fn reading(at_unix_ms: u64, total: f64, errors: f64, buckets: &[(f64, f64)]) -> Digest {
        let mut digest = Digest {
            at_unix_ms,
            ..Digest::default()
        };
        digest.routes.insert(
            route(),
            Counts {
                total,
                client_errors: 0.0,
                errors,
                buckets: buckets.to_vec(),
            },
        );
        digest
    }

    #[test]
    fn quantiles_interpolate_like_histogram_quantile() {
        let inf = f64::INFINITY;
        // 20 observations in (0.025, 0.05]: p95 at 19/20 of the bucket.
        let buckets = [(0.025, 0.0), (0.05, 20.0), (0.1, 20.0), (inf, 20.0)];
        assert!((quantile(0.95, &buckets).unwrap() - 0.04875).abs() < 1e-12);
        // Everything above the highest bound: that bound.
        assert_eq!(quantile(0.95, &[(0.1, 0.0), (inf, 4.0)]), Some(0.1));
        // Split 10 / 10: p50 at the first bucket's top, p95 in the second.
        let split = [(0.1, 10.0), (1.0, 20.0), (inf, 20.0)];
        assert!((quantile(0.5, &split).unwrap() - 0.1).abs() < 1e-12);
        assert!((quantile(0.95, &split).unwrap() - 0.91).abs() < 1e-12);
        assert_eq!(quantile(0.95, &[(0.1, 0.0), (inf, 0.0)]), None);
        assert_eq!(quantile(0.95, &[]), None);
    }

    #[test]
    fn rates_and_p95_are_over_the_window_and_survive_a_restart() {
        let inf = f64::INFINITY;
        let history = History::new(reading(0, 100.0, 10.0, &[(0.1, 100.0), (inf, 100.0)]));
        history.record(reading(30_000, 200.0, 10.0, &[(0.1, 150.0), (inf, 200.0)]));
        // 40 s after the first reading: 300 more requests, 30 of them 5xx, all slow.
        let live = reading(40_000, 400.0, 40.0, &[(0.1, 100.0), (inf, 400.0)]);
        let overview = build(live, &history, Vec::new(), None);
        assert_eq!(overview.window_secs, Some(40.0));
        let row = &overview.routes[0];
        assert_eq!(row.requests, 400.0);
        assert_eq!(row.rate, Some(7.5));
        assert_eq!(row.error_ratio, Some(0.1));
        assert_eq!(row.p95_seconds, Some(0.1), "all 300 in +Inf");
        let service = &overview.services[0];
        assert_eq!((service.rate, service.error_ratio), (Some(7.5), Some(0.1)));
        let rates: Vec<f64> = service.history.iter().map(|p| p.rate).collect();
        assert_eq!(rates, [100.0 / 30.0, 20.0]);
        assert_eq!(overview.history_secs, 40.0);
        assert!(overview.tools.is_none());

        // The collector restarted without a checkpoint: the counter went down.
        let after_restart = reading(50_000, 5.0, 0.0, &[(0.1, 5.0), (inf, 5.0)]);
        let overview = build(after_restart, &history, Vec::new(), None);
        let row = &overview.routes[0];
        assert_eq!(row.rate, Some(5.0 / 50.0));
        assert_eq!(row.p95_seconds, Some(0.095));
    }

    #[test]
    fn without_an_earlier_reading_there_are_totals_but_no_rates() {
        let history = History::new(reading(1_000, 3.0, 0.0, &[]));
        let overview = build(reading(1_000, 3.0, 0.0, &[]), &history, Vec::new(), None);
        assert_eq!(overview.window_secs, None);
        assert_eq!(overview.routes[0].rate, None);
        assert_eq!(overview.routes[0].requests, 3.0);
        assert_eq!(overview.routes[0].p95_seconds, None, "a stream-only route");
    }
}
