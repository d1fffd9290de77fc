//! The bindings: [`Tracer`] (one per server: config, id generator, record queue) creates an
//! [`Exchange`] per request and feeds it the core's lifecycle; [`Tracer::tick`] hands out the
//! [`Batch`]es to send and [`Tracer::settle`] takes their outcome. Never throws after start.

use gatetrace_core::config::Config;
use gatetrace_core::exchange::{self, RequestHead};
use gatetrace_core::ids::Instance;
use gatetrace_core::record::HostKind;
use gatetrace_core::shipper::{CallOutcome, Limits, Shipper};
use wasm_bindgen::prelude::*;

use crate::headers::{EditList, LinePairs};

/// Bytes of salt the host passes to [`Tracer::new`] (four words).
const SALT_BYTES: usize = 32;
/// Salt word of the id generator that names this tracer's batches (`x-gatetrace-source`).
const SOURCE_SALT: u64 = 0x736f_7572_6365;
/// The runtime names [`Tracer::new`] takes.
const NODE: &str = "node";
const EDGE: &str = "edge";

/// One server's gatetrace: the validated config, ids and the record queue.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Tracer {
    config: Config,
    ids: Instance,
    host_kind: HostKind,
    /// Clock precision of the runtime: times are cut to it so records claim no more.
    precision_ns: u64,
    shipper: Shipper,
    source: String,
    next_call: u32,
    line: Vec<u8>,
}

/// One request between its head and its end.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Exchange {
    inner: exchange::Exchange,
    edits: EditList,
}

/// One batch to `POST` to the collector; answer it with [`Tracer::settle`].
#[wasm_bindgen]
#[derive(Debug)]
pub struct Batch {
    call_id: u32,
    sequence: u64,
    records: u64,
    body: Vec<u8>,
}

#[wasm_bindgen]
impl Tracer {
    /// Parses `config_json` (the plugins' JSON; the error names the bad key) for `runtime`
    /// (`"node"`: microsecond clock; `"edge"`: millisecond clock that moves only on I/O),
    /// salted with at least 32 random bytes from `crypto.getRandomValues`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        config_json: &str,
        runtime: &str,
        salt: &[u8],
        now_ms: f64,
    ) -> Result<Tracer, JsError> {
        Self::start(config_json, runtime, salt, now_ms).map_err(|e| JsError::new(&e))
    }
}

impl Tracer {
    /// [`Tracer::new`] with a plain error (a `JsError` exists only inside a JS host).
    pub fn start(
        config_json: &str,
        runtime: &str,
        salt: &[u8],
        now_ms: f64,
    ) -> Result<Tracer, String> {
        let config = Config::from_json(config_json.as_bytes())
            .map_err(|e| format!("gatetrace: invalid config: {e}"))?;
        let (host_kind, precision_ns) = match runtime {
            NODE => (HostKind::Node, 1_000),
            EDGE => (HostKind::Edge, 1_000_000),
            other => {
                return Err(format!(
                    "gatetrace: unknown runtime {other:?} (expected \"{NODE}\" or \"{EDGE}\")"
                ));
            }
        };
        if salt.len() < SALT_BYTES {
            return Err(format!(
                "gatetrace: salt of {} bytes, at least {SALT_BYTES} needed",
                salt.len()
            ));
        }
        let now = unix_ns(now_ms, precision_ns);
        let words: Vec<u64> = salt[..SALT_BYTES]
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
            .chain([now])
            .collect();
        let mut source_words = words.clone();
        source_words.push(SOURCE_SALT);
        let source = Instance::new(&source_words)
            .next_ids(now, &[])
            .request_id_hex();
        let shipper = Shipper::new(
            Limits::of_collector(&config.collector),
            gatetrace_core::record::add_dropped,
        );
        Ok(Self {
            ids: Instance::new(&words),
            host_kind,
            precision_ns,
            shipper,
            source: String::from_utf8_lossy(&source).into_owned(),
            next_call: 0,
            line: Vec::with_capacity(1024),
            config,
        })
    }
}

#[wasm_bindgen]
impl Tracer {
    /// `x-gatetrace-source` of this tracer's batches.
    #[wasm_bindgen(getter)]
    pub fn source(&self) -> String {
        self.source.clone()
    }

    /// `collector.path` (default `/v1/records`).
    #[wasm_bindgen(getter, js_name = collectorPath)]
    pub fn collector_path(&self) -> String {
        self.config.collector.path.clone()
    }

