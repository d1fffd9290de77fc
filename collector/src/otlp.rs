//! OTLP span export: one SERVER span per sampled record, with the record's own ids and times,
//! sent in batches over gRPC or HTTP/protobuf from a bounded queue that drops (and counts)
//! when full, so a down trace backend costs bounded memory and never blocks ingestion.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use gatetrace_core::record::Record;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{
    RetryPolicy, WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use tokio::sync::{mpsc, oneshot};

use crate::export::{SpanSink, SpanSinkStats};

/// Wire protocol of the OTLP exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (default port 4317).
    #[default]
    #[value(name = "grpc")]
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP over HTTP with a protobuf body (default port 4318, path `/v1/traces`).
    #[value(name = "http/protobuf", alias = "http-protobuf")]
    #[serde(rename = "http/protobuf", alias = "http-protobuf")]
    HttpProtobuf,
}

/// OTLP span export options. Without an endpoint, spans are disabled.
#[derive(Clone, PartialEq, Eq, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// Base OTLP endpoint, e.g. `http://127.0.0.1:4317` (gRPC) or `http://127.0.0.1:4318`
    /// (HTTP, `/v1/traces` is appended). Unset (and no traces endpoint): spans are disabled.
    #[arg(
        id = "otlp_endpoint",
        long = "otlp-endpoint",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        value_name = "URL"
    )]
    pub endpoint: Option<String>,

    /// Full traces endpoint, used as given (takes precedence over `--otlp-endpoint`).
    #[arg(
        id = "otlp_traces_endpoint",
        long = "otlp-traces-endpoint",
        env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        value_name = "URL"
    )]
    pub traces_endpoint: Option<String>,

    /// OTLP protocol: `grpc` or `http/protobuf` (`http-protobuf` is accepted too).
    #[arg(
        id = "otlp_protocol",
        value_name = "PROTOCOL",
        long = "otlp-protocol",
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        value_enum,
        default_value = "grpc"
    )]
    pub protocol: OtlpProtocol,

    /// Extra request headers as `key1=value1,key2=value2` (URL-encoded values), e.g. an API
    /// key for the backend. Never logged.
    #[arg(
        id = "otlp_headers",
        long = "otlp-headers",
        env = "OTEL_EXPORTER_OTLP_HEADERS",
        value_name = "LIST",
        hide_env_values = true
    )]
    pub headers: Option<String>,

    /// Time budget of one batch export in milliseconds, retries included.
    #[arg(
        id = "otlp_timeout_ms", value_name = "MS", long = "otlp-timeout-ms",
        env = "OTEL_EXPORTER_OTLP_TIMEOUT",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub timeout_ms: u64,

    /// Spans held for export at most; when full, new spans are dropped and counted.
    #[arg(
        id = "otlp_queue_capacity", value_name = "N", long = "otlp-queue-capacity",
        env = "GATETRACE_OTLP_QUEUE_CAPACITY",
        default_value_t = 4096,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub queue_capacity: u32,

    /// Spans sent in one export request at most.
    #[arg(
        id = "otlp_batch_size", value_name = "N", long = "otlp-batch-size",
        env = "GATETRACE_OTLP_BATCH_SIZE",
        default_value_t = 512,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub batch_size: u32,

    /// Longest wait in milliseconds before a partial batch is sent.
    #[arg(
        id = "otlp_batch_delay_ms", value_name = "MS", long = "otlp-batch-delay-ms",
        env = "GATETRACE_OTLP_BATCH_DELAY_MS",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub batch_delay_ms: u64,

    /// Retries of a failed export (exponential backoff, within the timeout); then the batch
    /// is counted as failed.
    #[arg(
        id = "otlp_max_retries",
        value_name = "N",
        long = "otlp-max-retries",
        env = "GATETRACE_OTLP_MAX_RETRIES",
        default_value_t = 3
    )]
    pub max_retries: u32,

    /// `service.name` of every span's resource. Unset: the record's own `service`.
    #[arg(
        id = "otlp_service_name",
        long = "otlp-service-name",
        env = "OTEL_SERVICE_NAME",
        value_name = "NAME"
    )]
    pub service_name: Option<String>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            traces_endpoint: None,
            protocol: OtlpProtocol::Grpc,
            headers: None,
            timeout_ms: 10_000,
            queue_capacity: 4096,
            batch_size: 512,
            batch_delay_ms: 1000,
            max_retries: 3,
            service_name: None,
        }
    }
}

// Hand-written so the headers (API keys) never reach a log line.
impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("traces_endpoint", &self.traces_endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &self.headers.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .field("queue_capacity", &self.queue_capacity)
            .field("batch_size", &self.batch_size)
            .field("batch_delay_ms", &self.batch_delay_ms)
            .field("max_retries", &self.max_retries)
            .field("service_name", &self.service_name)
            .finish()
    }
}

