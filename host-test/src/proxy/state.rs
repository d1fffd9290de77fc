//! What the proxy-wasm host keeps for its VM ([`ProxyState`]): contexts and their streams,
//! the callback running, dispatched calls, shared data, queues, metrics, properties.

use std::collections::{BTreeMap, HashMap, VecDeque};

use gatetrace_abi::proxy_wasm::serialize_pairs;

use super::options::Profile;
use super::report::{DispatchedCall, Metric};
use crate::guest::{HostCalls, LogLine};
use crate::headers::Headers;
use crate::model::ClientResponse;
use crate::wasi::{GuestWasi, VirtualClock};

/// The callback (or start step) running now, as the host tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Idle,
    Start,
    ContextCreate,
    VmStart,
    Configure,
    RequestHeaders,
    RequestBody,
    ResponseHeaders,
    ResponseBody,
    Done,
    Log,
    Delete,
    Tick,
    CallResponse,
    QueueReady,
}

impl Step {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Idle => "host",
            Self::Start => "_initialize",
            Self::ContextCreate => "on_context_create",
            Self::VmStart => "on_vm_start",
            Self::Configure => "on_configure",
            Self::RequestHeaders => "on_request_headers",
            Self::RequestBody => "on_request_body",
            Self::ResponseHeaders => "on_response_headers",
            Self::ResponseBody => "on_response_body",
            Self::Done => "on_done",
            Self::Log => "on_log",
            Self::Delete => "on_delete",
            Self::Tick => "on_tick",
            Self::CallResponse => "on_http_call_response",
            Self::QueueReady => "on_queue_ready",
        }
    }
}

/// One HTTP stream: its request, response and how far it got.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub(crate) request_headers: Headers,
    /// The request body the filter sees: the pieces since it last let them pass (it buffers
    /// by answering a body callback with `StopIterationAndBuffer`).
    pub(crate) request_body: Vec<u8>,
    /// Request body bytes the filter let pass on to the upstream.
    pub(crate) request_passed: Vec<u8>,
    pub(crate) request_trailers: Headers,
    pub(crate) response_headers: Headers,
    /// The response body the filter sees, as `request_body`.
    pub(crate) response_body: Vec<u8>,
    /// Response body bytes the filter let pass on to the client.
    pub(crate) response_passed: Vec<u8>,
    pub(crate) response_trailers: Headers,
    pub(crate) local: Option<ClientResponse>,
    pub(crate) request_resumed: bool,
    pub(crate) response_resumed: bool,
    pub(crate) closed: bool,
    pub(crate) start_nanos: u64,
    pub(crate) end_nanos: Option<u64>,
    pub(crate) response_code: Option<u16>,
    pub(crate) source_addr: String,
}

/// A context's life: alive, waiting for `proxy_done` after `on_done` said false, or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    Alive,
    AwaitingDone,
    Deleted,
}

/// One context: a stream context has a stream, the root context none.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) stream: Option<Stream>,
    pub(crate) life: Life,
}

/// The answer being delivered to `proxy_on_http_call_response`.
pub(crate) struct CallReply {
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: Headers,
}

/// The host state of the one VM.
pub(crate) struct ProxyState {
    pub(crate) wasi: GuestWasi,
    pub(crate) seen: (usize, usize),
    pub(crate) profile: Profile,
    pub(crate) plugin_config: Vec<u8>,
    pub(crate) vm_config: Vec<u8>,
    pub(crate) clusters: Vec<String>,
    pub(crate) plugin_name: String,
    pub(crate) root_id: String,
    pub(crate) vm_id: String,
    pub(crate) log_level: u32,
    pub(crate) clock: VirtualClock,
    pub(crate) contexts: BTreeMap<u32, Ctx>,
    pub(crate) root: u32,
    pub(crate) effective: u32,
    pub(crate) step: Step,
    pub(crate) calls: HostCalls,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) warnings: Vec<String>,
    pub(crate) refusal: Option<String>,
    pub(crate) dispatched: Vec<DispatchedCall>,
    pub(crate) reply: Option<CallReply>,
    pub(crate) shared: HashMap<String, (Vec<u8>, u32)>,
    pub(crate) next_cas: u32,
    pub(crate) queues: Vec<(String, String, VecDeque<Vec<u8>>)>,
    pub(crate) ready_queues: Vec<u32>,
    pub(crate) metrics: Vec<Metric>,
    pub(crate) tick_period_ms: u32,
    pub(crate) properties: HashMap<String, Vec<u8>>,
    pub(crate) done_requests: Vec<u32>,
}

