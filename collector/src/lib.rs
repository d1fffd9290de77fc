//! The gatetrace collector: records in (HTTP `POST /v1/records` and the Traefik spool),
//! Prometheus metrics, OTLP spans and JSON access lines out.
//!
//! In-process use (tests of other crates run a real collector this way):
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use gatetrace_collector::{Collector, Config};
//! let config = Config::load(["gatetrace-collector", "--access-log", "off"])?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let running = Collector::start(config, None).await?.spawn(listener)?;
//! // POST records to format!("http://{}/v1/records", running.addr()), scrape /metrics ...
//! running.shutdown().await?; // drains, flushes spans, writes the last checkpoint
//! # Ok(()) }
//! ```
//!
//! [`Collector::app`] gives the bare router for `tower::ServiceExt::oneshot` tests, and
//! [`Collector::serve`] serves on a listener until a shutdown future resolves (the binary).
//!
//! The data's way, one module per step: [`sources`] (HTTP and spool, both decoding lines into
//! a [`batch`]) → [`aggregate`] (the one writer of the checkpointed state) → [`sinks`] (spans,
//! access lines); [`metrics`] is the `/metrics` view over the aggregate. `clock`, `batch` and
//! `telemetry` are the vocabulary they share; `server` routes HTTP; [`config`] reads options;
//! [`page`] is the overview page at `/`, a second view over what `/metrics` serves.

pub mod aggregate;
pub mod batch;
mod clock;
pub mod config;
mod connections;
pub mod metrics;
pub mod page;
mod server;
pub mod sinks;
pub mod sources;
mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, oneshot};

pub use config::Config;
pub use server::{AppState, app};
pub use sinks::span_sink::{SpanSink, SpanSinkStats};

use crate::aggregate::mcp::NameCaps;
use crate::aggregate::state::{Settings, State};
use crate::aggregate::{AggregateStore, Aggregator, checkpoint};
use crate::connections::ConnectionLimits;
use crate::metrics::MetricsView;
use crate::page::Page;
use crate::page::recent::RecentTraces;
use crate::sinks::access_log::AccessWriter;
use crate::sources::http::HttpSource;
use crate::sources::spool::SpoolTailer;
use crate::telemetry::Telemetry;

