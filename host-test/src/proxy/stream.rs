//! One HTTP stream through the VM: the request callbacks, the upstream's answer, the response
//! callbacks and the end-of-stream order of the profile (Envoy: `on_done`, then `on_log` and
//! `on_delete` once done; Kong: `on_log`, `on_done`, `on_delete`).

use wasmtime::Val;

use super::host::{Progress, ProxyHost};
use super::options::Profile;
use super::report::{CallState, ProxyExchange};
use super::state::{Ctx, Life, Step, Stream};
use crate::guest::FUEL;
use crate::headers::Headers;
use crate::model::{BackendResponse, ClientResponse, HttpRequest, UpstreamRequest, body_pieces};

/// What a body callback returns to let the data pass (`Action::Continue`); anything else
/// (`StopIterationAndBuffer`, …) keeps it in the buffer, where the next callback sees it too.
const CONTINUE: i32 = 0;
/// What a body callback returns at the end of the stream to hold the request until the filter
/// resumes it (`StopIterationAndBuffer`).
const STOP_ITERATION_AND_BUFFER: i32 = 1;

/// Converts a request into the `:pseudo`-headed map a proxy hands a filter.
fn request_map(request: &HttpRequest) -> Headers {
    let authority = request
        .headers
        .get("host")
        .unwrap_or("gateway.local")
        .to_owned();
    let mut map = Headers::from_pairs([
        (":authority", authority.as_str()),
        (":path", request.uri.as_str()),
        (":method", request.method.as_str()),
        (":scheme", "http"),
    ]);
    for (k, v) in request.headers.pairs() {
        if !k.eq_ignore_ascii_case("host") {
            map.add(&k.to_ascii_lowercase(), v);
        }
    }
    map
}

/// Converts a status and headers into the `:status`-headed map a proxy hands a filter.
pub(super) fn response_map(status: u16, headers: &Headers) -> Headers {
    let mut map = Headers::from_pairs([(":status", status.to_string())]);
    for (k, v) in headers.pairs() {
        map.add(&k.to_ascii_lowercase(), v);
    }
    map
}

fn split_response(map: &Headers, body: Vec<u8>) -> ClientResponse {
    let status = map
        .get(":status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let headers = Headers::from_pairs(
        map.pairs()
            .iter()
            .filter(|(k, _)| !k.starts_with(':'))
            .cloned(),
    );
    ClientResponse {
        status,
        headers,
        body,
    }
}
impl ProxyHost {
    /// Runs a whole HTTP stream: request headers and body, the upstream answering `upstream`,
    /// response headers and body, then the end-of-stream callbacks.
    pub fn http(&mut self, request: &HttpRequest, upstream: &BackendResponse) -> ProxyExchange {
        let ctx = self.begin_http(request);
        self.end_http(ctx, upstream)
    }

    /// Creates a stream context and runs the request callbacks; the stream stays open so a
    /// test can answer calls dispatched from them before [`ProxyHost::end_http`].
    pub fn begin_http(&mut self, request: &HttpRequest) -> u32 {
        let ctx = self.next_context;
        self.next_context += 1;
        let _ = self.store.set_fuel(FUEL);
        let root = self.store.data().root;
        let now = self.store.data().clock.now_nanos();
        let state = self.store.data_mut();
        state.calls.take();
        state.logs.clear();
        state.warnings.clear();
        state.contexts.insert(
            ctx,
            Ctx {
                stream: Some(Stream {
                    request_headers: request_map(request),
                    start_nanos: now,
                    source_addr: request.source_addr.clone(),
                    ..Stream::default()
                }),
                life: Life::Alive,
            },
        );
        let first = self.store.data().dispatched.len();
        self.progress.insert(
            ctx,
            Progress {
                first_call: first,
                callbacks: Vec::new(),
                failure: None,
                body_sent: false,
                paused: false,
                request_pieces: body_pieces(&request.body, &request.body_parts)
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect(),
            },
        );
        self.run(
            ctx,
            Step::ContextCreate,
            "proxy_on_context_create",
            &[Val::I32(ctx as i32), Val::I32(root as i32)],
        );
        let n = self.headers_len(ctx, true);
        let body_len = request.body.len();
        let action = self.run(
            ctx,
            Step::RequestHeaders,
            "proxy_on_request_headers",
            &[
                Val::I32(ctx as i32),
                Val::I32(n),
                Val::I32(i32::from(body_len == 0)),
            ],
        );
        if action == Some(1) {
            self.progress(ctx).paused = true;
        } else if body_len > 0 {
            self.send_body(ctx);
        }
        self.pump();
        ctx
    }

    fn progress(&mut self, ctx: u32) -> &mut Progress {
        self.progress.entry(ctx).or_default()
    }