impl OtlpConfig {
    /// The traces URL the exporter posts to, or `None` when spans are disabled.
    #[must_use]
    pub fn traces_url(&self) -> Option<String> {
        fn non_empty(s: &Option<String>) -> Option<&str> {
            s.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        if let Some(url) = non_empty(&self.traces_endpoint) {
            return Some(url.to_owned());
        }
        let base = non_empty(&self.endpoint)?;
        Some(match self.protocol {
            OtlpProtocol::Grpc => base.to_owned(),
            OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
        })
    }

    /// Checks what clap and serde cannot (non-zero sizes from TOML, header syntax).
    ///
    /// # Errors
    /// Names the offending option.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("otlp timeout_ms", self.timeout_ms),
            ("otlp queue_capacity", u64::from(self.queue_capacity)),
            ("otlp batch_size", u64::from(self.batch_size)),
            ("otlp batch_delay_ms", self.batch_delay_ms),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if let Some(url) = self.traces_url()
            && !url.starts_with("http://")
        {
            bail!(
                "OTLP endpoint {url:?} must start with http:// (TLS is not built in: send to a \
                 local OpenTelemetry Collector or agent that forwards with TLS)"
            );
        }
        parse_headers(self.headers.as_deref().unwrap_or(""))?;
        Ok(())
    }
}

/// Parses `key1=value1,key2=value2` (values percent-decoded), the `OTEL_EXPORTER_OTLP_HEADERS`
/// syntax. Error messages name the key, never the value.
fn parse_headers(list: &str) -> anyhow::Result<HashMap<String, String>> {
    let mut headers = HashMap::new();
    for item in list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let Some((key, value)) = item.split_once('=') else {
            bail!("OTLP header entry without '=' (expected key=value)");
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            bail!("OTLP header name {key:?} is not a valid header name");
        }
        let value = percent_decode(value.trim())
            .with_context(|| format!("OTLP header {key:?}: bad percent-encoding"))?;
        if value.bytes().any(|b| b.is_ascii_control()) {
            bail!("OTLP header {key:?}: value contains control characters");
        }
        headers.insert(key, value);
    }
    Ok(headers)
}

fn percent_decode(s: &str) -> anyhow::Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).context("truncated %-escape")?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                bail!("bad %-escape");
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex)?, 16)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8(out)?)
}

/// Builds the span exporter, or `None` when no endpoint is configured (spans disabled).
/// Must be called inside a tokio runtime: the export task is spawned on it.
///
/// # Errors
/// An invalid option or endpoint, or no tokio runtime.
pub fn exporter(config: &OtlpConfig) -> anyhow::Result<Option<Arc<dyn SpanSink>>> {
    Ok(OtlpSink::start(config)?.map(|sink| Arc::new(sink) as Arc<dyn SpanSink>))
}

/// One span waiting for export, with the resource it belongs to.
#[derive(Debug)]
struct Pending {
    service: Arc<str>,
    span: SpanData,
}

#[derive(Debug, Default)]
struct Counters {
    exported: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
    unhealthy: AtomicBool,
}

/// The [`SpanSink`] over `opentelemetry-otlp`: `offer` converts and enqueues without waiting;
/// one task batches and exports.
#[derive(Debug)]
pub struct OtlpSink {
    tx: mpsc::Sender<Pending>,
    flush: mpsc::Sender<oneshot::Sender<()>>,
    counters: Arc<Counters>,
    service_name: Option<Arc<str>>,
    scope: InstrumentationScope,
    closed: AtomicBool,
}

impl OtlpSink {
    /// Validates `config`, builds the transport and spawns the export task on the current
    /// tokio runtime. `None` when no endpoint is configured.
    ///
    /// # Errors
    /// An invalid option or endpoint, or no tokio runtime.
    pub fn start(config: &OtlpConfig) -> anyhow::Result<Option<Self>> {
        config.validate()?;
        let Some(url) = config.traces_url() else {
            return Ok(None);
        };
        let runtime = tokio::runtime::Handle::try_current()
            .context("the OTLP exporter must be started inside a tokio runtime")?;
        let _guard = runtime.enter();
        let exporter = build_exporter(config, &url)?;
        let (tx, rx) = mpsc::channel(config.queue_capacity as usize);
        let (flush, flush_rx) = mpsc::channel(4);
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            exporter,
            rx,
            flush_rx,
            counters: Arc::clone(&counters),
            batch_size: config.batch_size as usize,
            batch_delay: Duration::from_millis(config.batch_delay_ms),
            url: url.clone(),
            resources: HashMap::new(),
        };
        runtime.spawn(worker.run());
        tracing::info!(endpoint = %url, protocol = ?config.protocol, "OTLP span export enabled");
        Ok(Some(Self {
            tx,
            flush,
            counters,
            service_name: config.service_name.as_deref().map(Arc::from),
            scope: InstrumentationScope::builder("gatetrace-collector")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            closed: AtomicBool::new(false),
        }))
    }
}