/// jemalloc, in every program the collector runs in (its binary, the benchmark suite, tests):
/// a record decodes into about ten short strings, and glibc's malloc and free were ≈ 12 % of
/// ingest CPU (perf). With jemalloc, ingest rose from 0.64 (HTTP) and 0.67 (spool) of a bare
/// `serde_json` parse to ≈ 0.8 (`collector_bench ingest`); mimalloc did as well there but kept
/// 94 MiB resident at 10 k series (jemalloc: 35 MiB). `collector/README.md` has the figures.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long shutdown waits for spans and access lines to be flushed.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// A collector whose pipeline (aggregator, spool tailer, access log) runs; serve its
/// [`Collector::app`] however you like, then call [`Collector::shutdown`].
pub struct Collector {
    state: AppState,
    limits: ConnectionLimits,
    stop: oneshot::Sender<()>,
    aggregator: tokio::task::JoinHandle<AccessWriter>,
    tailer: Option<(std::sync::mpsc::Sender<()>, JoinHandle<()>)>,
    sink: Option<Arc<dyn SpanSink>>,
    /// Keeps the page's readings (aborted at shutdown).
    page_sampler: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("state", &self.state)
            .field("spool_tailer", &self.tailer.is_some())
            .field("spans", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

impl Collector {
    /// Loads the checkpoint (if configured), then starts the aggregator, the spool tailer and
    /// the access log. `sink` receives sampled records for span export (the binary passes
    /// [`sinks::otlp::exporter`]'s; `None`: no spans). Must run inside a tokio runtime.
    ///
    /// # Errors
    /// A corrupt or unwritable checkpoint, an access log file that cannot be opened.
    pub async fn start(config: Config, sink: Option<Arc<dyn SpanSink>>) -> anyhow::Result<Self> {
        let settings = Settings {
            latency_bounds: config.histogram_buckets.0.clone(),
            stream_bounds: config.stream_buckets.0.clone(),
            series_cap: config.series_cap as usize,
            max_sessions: config.max_sessions as usize,
            dedup_sources: config.dedup_sources as usize,
            business_counters: config.business_counters.clone(),
            registration_endpoint: config.registration_endpoint.clone(),
            mcp_names: NameCaps {
                tools: config.max_tools_per_service as usize,
                prompts: config.max_prompts_per_service as usize,
            },
        };
        let state = match &config.checkpoint {
            Some(path) => {
                let loaded = {
                    let path = path.clone();
                    tokio::task::spawn_blocking(move || checkpoint::load(&path)).await??
                };
                match loaded {
                    Some(mut state) => {
                        state.conform(&settings);
                        tracing::info!(
                            checkpoint = %path.display(),
                            segments = state.offsets.len(),
                            "resuming from checkpoint"
                        );
                        state
                    }
                    None => State::new(&settings),
                }
            }
            None => {
                tracing::warn!("no --checkpoint: metrics restart from zero after a restart");
                State::new(&settings)
            }
        };
        if let Some(path) = &config.checkpoint {
            // Fail at start, not at the first commit, when the checkpoint cannot be written.
            let bytes = checkpoint::encode(&state)?;
            let path = path.clone();
            tokio::task::spawn_blocking(move || checkpoint::write(&path, &bytes)).await??;
        }
        let offsets = state.offsets.clone();
        let mut store = AggregateStore::new(
            state,
            settings,
            Duration::from_secs(config.session_idle_secs),
        );
        store.series_idle = Duration::from_secs(config.series_idle_secs);
        store.services.clone_from(&config.services);
        let store = Arc::new(store);
        let telemetry = Arc::new(Telemetry::default());
        let access = AccessWriter::start(
            &config.access_log,
            Arc::clone(&telemetry.access_lines_dropped),
        )?;
        let (http_tx, http_rx) = mpsc::channel(config.queue_capacity as usize);
        let (spool_tx, spool_rx) = mpsc::channel(4);
        let (stop, stop_rx) = oneshot::channel();

        let tailer = match &config.spool_dir {
            Some(dir) => {
                let tailer = SpoolTailer::new(
                    dir.clone(),
                    config.spool_layout(),
                    Duration::from_millis(config.spool_poll_ms),
                    offsets,
                    spool_tx,
                    Arc::clone(&telemetry),
                );
                let (stop_tx, stop_rx) = std::sync::mpsc::channel();
                let handle = std::thread::Builder::new()
                    .name("spool-tailer".into())
                    .spawn(move || tailer.run(&stop_rx))
                    .context("starting the spool tailer")?;
                Some((stop_tx, handle))
            }
            None => {
                drop(spool_tx);
                None
            }
        };
        let recent = Arc::new(RecentTraces::default());
        let aggregator = Aggregator {
            store: Arc::clone(&store),
            telemetry: Arc::clone(&telemetry),
            http_rx,
            spool_rx,
            stop: stop_rx,
            checkpoint: config.checkpoint.clone(),
            interval: config.checkpoint_interval(),
            spool: config
                .spool_dir
                .clone()
                .map(|dir| (dir, config.spool_layout())),
            access,
            sink: sink.clone(),
            recent: Arc::clone(&recent),
        };
        telemetry.aggregator_running.store(true, Ordering::Relaxed);
        let aggregator = tokio::spawn(aggregator.run());
        let limits = config.connection_limits();
        let metrics = Arc::new(MetricsView {
            store,
            telemetry: Arc::clone(&telemetry),
            sink: sink.clone(),
            namespace: config.namespace.clone(),
            buffers: Arc::default(),
        });
        let page = Arc::new(Page::new(
            Arc::clone(&metrics),
            recent,
            config.trace_url_template.clone(),
        ));
        let page_sampler = tokio::spawn(page::sample_forever(Arc::clone(&page)));
        Ok(Self {
            state: AppState {
                http: HttpSource {
                    queue: http_tx,
                    token: config.ingest_token.map(Arc::new),
                    body_limit: config.body_limit as usize,
                    body_timeout: Duration::from_millis(config.body_read_timeout_ms),
                    telemetry: Arc::clone(&telemetry),
                },
                metrics,
                page,
                telemetry,
                spool: config.spool_dir.is_some(),
            },
            limits,
            stop,
            aggregator,
            tailer,
            sink,
            page_sampler,
        })
    }

    /// The router over this collector's pipeline.
    pub fn app(&self) -> axum::Router {
        app(self.state.clone())
    }

    /// Serves on `listener` (within the configured connection limits) until `shutdown`
    /// resolves, then shuts the pipeline down.
    ///
    /// # Errors
    /// What shutting down failed with.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let telemetry = Arc::clone(&self.state.telemetry);
        connections::serve(listener, self.app(), self.limits, telemetry, shutdown).await;
        self.shutdown().await
    }

    /// Serves on `listener` in a background task; see [`RunningCollector`].
    ///
    /// # Errors
    /// A listener without a local address.
    pub fn spawn(self, listener: tokio::net::TcpListener) -> anyhow::Result<RunningCollector> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(RunningCollector { addr, stop, task })
    }

    /// Stops intake (spool and HTTP), drains the queues, writes the last checkpoint, flushes
    /// spans and access lines.
    ///
    /// # Errors
    /// The aggregator task panicked.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.page_sampler.abort();
        if let Some((stop, handle)) = self.tailer {
            let _ = stop.send(());
            tokio::task::spawn_blocking(move || handle.join())
                .await?
                .map_err(|_| anyhow::anyhow!("spool tailer panicked"))?;
        }
        let _ = self.stop.send(());
        let access = self.aggregator.await.context("aggregator task")?;
        if let Some(sink) = &self.sink {
            sink.shutdown(FLUSH_TIMEOUT).await;
        }
        tokio::task::spawn_blocking(move || access.close(FLUSH_TIMEOUT)).await?;
        Ok(())
    }
}

/// A collector serving in the background (from [`Collector::spawn`]).
#[derive(Debug)]
pub struct RunningCollector {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningCollector {
    /// Where it listens.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Graceful shutdown: stops the server, drains, checkpoints, flushes.
    ///
    /// # Errors
    /// What serving or shutting down failed with.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("collector task")?
    }
}