    /// `collector.authority` (default `gatetrace-collector`).
    #[wasm_bindgen(getter, js_name = collectorAuthority)]
    pub fn collector_authority(&self) -> String {
        self.config.collector.authority.clone()
    }

    /// `collector.token`, when set. Never logged.
    #[wasm_bindgen(getter, js_name = collectorToken)]
    pub fn collector_token(&self) -> Option<String> {
        self.config.collector.token.clone()
    }

    /// `collector.timeoutMs`.
    #[wasm_bindgen(getter, js_name = timeoutMs)]
    pub fn timeout_ms(&self) -> f64 {
        self.config.collector.timeout_ms as f64
    }

    /// `collector.tickMs`.
    #[wasm_bindgen(getter, js_name = tickMs)]
    pub fn tick_ms(&self) -> f64 {
        self.config.collector.tick_ms as f64
    }

    /// `collector.batchSize`.
    #[wasm_bindgen(getter, js_name = batchSize)]
    pub fn batch_size(&self) -> usize {
        self.config.collector.batch_size
    }

    /// The request id header (lowercase).
    #[wasm_bindgen(getter, js_name = requestIdHeader)]
    pub fn request_id_header(&self) -> String {
        self.config.request_id_header.clone()
    }

    /// Starts an exchange from the request line, its headers (`name\nvalue\n…`) and the
    /// clock: request id, trace context, route, MCP facts from headers.
    #[allow(clippy::needless_pass_by_value)] // `wasm-bindgen` hands optional strings over owned
    pub fn begin(
        &mut self,
        method: &str,
        path_and_query: &str,
        authority: Option<String>,
        client_addr: Option<String>,
        headers: &str,
        now_ms: f64,
    ) -> Exchange {
        let head = RequestHead {
            method: method.as_bytes(),
            path_and_query: path_and_query.as_bytes(),
            authority: authority.as_deref().map(str::as_bytes),
            client_addr: client_addr.as_deref().map(str::as_bytes),
        };
        let now = unix_ns(now_ms, self.precision_ns);
        let inner = exchange::Exchange::begin(
            &self.config,
            &mut self.ids,
            &head,
            &mut LinePairs(headers),
            now,
            &[],
        );
        let mut edits = EditList::default();
        let upstream = inner.upstream(&self.config);
        upstream.apply_to_request(&mut edits);
        upstream.apply_to_response(&mut edits);
        Exchange { inner, edits }
    }

    /// The response's status and headers (`name\nvalue\n…`), once they are known. The core
    /// reads only the headers the exchange needs with that status.
    #[wasm_bindgen(js_name = responseHeaders)]
    pub fn response_headers(&self, exchange: &mut Exchange, status: u16, headers: &str) {
        exchange
            .inner
            .response_headers(&self.config, Some(status), &mut LinePairs(headers));
    }

    /// One chunk of the response body as it passed (scanned, never held past `mcpBodyLimit`).
    #[wasm_bindgen(js_name = responseChunk)]
    pub fn response_chunk(&self, exchange: &mut Exchange, chunk: &[u8]) {
        exchange.inner.response_chunk(&self.config, chunk);
    }

    /// Ends the exchange with the status the client got (`undefined` when none went out)
    /// and queues its record ([`Tracer::last_record`] shows it).
    pub fn finish(&mut self, exchange: Exchange, status: Option<u16>, now_ms: f64) {
        let mut inner = exchange.inner;
        inner.response_end();
        let end = unix_ns(now_ms, self.precision_ns);
        self.line.clear();
        inner
            .record(&self.config, status, end, self.host_kind, 0)
            .write_ndjson_line(&mut self.line);
        if !self.line.is_empty() {
            self.shipper.push(self.line.clone());
        }
    }

    /// The NDJSON line of the last finished exchange (for a local copy of the records; no
    /// cost unless called).
    #[wasm_bindgen(getter, js_name = lastRecord)]
    pub fn last_record(&self) -> String {
        String::from_utf8_lossy(&self.line).into_owned()
    }