    /// Runs one stream callback, noting its return and a trap.
    fn run(&mut self, ctx: u32, step: Step, export: &str, args: &[Val]) -> Option<i32> {
        if let Some(reason) = self.broken.clone() {
            // A trapped VM runs nothing more; the stream fails with the first trap.
            self.progress(ctx)
                .failure
                .get_or_insert_with(|| format!("VM is broken since an earlier trap: {reason}"));
            return None;
        }
        let outcome = self.invoke(step, ctx, export, args);
        let progress = self.progress(ctx);
        match outcome {
            Ok(result) => {
                let shown = match (step, result) {
                    (
                        Step::RequestHeaders
                        | Step::RequestBody
                        | Step::ResponseHeaders
                        | Step::ResponseBody,
                        Some(0),
                    ) => "=Continue".to_owned(),
                    (
                        Step::RequestHeaders
                        | Step::RequestBody
                        | Step::ResponseHeaders
                        | Step::ResponseBody,
                        Some(1),
                    ) => "=Pause".to_owned(),
                    (_, Some(v)) => format!("={v}"),
                    (_, None) => String::new(),
                };
                progress.callbacks.push(format!("{}{shown}", step.name()));
                result
            }
            Err(e) => {
                progress.callbacks.push(format!("{}=TRAP", step.name()));
                progress.failure.get_or_insert(e);
                None
            }
        }
    }

    fn headers_len(&self, ctx: u32, request: bool) -> i32 {
        self.store
            .data()
            .contexts
            .get(&ctx)
            .and_then(|c| c.stream.as_ref())
            .map_or(0, |s| {
                if request {
                    s.request_headers.len()
                } else {
                    s.response_headers.len()
                }
            }) as i32
    }

    /// Hands the request body to the filter piece by piece (`end_of_stream` on the last); what
    /// it lets pass goes upstream, what it buffers it sees again with the next piece.
    fn send_body(&mut self, ctx: u32) {
        self.progress(ctx).body_sent = true;
        let pieces = std::mem::take(&mut self.progress(ctx).request_pieces);
        let last = pieces.len();
        for (n, piece) in pieces.into_iter().enumerate() {
            let end = n + 1 == last;
            let Some(stream) = self.stream_of(ctx) else {
                return;
            };
            stream.request_body.extend_from_slice(&piece);
            let len = stream.request_body.len();
            let action = self.run(
                ctx,
                Step::RequestBody,
                "proxy_on_request_body",
                &[
                    Val::I32(ctx as i32),
                    Val::I32(len as i32),
                    Val::I32(i32::from(end)),
                ],
            );
            if self.progress(ctx).failure.is_some() {
                return;
            }
            if action == Some(CONTINUE) {
                if let Some(s) = self.stream_of(ctx) {
                    let passed = std::mem::take(&mut s.request_body);
                    s.request_passed.extend_from_slice(&passed);
                }
            } else if end && action == Some(STOP_ITERATION_AND_BUFFER) {
                self.progress(ctx).paused = true;
            }
        }
    }

    /// Hands the response body to the filter piece by piece, as [`ProxyHost::send_body`].
    fn send_response_body(&mut self, ctx: u32, pieces: Vec<Vec<u8>>) {
        let last = pieces.len();
        for (n, piece) in pieces.into_iter().enumerate() {
            let end = n + 1 == last;
            let Some(stream) = self.stream_of(ctx) else {
                return;
            };
            stream.response_body.extend_from_slice(&piece);
            let len = stream.response_body.len();
            let action = self.run(
                ctx,
                Step::ResponseBody,
                "proxy_on_response_body",
                &[
                    Val::I32(ctx as i32),
                    Val::I32(len as i32),
                    Val::I32(i32::from(end)),
                ],
            );
            if self.progress(ctx).failure.is_some() {
                return;
            }
            if action == Some(CONTINUE)
                && let Some(s) = self.stream_of(ctx)
            {
                let passed = std::mem::take(&mut s.response_body);
                s.response_passed.extend_from_slice(&passed);
            }
        }
    }

    fn stream_of(&mut self, ctx: u32) -> Option<&mut Stream> {
        self.store
            .data_mut()
            .contexts
            .get_mut(&ctx)?
            .stream
            .as_mut()
    }