impl ProxyState {
    /// Moves the guest's WASI stdout/stderr lines into the log.
    pub(crate) fn collect_output(&mut self) {
        for (stream, line) in self.wasi.take_output(&mut self.seen) {
            self.logs.push(LogLine {
                level: stream,
                message: line,
            });
        }
    }

    pub(crate) fn stream_mut(&mut self) -> Option<&mut Stream> {
        self.contexts.get_mut(&self.effective)?.stream.as_mut()
    }

    pub(crate) fn stream(&self) -> Option<&Stream> {
        self.contexts.get(&self.effective)?.stream.as_ref()
    }

    /// The property at `path` (segments joined by `.`) as this profile encodes it.
    pub(crate) fn property(&self, path: &str) -> Option<Vec<u8>> {
        if let Some(v) = self.properties.get(path) {
            return Some(v.clone());
        }
        let kong = self.profile == Profile::Kong;
        let text = |s: &str| Some(s.as_bytes().to_vec());
        let int = |n: i64| {
            if kong {
                Some(n.to_string().into_bytes())
            } else {
                Some(n.to_le_bytes().to_vec())
            }
        };
        match path {
            "plugin_name" => return text(&self.plugin_name),
            "plugin_root_id" => return text(&self.root_id),
            "plugin_vm_id" => return text(&self.vm_id),
            _ => {}
        }
        let s = self.stream()?;
        let secs =
            |nanos: u64| format!("{}.{:03}", nanos / 1_000_000_000, nanos / 1_000_000 % 1000);
        let (addr, port) = s
            .source_addr
            .rsplit_once(':')
            .map_or((s.source_addr.as_str(), "0"), |(a, p)| (a, p));
        match path {
            "request.path" => text(s.request_headers.get(":path")?),
            "request.url_path" => text(s.request_headers.get(":path")?.split('?').next()?),
            "request.host" => text(s.request_headers.get(":authority")?),
            "request.scheme" => text(s.request_headers.get(":scheme")?),
            "request.method" => text(s.request_headers.get(":method")?),
            "request.protocol" => text("HTTP/1.1"),
            "request.id" => text(s.request_headers.get("x-request-id")?),
            "request.useragent" => text(s.request_headers.get("user-agent")?),
            "request.time" if kong => text(&secs(s.start_nanos)),
            "request.time" => int(s.start_nanos as i64),
            "request.duration" => {
                let d = s.end_nanos.unwrap_or(self.clock.now_nanos()) - s.start_nanos;
                if kong { text(&secs(d)) } else { int(d as i64) }
            }
            "request.size" => int((s.request_passed.len() + s.request_body.len()) as i64),
            "response.code" => int(i64::from(s.response_code?)),
            "response.size" => {
                s.response_code?;
                int((s.response_passed.len() + s.response_body.len()) as i64)
            }
            "source.address" if kong => text(addr),
            "source.address" => text(&s.source_addr),
            "source.port" => int(port.parse().unwrap_or(0)),
            "request.headers" if !kong => Some(serialize_pairs(s.request_headers.pairs())),
            "response.headers" if !kong => Some(serialize_pairs(s.response_headers.pairs())),
            _ => {
                let (map, name) = if let Some(n) = path.strip_prefix("request.headers.") {
                    (&s.request_headers, n)
                } else {
                    (&s.response_headers, path.strip_prefix("response.headers.")?)
                };
                if kong { text(map.get(name)?) } else { None }
            }
        }
    }
}