    /// The batches to send now (retries first); each must be answered with
    /// [`Tracer::settle`]. Unanswered calls expire after the timeout plus one tick.
    pub fn tick(&mut self, now_ms: f64) -> Vec<Batch> {
        let mut out = Vec::new();
        let next_call = &mut self.next_call;
        self.shipper.tick(unix_ns(now_ms, 1), |batch| {
            *next_call = next_call.wrapping_add(1).max(1);
            out.push(Batch {
                call_id: *next_call,
                sequence: batch.sequence,
                records: batch.records,
                body: batch.body.clone(),
            });
            Some(*next_call)
        });
        out
    }

    /// The outcome of call `call_id`: the collector's HTTP status, or 0 when the call failed
    /// (connection refused, timeout). 429 and 5xx are retried, other errors dropped.
    pub fn settle(&mut self, call_id: u32, status: u16) {
        let outcome = match status {
            0 => CallOutcome::Failed,
            code => CallOutcome::Status(code),
        };
        self.shipper.on_response(call_id, outcome);
    }

    /// Records waiting for a batch.
    #[wasm_bindgen(getter)]
    pub fn queued(&self) -> usize {
        self.shipper.queued()
    }

    /// Batches sent and not yet settled, plus those waiting for a retry.
    #[wasm_bindgen(getter)]
    pub fn unsettled(&self) -> usize {
        self.shipper.in_flight() + self.shipper.pending_retries()
    }

    /// Records the collector acknowledged.
    #[wasm_bindgen(getter)]
    pub fn delivered(&self) -> f64 {
        self.shipper.stats().delivered as f64
    }

    /// Records lost (queue overflow, retries exhausted, rejected batches); each batch also
    /// reports them to the collector in its first record's `dropped`.
    #[wasm_bindgen(getter)]
    pub fn dropped(&self) -> f64 {
        self.shipper.stats().dropped as f64
    }
}

#[wasm_bindgen]
impl Exchange {
    /// The request id in effect (incoming per policy, or generated).
    #[wasm_bindgen(getter, js_name = requestId)]
    pub fn request_id(&self) -> String {
        self.inner.request_id().to_owned()
    }

    /// Request header edits as `op, name, value` triples (`op` is `set` or `remove`).
    #[wasm_bindgen(getter, js_name = requestEdits)]
    pub fn request_edits(&self) -> Vec<String> {
        self.edits.request.clone()
    }

    /// Response header edits, the same triples (the request id when `echoRequestId`).
    #[wasm_bindgen(getter, js_name = responseEdits)]
    pub fn response_edits(&self) -> Vec<String> {
        self.edits.response.clone()
    }

    /// On an MCP route whose operation is in the body: how many bytes the body has
    /// (`Content-Length`); hand the body to [`Exchange::request_body`].
    #[wasm_bindgen(getter, js_name = requestBodyWanted)]
    pub fn request_body_wanted(&self) -> Option<usize> {
        self.inner.request_body_wanted()
    }

    /// The whole request body (the JSON-RPC message the server parsed).
    #[wasm_bindgen(js_name = requestBody)]
    pub fn request_body(&mut self, body: &[u8]) {
        self.inner.request_body(body);
    }

    /// Whether the response body carries the MCP outcome: feed it to
    /// [`Tracer::response_chunk`].
    #[wasm_bindgen(getter, js_name = responseBodyWanted)]
    pub fn response_body_wanted(&self) -> bool {
        self.inner.response_body_wanted()
    }
}

#[wasm_bindgen]
impl Batch {
    /// The id to settle this call with.
    #[wasm_bindgen(getter, js_name = callId)]
    pub fn call_id(&self) -> u32 {
        self.call_id
    }

    /// `x-gatetrace-sequence` (kept by retries).
    #[wasm_bindgen(getter)]
    pub fn sequence(&self) -> String {
        self.sequence.to_string()
    }

    /// Records in the body.
    #[wasm_bindgen(getter)]
    pub fn records(&self) -> f64 {
        self.records as f64
    }

    /// The NDJSON body.
    #[wasm_bindgen(getter)]
    pub fn body(&self) -> Vec<u8> {
        self.body.clone()
    }
}

/// Milliseconds since the epoch (a JS clock) as nanoseconds, cut to `precision_ns`; 0 for a
/// clock before the epoch or not a number.
fn unix_ns(ms: f64, precision_ns: u64) -> u64 {
    if !(ms.is_finite() && ms > 0.0) {
        return 0;
    }
    // `as` saturates: a clock past 2554 gives u64::MAX.
    let ns = (ms * 1e6) as u64;
    ns - ns % precision_ns.max(1)
}

#[cfg(test)]
mod tests;
