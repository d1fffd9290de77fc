//! The overview page at `/` (one HTML file, inline CSS and JS, no external assets) and its data
//! at `/api/overview`: a view over what `/metrics` serves, read back from the exposition, plus
//! the last sampled traces the aggregator kept.

mod digest;
mod exposition;
mod history;
mod overview;
pub(crate) mod recent;

use std::sync::Arc;

use self::digest::Digest;
use self::history::{History, SAMPLE_EVERY};

use self::recent::RecentTraces;
pub use self::recent::{TRACE_ID_PLACEHOLDER, TraceUrlTemplate};
use crate::clock::now_unix_ns;
use crate::metrics::MetricsView;

/// The page: one file, served as it is.
pub(crate) const HTML: &str = include_str!("overview.html");
/// Headers of the page: nothing but this origin may be loaded or fetched, no referrer leaks
/// the collector's address to the trace backend a link opens.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// What the page reads: the metrics view, the history of readings and the recent traces.
///
/// Rates need history. It is kept here, in memory and bounded (`history.rs`), rather than
/// computed by the browser from successive fetches: a page opened a moment ago then shows the
/// last minute at once, every open page shows the same figures, and they are tested in Rust.
/// Reading `/metrics` rather than the aggregate's structures keeps the page equal to what
/// Prometheus scrapes and lets it show families other parts add by name (the MCP histogram).
#[derive(Debug)]
pub(crate) struct Page {
    view: Arc<MetricsView>,
    history: History,
    recent: Arc<RecentTraces>,
    trace_url: Option<TraceUrlTemplate>,
}

impl Page {
    /// Takes the first reading now, so the first rates cover everything served after it.
    pub fn new(
        view: Arc<MetricsView>,
        recent: Arc<RecentTraces>,
        trace_url: Option<TraceUrlTemplate>,
    ) -> Self {
        let first = read(&view, 0);
        Self {
            view,
            history: History::new(first),
            recent,
            trace_url,
        }
    }

    /// Keeps a reading for later rates.
    fn sample(&self) {
        self.history.record(read(&self.view, 0));
    }

    /// The JSON of `/api/overview`; `queue_depth` is the HTTP ingest queue's.
    pub fn overview_json(&self, queue_depth: usize) -> String {
        let overview = overview::build(
            read(&self.view, queue_depth),
            &self.history,
            self.recent.latest(),
            self.trace_url.as_ref(),
        );
        serde_json::to_string(&overview).unwrap_or_default()
    }
}

/// One reading of the metrics, now.
fn read(view: &MetricsView, queue_depth: usize) -> Digest {
    let text = view.render(queue_depth);
    Digest::read(&text, &view.namespace, now_unix_ns() / 1_000_000)
}

/// Keeps a reading every [`SAMPLE_EVERY`] until aborted.
pub(crate) async fn sample_forever(page: Arc<Page>) {
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; `Page::new` has taken that reading.
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let page = Arc::clone(&page);
        let _ = tokio::task::spawn_blocking(move || page.sample()).await;
    }
}