    /// Lets the upstream answer, runs the response callbacks and ends the stream
    /// (Envoy: `on_done`, then `on_log` and `on_delete` once done; Kong: `on_log`, `on_done`,
    /// `on_delete`).
    pub fn end_http(&mut self, ctx: u32, upstream: &BackendResponse) -> ProxyExchange {
        let mut upstream_request = None;
        let held = {
            let paused = self.progress(ctx).paused;
            let resumed = self.stream_of(ctx).is_some_and(|s| s.request_resumed);
            paused && !resumed
        };
        let body_pending =
            !self.progress(ctx).body_sent && !self.progress(ctx).request_pieces.is_empty();
        if !held && body_pending && self.progress(ctx).failure.is_none() {
            self.send_body(ctx);
        }
        let local = self.stream_of(ctx).and_then(|s| s.local.clone());
        let mut warnings = Vec::new();
        let failed = self.progress(ctx).failure.is_some();
        if held && local.is_none() && !failed {
            warnings.push(
                "request paused and never resumed: the proxy holds it until its stream timeout"
                    .to_owned(),
            );
        }
        if !failed && (local.is_some() || !held) {
            if local.is_none()
                && let Some(s) = self.stream_of(ctx)
            {
                let h = &s.request_headers;
                upstream_request = Some(UpstreamRequest {
                    method: h.get(":method").unwrap_or("GET").to_owned(),
                    uri: h.get(":path").unwrap_or("/").to_owned(),
                    headers: h.clone(),
                    body: [s.request_passed.as_slice(), &s.request_body].concat(),
                });
            }
            let (status, headers, pieces) = match &local {
                Some(l) => (l.status, l.headers.clone(), body_pieces(&l.body, &[])),
                None => (
                    upstream.status,
                    upstream.headers.clone(),
                    body_pieces(&upstream.body, &upstream.body_parts),
                ),
            };
            let pieces: Vec<Vec<u8>> = pieces.into_iter().map(<[u8]>::to_vec).collect();
            if let Some(s) = self.stream_of(ctx) {
                s.response_headers = response_map(status, &headers);
                s.response_code = Some(status);
            }
            let n = self.headers_len(ctx, false);
            self.run(
                ctx,
                Step::ResponseHeaders,
                "proxy_on_response_headers",
                &[
                    Val::I32(ctx as i32),
                    Val::I32(n),
                    Val::I32(i32::from(pieces.is_empty())),
                ],
            );
            if !pieces.is_empty() && self.progress(ctx).failure.is_none() {
                self.send_response_body(ctx, pieces);
            }
        }
        let now = self.store.data().clock.now_nanos();
        if let Some(s) = self.stream_of(ctx) {
            s.end_nanos = Some(now);
        }
        self.end_stream(ctx);
        self.pump();
        let progress = self.progress.remove(&ctx).unwrap_or_default();
        let fuel = FUEL - self.store.get_fuel().unwrap_or(FUEL);
        let state = self.store.data_mut();
        let stream = state.contexts.get(&ctx).and_then(|c| c.stream.as_ref());
        let response = match (&progress.failure, stream) {
            (None, Some(s)) if s.closed => ClientResponse {
                status: 0,
                headers: Headers::default(),
                body: b"stream closed by the plugin (reset)".to_vec(),
            },
            (None, Some(s)) if s.response_code.is_some() => split_response(
                &s.response_headers,
                [s.response_passed.as_slice(), &s.response_body].concat(),
            ),
            _ => ClientResponse {
                status: 500,
                headers: Headers::default(),
                body: Vec::new(),
            },
        };
        warnings.append(&mut state.warnings);
        if state
            .contexts
            .get(&ctx)
            .is_some_and(|c| c.life == Life::Deleted)
        {
            state.contexts.remove(&ctx);
        }
        ProxyExchange {
            context_id: ctx,
            callbacks: progress.callbacks,
            upstream: upstream_request,
            response,
            local_response: local.is_some(),
            logs: std::mem::take(&mut state.logs),
            host_calls: state.calls.take(),
            fuel,
            dispatched: state.dispatched[progress.first_call..]
                .iter()
                .map(|c| c.id)
                .collect(),
            failure: progress.failure,
            warnings,
        }
    }

    fn end_stream(&mut self, ctx: u32) {
        let arg = [Val::I32(ctx as i32)];
        match self.store.data().profile {
            Profile::Kong => {
                self.run(ctx, Step::Log, "proxy_on_log", &arg);
                if self.run(ctx, Step::Done, "proxy_on_done", &arg) == Some(0) {
                    self.store.data_mut().warnings.push(format!(
                        "context {ctx}: on_done returned false; Kong ignores it (and proxy_done is not implemented there)"
                    ));
                }
                self.run(ctx, Step::Delete, "proxy_on_delete", &arg);
                self.mark_deleted(ctx);
            }
            Profile::Envoy => {
                if self.run(ctx, Step::Done, "proxy_on_done", &arg) == Some(0) {
                    if let Some(c) = self.store.data_mut().contexts.get_mut(&ctx) {
                        c.life = Life::AwaitingDone;
                    }
                } else {
                    self.finish_context(ctx);
                }
            }
        }
    }

    /// `on_log` then `on_delete`, after `on_done` said true or the guest called `proxy_done`.
    pub(super) fn finish_context(&mut self, ctx: u32) {
        let arg = [Val::I32(ctx as i32)];
        self.run(ctx, Step::Log, "proxy_on_log", &arg);
        self.run(ctx, Step::Delete, "proxy_on_delete", &arg);
        self.mark_deleted(ctx);
    }

    fn mark_deleted(&mut self, ctx: u32) {
        let state = self.store.data_mut();
        if let Some(c) = state.contexts.get_mut(&ctx) {
            c.life = Life::Deleted;
        }
        // A deleted context's pending calls are cancelled by the host.
        for call in state
            .dispatched
            .iter_mut()
            .filter(|c| c.context_id == ctx && c.state == CallState::Pending)
        {
            call.state = CallState::Dropped(format!("context {ctx} deleted before the answer"));
        }
    }
}
