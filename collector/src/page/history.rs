//! Earlier readings the page's rates are computed against, in two bounded rings: whole
//! readings for the last [`RATE_WINDOW`] (routes and tools with their histograms), and
//! per-service totals for the last [`HISTORY_SPAN`] (the per-service charts).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::digest::Digest;

/// How often a reading is kept.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// The window of the rates, ratios and p95 of routes, tools and services.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(60);
/// How far back the per-service charts go.
pub(crate) const HISTORY_SPAN: Duration = Duration::from_secs(300);

/// Requests and 5xx answers of one service, cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Totals {
    pub requests: f64,
    pub errors: f64,
}

/// Per-service totals at one time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServiceTotals {
    pub at_unix_ms: u64,
    pub by_service: BTreeMap<String, Totals>,
}

impl ServiceTotals {
    /// The routes of `reading` summed per service.
    pub fn of(reading: &Digest) -> Self {
        let mut by_service: BTreeMap<String, Totals> = BTreeMap::new();
        for ((service, _, _), counts) in &reading.routes {
            let totals = by_service.entry(service.clone()).or_default();
            totals.requests += counts.total;
            totals.errors += counts.errors;
        }
        Self {
            at_unix_ms: reading.at_unix_ms,
            by_service,
        }
    }
}

#[derive(Debug)]
struct Rings {
    readings: VecDeque<Arc<Digest>>,
    services: VecDeque<ServiceTotals>,
}

/// The kept readings; written by the sampler every [`SAMPLE_EVERY`], read by `/api/overview`.
#[derive(Debug)]
pub(crate) struct History {
    rings: Mutex<Rings>,
}

/// Service points kept at most (one per sample over the span, and the first).
const SERVICE_POINTS: usize = (HISTORY_SPAN.as_secs() / SAMPLE_EVERY.as_secs()) as usize + 1;

impl History {
    /// History starting with `first` (taken at start-up, before any traffic is served).
    pub fn new(first: Digest) -> Self {
        let history = Self {
            rings: Mutex::new(Rings {
                readings: VecDeque::new(),
                services: VecDeque::new(),
            }),
        };
        history.record(first);
        history
    }

    fn lock(&self) -> MutexGuard<'_, Rings> {
        self.rings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps a reading; forgets readings older than the rate window before it and service
    /// points beyond the chart span.
    pub fn record(&self, reading: Digest) {
        let services = ServiceTotals::of(&reading);
        let oldest_needed = reading
            .at_unix_ms
            .saturating_sub(RATE_WINDOW.as_millis() as u64);
        let mut rings = self.lock();
        rings.readings.push_back(Arc::new(reading));
        while rings
            .readings
            .front()
            .is_some_and(|r| r.at_unix_ms < oldest_needed)
        {
            rings.readings.pop_front();
        }
        rings.services.push_back(services);
        while rings.services.len() > SERVICE_POINTS {
            rings.services.pop_front();
        }
    }

    /// What rates at `now_unix_ms` are computed against: the oldest reading within the rate
    /// window (the newest when all are older, as after a stalled sampler).
    pub fn base(&self, now_unix_ms: u64) -> Option<Arc<Digest>> {
        let since = now_unix_ms.saturating_sub(RATE_WINDOW.as_millis() as u64);
        let rings = self.lock();
        rings
            .readings
            .iter()
            .find(|r| r.at_unix_ms >= since)
            .or(rings.readings.back())
            .cloned()
    }

    /// The per-service points, oldest first.
    pub fn service_points(&self) -> Vec<ServiceTotals> {
        self.lock().services.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::digest::Counts;

    fn reading(at_unix_ms: u64, requests: f64) -> Digest {
        let mut digest = Digest {
            at_unix_ms,
            ..Digest::default()
        };
        digest.routes.insert(
            ("svc".into(), "GET".into(), "/".into()),
            Counts {
                total: requests,
                ..Counts::default()
            },
        );
        digest
    }

    #[test]
    fn readings_cover_the_rate_window_and_service_points_the_span() {
        let step = SAMPLE_EVERY.as_millis() as u64;
        let history = History::new(reading(0, 0.0));
        assert_eq!(history.base(1_000).unwrap().at_unix_ms, 0);
        for i in 1..=100 {
            history.record(reading(i * step, i as f64));
        }
        let now = 100 * step + 2_000;
        let base = history.base(now).unwrap();
        assert!(now - base.at_unix_ms <= RATE_WINDOW.as_millis() as u64);
        assert!(now - base.at_unix_ms > (RATE_WINDOW - SAMPLE_EVERY).as_millis() as u64);
        // The newest and every reading up to a window before it.
        let readings = history.lock().readings.len() as u64;
        assert_eq!(readings, RATE_WINDOW.as_secs() / SAMPLE_EVERY.as_secs() + 1);
        let points = history.service_points();
        assert_eq!(points.len(), SERVICE_POINTS);
        assert_eq!(points.last().unwrap().by_service["svc"].requests, 100.0);
        // A stalled sampler: the newest reading still serves.
        assert_eq!(
            history
                .base(now + 10 * RATE_WINDOW.as_millis() as u64)
                .unwrap()
                .at_unix_ms,
            100 * step
        );
    }
}