fn build_exporter(
    config: &OtlpConfig,
    url: &str,
) -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    let timeout = Duration::from_millis(config.timeout_ms);
    let retry = RetryPolicy::recommended().with_max_retries(config.max_retries as usize);
    let headers = parse_headers(config.headers.as_deref().unwrap_or(""))?;
    let built = match config.protocol {
        OtlpProtocol::Grpc => {
            let mut metadata = tonic::metadata::MetadataMap::new();
            for (key, value) in &headers {
                let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes())
                    .with_context(|| format!("OTLP header {key:?} is not valid gRPC metadata"))?;
                let value = value.parse().with_context(|| {
                    format!("OTLP header {key:?}: value is not valid gRPC metadata")
                })?;
                metadata.insert(key, value);
            }
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(url)
                .with_timeout(timeout)
                .with_metadata(metadata)
                .with_retry_policy(retry)
                .build()
        }
        OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(timeout)
            .with_headers(headers)
            .with_retry_policy(retry)
            .build(),
    };
    built.context("building the OTLP span exporter")
}

impl SpanSink for OtlpSink {
    fn offer(&self, record: &Record) {
        if !record.sampled {
            return;
        }
        if self.closed.load(Ordering::Relaxed) || self.tx.capacity() == 0 {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(span) = span_data(record, &self.scope) else {
            // Ids that are not valid W3C ids cannot make a span: given up on, like a failure.
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let service = match &self.service_name {
            Some(name) => Arc::clone(name),
            None => Arc::from(record.service.as_str()),
        };
        // Count before sending so the export task never decrements below zero.
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(Pending { service, span }).is_err() {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn stats(&self) -> SpanSinkStats {
        let c = &self.counters;
        SpanSinkStats {
            exported: c.exported.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            queued: c.queued.load(Ordering::Relaxed),
            healthy: !c.unhealthy.load(Ordering::Relaxed),
        }
    }

    fn shutdown(&self, timeout: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.closed.store(true, Ordering::Relaxed);
        Box::pin(async move {
            let (done, wait) = oneshot::channel();
            let flushed = async {
                if self.flush.send(done).await.is_ok() {
                    let _ = wait.await;
                }
            };
            if tokio::time::timeout(timeout, flushed).await.is_err() {
                tracing::warn!(
                    queued = self.counters.queued.load(Ordering::Relaxed),
                    "OTLP flush did not finish within {timeout:?}; queued spans are lost"
                );
            }
        })
    }
}

/// The span for one sampled record, or `None` when its ids are not valid W3C ids.
fn span_data(record: &Record, scope: &InstrumentationScope) -> Option<SpanData> {
    let trace_id = parse_id(&record.trace_id, 32, TraceId::from_hex, &TraceId::INVALID)?;
    let span_id = parse_id(&record.span_id, 16, SpanId::from_hex, &SpanId::INVALID)?;
    let parent_span_id = match &record.parent_span_id {
        Some(parent) => parse_id(parent, 16, SpanId::from_hex, &SpanId::INVALID)?,
        None => SpanId::INVALID,
    };
    let start_time = SystemTime::UNIX_EPOCH + Duration::from_nanos(record.start_unix_ns);
    let end_time = start_time + Duration::from_nanos(record.duration_ns);

    let mut attributes = Vec::with_capacity(12);
    attributes.push(KeyValue::new("http.request.method", record.method.clone()));
    attributes.push(KeyValue::new("http.route", record.endpoint.clone()));
    if let Some(status) = record.status {
        attributes.push(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
    }
    if let Some(host) = &record.host {
        let (address, port) = split_host_port(host);
        attributes.push(KeyValue::new("server.address", address.to_owned()));
        if let Some(port) = port {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
    }
    if let Some(client) = &record.client_addr {
        attributes.push(KeyValue::new("client.address", client.clone()));
    }
    if let Some(agent) = &record.user_agent {
        attributes.push(KeyValue::new("user_agent.original", agent.clone()));
    }
    if let Some(bytes) = record.request_bytes {
        attributes.push(KeyValue::new(
            "http.request.body.size",
            saturating_i64(bytes),
        ));
    }
    if let Some(bytes) = record.response_bytes {
        attributes.push(KeyValue::new(
            "http.response.body.size",
            saturating_i64(bytes),
        ));
    }
    attributes.push(KeyValue::new(
        "gatetrace.request_id",
        record.request_id.clone(),
    ));
    attributes.push(KeyValue::new("gatetrace.streamed", record.streamed));
    let server_error = record.status.is_some_and(|s| s >= 500);
    if server_error {
        // Semconv: a server span's `error.type` is the status code when it is 5xx.
        attributes.push(KeyValue::new(
            "error.type",
            record.status.unwrap_or_default().to_string(),
        ));
    }

    // Semconv span name `{method} {route}`, with `HTTP` for a method outside the known set.
    let method = if record.method == "_OTHER" {
        "HTTP"
    } else {
        &record.method
    };
    Some(SpanData {
        span_context: SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id,
        parent_span_is_remote: record.parent_span_id.is_some(),
        span_kind: SpanKind::Server,
        name: format!("{method} {}", record.endpoint).into(),
        start_time,
        end_time,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: if server_error {
            Status::error("")
        } else {
            Status::Unset
        },
        instrumentation_scope: scope.clone(),
    })
}

fn parse_id<T: PartialEq>(
    hex: &str,
    len: usize,
    parse: impl Fn(&str) -> Result<T, std::num::ParseIntError>,
    invalid: &T,
) -> Option<T> {
    if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    parse(hex).ok().filter(|id| id != invalid)
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Splits a Host header value into address and port (`[::1]:8080`, `example.com:443`).
fn split_host_port(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((address, tail)) => (address, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((address, port)) if !address.contains(':') => match port.parse() {
            Ok(port) => (address, Some(port)),
            Err(_) => (host, None),
        },
        _ => (host, None),
    }
}

/// The export task: batches queued spans by size or delay and exports them, one request per
/// service (`service.name` is a resource attribute).
struct Worker {
    exporter: opentelemetry_otlp::SpanExporter,
    rx: mpsc::Receiver<Pending>,
    flush_rx: mpsc::Receiver<oneshot::Sender<()>>,
    counters: Arc<Counters>,
    batch_size: usize,
    batch_delay: Duration,
    url: String,
    resources: HashMap<Arc<str>, Resource>,
}

impl Worker {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.batch_size);
        // The first partial batch goes out one delay after start, not at once.
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + self.batch_delay,
            self.batch_delay,
        );
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Always at least 1: a full batch is exported before the loop comes back here.
            let room = self.batch_size - batch.len();
            tokio::select! {
                biased;
                done = self.flush_rx.recv() => {
                    self.drain(&mut batch).await;
                    match done {
                        Some(done) => {
                            let _ = done.send(());
                        }
                        // The sink is gone: what was queued has just been exported.
                        None => return,
                    }
                }
                received = self.rx.recv_many(&mut batch, room) => {
                    if received == 0 {
                        // Every sender is gone: export what is left and stop.
                        self.export(&mut batch).await;
                        return;
                    }
                    if batch.len() >= self.batch_size {
                        self.export(&mut batch).await;
                        ticker.reset();
                    }
                }
                _ = ticker.tick() => {
                    if !batch.is_empty() {
                        self.export(&mut batch).await;
                    }
                }
            }
        }
    }

    /// Exports everything queued now, in batches.
    async fn drain(&mut self, batch: &mut Vec<Pending>) {
        loop {
            while batch.len() < self.batch_size {
                match self.rx.try_recv() {
                    Ok(pending) => batch.push(pending),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                return;
            }
            self.export(batch).await;
        }
    }

    async fn export(&mut self, batch: &mut Vec<Pending>) {
        if batch.is_empty() {
            return;
        }
        let total = batch.len() as u64;
        // Group by service, keeping arrival order within each.
        let mut groups: Vec<(Arc<str>, Vec<SpanData>)> = Vec::new();
        for Pending { service, span } in batch.drain(..) {
            match groups.iter_mut().find(|(name, _)| *name == service) {
                Some((_, spans)) => spans.push(span),
                None => groups.push((service, vec![span])),
            }
        }
        let mut failed_now = 0;
        for (service, spans) in groups {
            let count = spans.len() as u64;
            if self.resources.len() > 1024 {
                self.resources.clear();
            }
            let resource = self
                .resources
                .entry(Arc::clone(&service))
                .or_insert_with(|| {
                    Resource::builder_empty()
                        .with_service_name(service.to_string())
                        .build()
                })
                .clone();
            self.exporter.set_resource(&resource);
            match self.exporter.export(spans).await {
                Ok(()) => {
                    self.counters.exported.fetch_add(count, Ordering::Relaxed);
                }
                Err(error) => {
                    failed_now += count;
                    self.counters.failed.fetch_add(count, Ordering::Relaxed);
                    tracing::warn!(
                        endpoint = %self.url,
                        spans = count,
                        %error,
                        "OTLP export failed after retries; spans dropped"
                    );
                }
            }
        }
        self.counters.queued.fetch_sub(total, Ordering::Relaxed);
        self.counters
            .unhealthy
            .store(failed_now > 0, Ordering::Relaxed);
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use gatetrace_core::record::HostKind;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
    use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind as ProtoKind;
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    use prost::Message as _;

    use super::*;

    /// What an in-test OTLP receiver saw: spans with their resource's `service.name`, the
    /// `x-api-key` header of each request, and how many export calls arrived.
    #[derive(Default)]
    struct Seen {
        spans: Vec<(String, ProtoSpan)>,
        api_keys: Vec<Option<String>>,
        /// Spans per accepted request.
        sizes: Vec<usize>,
        calls: usize,
        /// Calls to refuse (UNAVAILABLE / 503) before accepting.
        refuse: usize,
    }

    type Shared = Arc<Mutex<Seen>>;

    fn take(seen: &Shared, request: ExportTraceServiceRequest, api_key: Option<String>) -> bool {
        let mut seen = seen.lock().unwrap();
        seen.calls += 1;
        if seen.refuse > 0 {
            seen.refuse -= 1;
            return false;
        }
        seen.api_keys.push(api_key);
        let size = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        seen.sizes.push(size);
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    AnyValue::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                assert_eq!(
                    scope_spans.scope.as_ref().map(|s| s.name.as_str()),
                    Some("gatetrace-collector")
                );
                for span in scope_spans.spans {
                    seen.spans.push((service.clone(), span));
                }
            }
        }
        true
    }

    struct Grpc(Shared);

    #[tonic::async_trait]
    impl TraceService for Grpc {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let key = request
                .metadata()
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if take(&self.0, request.into_inner(), key) {
                Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
            } else {
                Err(tonic::Status::unavailable("refusing for the test"))
            }
        }
    }

    /// A gRPC OTLP receiver on a free loopback port; returns its base URL.
    async fn grpc_receiver(seen: &Shared) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let service = TraceServiceServer::new(Grpc(Arc::clone(seen)));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        url
    }

    /// An HTTP/protobuf OTLP receiver (`POST /v1/traces`); returns its base URL.
    async fn http_receiver(seen: &Shared) -> String {
        use axum::http::{HeaderMap, StatusCode as Http};
        let seen = Arc::clone(seen);
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let seen = Arc::clone(&seen);
                async move {
                    assert_eq!(headers["content-type"], "application/x-protobuf");
                    let request = ExportTraceServiceRequest::decode(body).unwrap();
                    let key = headers
                        .get("x-api-key")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    if take(&seen, request, key) {
                        (
                            Http::OK,
                            ExportTraceServiceResponse::default().encode_to_vec(),
                        )
                    } else {
                        (Http::SERVICE_UNAVAILABLE, Vec::new())
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn record(n: u64) -> Record {
        Record {
            v: 1,
            request_id: format!("req-{n}"),
            trace_id: format!(
                "{:032x}",
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0000_0000_u128 + u128::from(n)
            ),
            span_id: format!("{:016x}", 0x00f0_67aa_0ba9_0000_u64 + n),
            parent_span_id: None,
            sampled: true,
            start_unix_ns: 1_764_000_000_123_456_789 + n * 1_000_000,
            duration_ns: 2_500_000 + n,
            streamed: false,
            method: "POST".into(),
            endpoint: "/mcp".into(),
            status: Some(200),
            service: "mcp-api".into(),
            host: Some("mcp.example.com:8443".into()),
            client_addr: Some("10.1.2.3".into()),
            user_agent: Some("test-agent/1".into()),
            request_bytes: Some(120),
            response_bytes: Some(3400),
            session: None,
            token: None,
            counters: Vec::new(),
            host_kind: HostKind::Traefik,
            dropped: 0,
        }
    }

    fn config(endpoint: &str, protocol: OtlpProtocol) -> OtlpConfig {
        OtlpConfig {
            endpoint: Some(endpoint.to_owned()),
            protocol,
            batch_delay_ms: 20,
            timeout_ms: 5_000,
            ..OtlpConfig::default()
        }
    }

    fn attrs(span: &ProtoSpan) -> HashMap<String, String> {
        span.attributes
            .iter()
            .map(|kv| {
                let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(AnyValue::StringValue(s)) => s.clone(),
                    Some(AnyValue::IntValue(i)) => format!("int:{i}"),
                    Some(AnyValue::BoolValue(b)) => format!("bool:{b}"),
                    other => format!("{other:?}"),
                };
                (kv.key.clone(), value)
            })
            .collect()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Polls `ready` every 10 ms for at most `limit`.
    async fn eventually(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !ready() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Offers a root span, a continued (child) span, a 5xx, a stream without status, an
    /// `_OTHER` method and an unsampled record; checks every field the receiver got.
    async fn exact_spans(protocol: OtlpProtocol, base: &str, seen: &Shared) {
        let mut cfg = config(base, protocol);
        cfg.headers = Some("x-api-key=s%3Dcret%2C1".into());
        let sink = OtlpSink::start(&cfg).unwrap().unwrap();

        let root = record(1);
        let mut child = record(2);
        child.parent_span_id = Some("b7ad6b7169203331".into());
        child.service = "other-api".into();
        let mut failed = record(3);
        failed.status = Some(503);
        failed.method = "GET".into();
        failed.endpoint = "/register/{client_id}".into();
        let mut stream = record(4);
        stream.status = None;
        stream.streamed = true;
        stream.host = Some("[::1]:9000".into());
        let mut other = record(5);
        other.method = "_OTHER".into();
        other.host = None;
        let mut unsampled = record(6);
        unsampled.sampled = false;
        for r in [&root, &child, &failed, &stream, &other, &unsampled] {
            sink.offer(r);
        }
        sink.shutdown(Duration::from_secs(10)).await;
        assert_eq!(
            sink.stats(),
            SpanSinkStats {
                exported: 5,
                failed: 0,
                dropped: 0,
                queued: 0,
                healthy: true
            }
        );

        let seen = seen.lock().unwrap();
        assert!(
            seen.api_keys
                .iter()
                .all(|k| k.as_deref() == Some("s=cret,1")),
            "{:?}",
            seen.api_keys
        );
        let by_id: HashMap<String, (String, ProtoSpan)> = seen
            .spans
            .iter()
            .map(|(service, span)| (hex(&span.span_id), (service.clone(), span.clone())))
            .collect();
        assert_eq!(
            by_id.len(),
            5,
            "one span per sampled record, none for the unsampled one"
        );
        assert!(!by_id.contains_key(&unsampled.span_id));

        for r in [&root, &child, &failed, &stream, &other] {
            let (service, span) = &by_id[&r.span_id];
            assert_eq!(service, &r.service);
            assert_eq!(hex(&span.trace_id), r.trace_id);
            assert_eq!(span.start_time_unix_nano, r.start_unix_ns);
            assert_eq!(span.end_time_unix_nano, r.start_unix_ns + r.duration_ns);
            assert_eq!(span.kind(), ProtoKind::Server);
            let a = attrs(span);
            assert_eq!(a["http.request.method"], r.method);
            assert_eq!(a["http.route"], r.endpoint);
            assert_eq!(a["gatetrace.request_id"], r.request_id);
            assert_eq!(a["gatetrace.streamed"], format!("bool:{}", r.streamed));
            assert_eq!(a["client.address"], "10.1.2.3");
            assert_eq!(a["user_agent.original"], "test-agent/1");
            assert_eq!(a["http.request.body.size"], "int:120");
            assert_eq!(a["http.response.body.size"], "int:3400");
        }

        let (_, span) = &by_id[&root.span_id];
        assert_eq!(span.name, "POST /mcp");
        assert!(
            span.parent_span_id.is_empty(),
            "a new trace's span is a root"
        );
        let a = attrs(span);
        assert_eq!(a["http.response.status_code"], "int:200");
        assert_eq!(a["server.address"], "mcp.example.com");
        assert_eq!(a["server.port"], "int:8443");
        assert!(!a.contains_key("error.type"));
        assert_eq!(
            span.status.as_ref().map_or(StatusCode::Unset, |s| s.code()),
            StatusCode::Unset
        );

        let (_, span) = &by_id[&child.span_id];
        assert_eq!(hex(&span.parent_span_id), "b7ad6b7169203331");

        let (_, span) = &by_id[&failed.span_id];
        assert_eq!(span.name, "GET /register/{client_id}");
        assert_eq!(span.status.as_ref().unwrap().code(), StatusCode::Error);
        assert_eq!(attrs(span)["error.type"], "503");

        let (_, span) = &by_id[&stream.span_id];
        let a = attrs(span);
        assert!(!a.contains_key("http.response.status_code"));
        assert_eq!(a["server.address"], "::1");
        assert_eq!(a["server.port"], "int:9000");

        let (_, span) = &by_id[&other.span_id];
        assert_eq!(span.name, "HTTP /mcp");
        assert!(!attrs(span).contains_key("server.address"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grpc_spans_carry_the_records_ids_times_and_attributes() {
        let seen = Shared::default();
        let url = grpc_receiver(&seen).await;
        exact_spans(OtlpProtocol::Grpc, &url, &seen).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http_protobuf_spans_carry_the_records_ids_times_and_attributes() {
        let seen = Shared::default();
        let url = http_receiver(&seen).await;
        exact_spans(OtlpProtocol::HttpProtobuf, &url, &seen).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn configured_service_name_replaces_the_records() {
        let seen = Shared::default();
        let url = grpc_receiver(&seen).await;
        let mut cfg = config(&url, OtlpProtocol::Grpc);
        cfg.service_name = Some("edge-gateway".into());
        let sink = OtlpSink::start(&cfg).unwrap().unwrap();
        let mut other = record(2);
        other.service = "other-api".into();
        sink.offer(&record(1));
        sink.offer(&other);
        sink.shutdown(Duration::from_secs(10)).await;
        let seen = seen.lock().unwrap();
        let services: Vec<&str> = seen.spans.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(services, ["edge-gateway", "edge-gateway"]);
        assert_eq!(seen.calls, 1, "both spans in one request");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_are_at_most_batch_size_and_every_span_arrives_once() {
        let seen = Shared::default();
        let url = http_receiver(&seen).await;
        let mut cfg = config(&url, OtlpProtocol::HttpProtobuf);
        cfg.batch_size = 7;
        cfg.batch_delay_ms = 60_000;
        let sink = OtlpSink::start(&cfg).unwrap().unwrap();
        for n in 0..50 {
            sink.offer(&record(n));
        }
        // 7 full batches go out without waiting for the (long) delay; the last 1 at shutdown.
        eventually("seven full batches", Duration::from_secs(10), || {
            sink.stats().exported == 49
        })
        .await;
        assert_eq!(seen.lock().unwrap().calls, 7);
        sink.shutdown(Duration::from_secs(10)).await;
        let seen = seen.lock().unwrap();
        assert_eq!(seen.calls, 8);
        assert_eq!(seen.sizes, [7, 7, 7, 7, 7, 7, 7, 1]);
        let mut ids: Vec<String> = seen.spans.iter().map(|(_, s)| hex(&s.span_id)).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 50);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_export_is_retried_a_bounded_number_of_times() {
        for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
            // Two refusals, three retries allowed: the batch arrives on the third call.
            let seen = Shared::default();
            seen.lock().unwrap().refuse = 2;
            let url = match protocol {
                OtlpProtocol::Grpc => grpc_receiver(&seen).await,
                OtlpProtocol::HttpProtobuf => http_receiver(&seen).await,
            };
            let sink = OtlpSink::start(&config(&url, protocol)).unwrap().unwrap();
            sink.offer(&record(1));
            sink.shutdown(Duration::from_secs(10)).await;
            assert_eq!(sink.stats().exported, 1, "{protocol:?}");
            assert_eq!(seen.lock().unwrap().calls, 3, "{protocol:?}");
            assert_eq!(seen.lock().unwrap().spans.len(), 1, "{protocol:?}");

            // Always refusing, two retries allowed: exactly three calls, then counted failed.
            let seen = Shared::default();
            seen.lock().unwrap().refuse = usize::MAX;
            let url = match protocol {
                OtlpProtocol::Grpc => grpc_receiver(&seen).await,
                OtlpProtocol::HttpProtobuf => http_receiver(&seen).await,
            };
            let mut cfg = config(&url, protocol);
            cfg.max_retries = 2;
            let sink = OtlpSink::start(&cfg).unwrap().unwrap();
            sink.offer(&record(1));
            sink.offer(&record(2));
            sink.shutdown(Duration::from_secs(10)).await;
            assert_eq!(
                sink.stats(),
                SpanSinkStats {
                    exported: 0,
                    failed: 2,
                    dropped: 0,
                    queued: 0,
                    healthy: false
                },
                "{protocol:?}"
            );
            assert_eq!(seen.lock().unwrap().calls, 3, "{protocol:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receiver_down_keeps_the_queue_bounded_and_counts_every_span() {
        // Nothing listens on this port.
        let port = testkit::free_port();
        let mut cfg = config(&format!("http://127.0.0.1:{port}"), OtlpProtocol::Grpc);
        cfg.queue_capacity = 100;
        cfg.batch_size = 20;
        cfg.timeout_ms = 300;
        cfg.max_retries = 1;
        let sink = OtlpSink::start(&cfg).unwrap().unwrap();
        let offered = 20_000_u64;
        for n in 0..offered {
            sink.offer(&record(n));
            let stats = sink.stats();
            // The queue plus the one batch in flight is all the memory spans may take.
            assert!(stats.queued <= 100 + 20, "queued {} at {n}", stats.queued);
        }
        let stats = sink.stats();
        assert!(stats.dropped >= offered - 120, "{stats:?}");
        // Every offered span is accounted for: exported, failed, dropped or still queued.
        eventually(
            "the queue to drain into failures",
            Duration::from_secs(30),
            || sink.stats().queued == 0,
        )
        .await;
        let stats = sink.stats();
        assert_eq!(stats.exported, 0);
        assert!(stats.failed > 0);
        assert_eq!(stats.failed + stats.dropped, offered, "{stats:?}");
        assert!(!stats.healthy);
        // Shutdown is bounded by its timeout even though nothing can be delivered.
        sink.offer(&record(1));
        let started = std::time::Instant::now();
        sink.shutdown(Duration::from_millis(500)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        sink.offer(&record(2));
        assert_eq!(
            sink.stats().dropped,
            stats.dropped + 1,
            "offers after shutdown are dropped"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_sink_exports_what_is_queued_and_ends_the_task() {
        let seen = Shared::default();
        let url = grpc_receiver(&seen).await;
        let metrics = tokio::runtime::Handle::current().metrics();
        let baseline = metrics.num_alive_tasks();
        let mut cfg = config(&url, OtlpProtocol::Grpc);
        cfg.batch_delay_ms = 60_000;
        let sink = OtlpSink::start(&cfg).unwrap().unwrap();
        for n in 0..3 {
            sink.offer(&record(n));
        }
        drop(sink);
        eventually("the queued spans", Duration::from_secs(10), || {
            seen.lock().unwrap().spans.len() == 3
        })
        .await;
        // The export task (and the connection it owned) are gone, not spinning.
        eventually("the export task to end", Duration::from_secs(10), || {
            metrics.num_alive_tasks() <= baseline
        })
        .await;
    }

    #[tokio::test]
    async fn records_with_invalid_ids_make_no_span_and_count_as_failed() {
        let cfg = config("http://127.0.0.1:9", OtlpProtocol::Grpc);
        let sink = OtlpSink::start(&cfg).unwrap().unwrap();
        let scope = InstrumentationScope::builder("t").build();
        for broken in [
            Record {
                trace_id: "0".repeat(32),
                ..record(1)
            },
            Record {
                trace_id: "xyz".into(),
                ..record(1)
            },
            Record {
                span_id: "0000000000000000".into(),
                ..record(1)
            },
            Record {
                span_id: "+0f067aa0ba902b7".into(),
                ..record(1)
            },
            Record {
                parent_span_id: Some("abc".into()),
                ..record(1)
            },
        ] {
            assert!(span_data(&broken, &scope).is_none(), "{broken:?}");
            sink.offer(&broken);
        }
        assert_eq!(sink.stats().failed, 5);
        assert_eq!(sink.stats().queued, 0);
    }

    #[test]
    fn no_endpoint_means_spans_disabled() {
        assert!(exporter(&OtlpConfig::default()).unwrap().is_none());
        let blank = OtlpConfig {
            endpoint: Some("  ".into()),
            ..OtlpConfig::default()
        };
        assert!(exporter(&blank).unwrap().is_none());
    }

    #[test]
    fn traces_url_follows_the_otlp_endpoint_rules() {
        let grpc = OtlpConfig {
            endpoint: Some("http://otel:4317".into()),
            ..OtlpConfig::default()
        };
        assert_eq!(grpc.traces_url().as_deref(), Some("http://otel:4317"));
        let http = OtlpConfig {
            endpoint: Some("http://otel:4318/".into()),
            protocol: OtlpProtocol::HttpProtobuf,
            ..OtlpConfig::default()
        };
        assert_eq!(
            http.traces_url().as_deref(),
            Some("http://otel:4318/v1/traces")
        );
        let exact = OtlpConfig {
            traces_endpoint: Some("http://otel:4318/custom".into()),
            ..http
        };
        assert_eq!(
            exact.traces_url().as_deref(),
            Some("http://otel:4318/custom")
        );
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        otlp: OtlpConfig,
    }

    #[test]
    fn flags_parse_and_bad_values_are_clear_errors() {
        use clap::Parser as _;
        let cli = Cli::try_parse_from([
            "c",
            "--otlp-endpoint=http://127.0.0.1:4318",
            "--otlp-protocol=http-protobuf",
            "--otlp-queue-capacity=10",
            "--otlp-batch-size=5",
            "--otlp-max-retries=0",
            "--otlp-service-name=gw",
        ])
        .unwrap();
        assert_eq!(cli.otlp.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(
            (
                cli.otlp.queue_capacity,
                cli.otlp.batch_size,
                cli.otlp.max_retries
            ),
            (10, 5, 0)
        );
        assert_eq!(cli.otlp.service_name.as_deref(), Some("gw"));
        let standard = Cli::try_parse_from(["c", "--otlp-protocol=http/protobuf"]).unwrap();
        assert_eq!(standard.otlp.protocol, OtlpProtocol::HttpProtobuf);
        for bad in [
            "--otlp-protocol=http/json",
            "--otlp-queue-capacity=0",
            "--otlp-timeout-ms=0",
        ] {
            assert!(Cli::try_parse_from(["c", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn toml_config_deserializes_and_is_validated() {
        #[derive(serde::Deserialize)]
        struct File {
            otlp: OtlpConfig,
        }
        let file: File = toml::from_str(
            "[otlp]\nendpoint = \"http://127.0.0.1:4317\"\nprotocol = \"http/protobuf\"\nbatch_size = 64\n",
        )
        .unwrap();
        assert_eq!(file.otlp.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(file.otlp.batch_size, 64);
        assert_eq!(file.otlp.queue_capacity, 4096);
        assert!(toml::from_str::<File>("[otlp]\nbatchsize = 1\n").is_err());
        let zero = OtlpConfig {
            batch_size: 0,
            ..OtlpConfig::default()
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .contains("batch_size")
        );
        let tls = OtlpConfig {
            endpoint: Some("https://otel:4317".into()),
            ..OtlpConfig::default()
        };
        assert!(tls.validate().unwrap_err().to_string().contains("TLS"));
        let scheme = OtlpConfig {
            endpoint: Some("127.0.0.1:4317".into()),
            ..OtlpConfig::default()
        };
        assert!(scheme.validate().is_err());
    }

    #[test]
    fn headers_parse_percent_decoded_and_never_show_in_debug() {
        let parsed = parse_headers("Authorization=Bearer%20abc , x-tenant=t1,").unwrap();
        assert_eq!(parsed["authorization"], "Bearer abc");
        assert_eq!(parsed["x-tenant"], "t1");
        for bad in [
            "novalue",
            "=v",
            "bad name=v",
            "k=%zz",
            "k=%4",
            "k=%+1",
            "k=%0a",
        ] {
            assert!(parse_headers(bad).is_err(), "{bad}");
        }
        let err = parse_headers("k=%zzsecret").unwrap_err();
        assert!(!format!("{err:#}").contains("secret"));
        let cfg = OtlpConfig {
            headers: Some("authorization=topsecret".into()),
            ..OtlpConfig::default()
        };
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("topsecret") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn host_header_splits_into_address_and_port() {
        assert_eq!(split_host_port("example.com"), ("example.com", None));
        assert_eq!(
            split_host_port("example.com:8080"),
            ("example.com", Some(8080))
        );
        assert_eq!(
            split_host_port("[2001:db8::1]:443"),
            ("2001:db8::1", Some(443))
        );
        assert_eq!(split_host_port("[2001:db8::1]"), ("2001:db8::1", None));
        assert_eq!(split_host_port("2001:db8::1"), ("2001:db8::1", None));
        assert_eq!(split_host_port("host:notaport"), ("host:notaport", None));
    }
}
