//! The HTTP context: drives the core exchange on request and response headers (ids and trace
//! context upstream, classification), copies MCP bodies chunk by chunk without ever pausing
//! them, and in `on_log` finishes the record and only enqueues it.

use std::borrow::Cow;
use std::rc::Rc;

use gatetrace_abi::proxy_wasm::deserialize_pairs;
use gatetrace_core::exchange::{Exchange, HeaderEdits, HeaderLookup, RequestHead};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use crate::props;
use crate::shared::{PluginShared, now_unix_ns};
use crate::sys::header_map;

/// Header pairs as the host returned them (borrowed from its bytes), looked up by name.
struct Pairs<'a>(Vec<(&'a [u8], &'a [u8])>);

impl HeaderLookup for Pairs<'_> {
    fn each_value(&mut self, name: &str, visit: &mut dyn FnMut(&[u8])) {
        for (key, value) in &self.0 {
            if key.eq_ignore_ascii_case(name.as_bytes()) {
                visit(value);
            }
        }
    }
}

impl<'a> Pairs<'a> {
    /// The pairs in `bytes` (the host's serialized map); none when it is malformed.
    fn parse(bytes: &'a [u8]) -> Self {
        Self(deserialize_pairs(bytes).unwrap_or_default())
    }

    fn first(&self, name: &str) -> Option<&'a [u8]> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| *value)
    }
}

/// One request's context.
#[derive(Debug)]
pub struct Http {
    shared: Option<Rc<PluginShared>>,
    context_id: u32,
    exchange: Option<Exchange>,
    /// `:status` from the response headers, when they came.
    status: Option<u16>,
    /// An MCP request body being copied (the core's `request_body_wanted` bytes at most), and
    /// how many bytes the core expects.
    request_body: Option<(Vec<u8>, usize)>,
}

impl Http {
    /// A context for one request; `shared` is `None` when the plugin is not configured.
    pub fn new(shared: Option<Rc<PluginShared>>, context_id: u32) -> Self {
        Self {
            shared,
            context_id,
            exchange: None,
            status: None,
            request_body: None,
        }
    }
}

/// One request header: from the header map, else the host's value for it (Kong answers
/// `:method` and `:path` only when asked by name), else a `request.*` property.
fn request_value<'a>(pairs: &Pairs<'a>, name: &str, property: &[&str]) -> Option<Cow<'a, [u8]>> {
    if let Some(value) = pairs.first(name) {
        return Some(Cow::Borrowed(value));
    }
    if let Ok(Some(value)) = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name) {
        return Some(Cow::Owned(value));
    }
    hostcalls::get_property(property.to_vec())
        .ok()
        .flatten()
        .map(Cow::Owned)
}

/// The core's header edits as header-map calls; a host that refuses one is ignored.
struct HostEdits;

impl HeaderEdits for HostEdits {
    fn set_request_header(&mut self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value_bytes(
            MapType::HttpRequestHeaders,
            name,
            Some(value.as_bytes()),
        );
    }

    fn remove_request_header(&mut self, name: &str) {
        let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
    }

    fn set_response_header(&mut self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value_bytes(
            MapType::HttpResponseHeaders,
            name,
            Some(value.as_bytes()),
        );
    }
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = &self.shared else {
            return Action::Continue;
        };
        if self.exchange.is_some() {
            return Action::Continue;
        }
        let now = now_unix_ns();
        // Probe the host kind while request properties exist (first request only).
        shared.host();
        let headers = header_map::bytes(MapType::HttpRequestHeaders);
        let mut pairs = Pairs::parse(&headers);
        let method = request_value(&pairs, ":method", &["request", "method"]);
        let path = request_value(&pairs, ":path", &["request", "path"]);
        // Free here (the map is already in guest memory), but recorded only with `recordHost`,
        // so records read the same as Traefik's, where it costs a host call.
        let authority = if shared.config.record_host {
            pairs.first(":authority").or_else(|| pairs.first("host"))
        } else {
            None
        };
        let client_addr = if shared.config.record_client_addr {
            hostcalls::get_property(vec!["source", "address"])
                .ok()
                .flatten()
        } else {
            None
        };
        let head = RequestHead {
            method: method.as_deref().unwrap_or(b""),
            path_and_query: path.as_deref().unwrap_or(b"/"),
            authority,
            client_addr: client_addr.as_deref(),
        };
        let exchange = Exchange::begin(
            &shared.config,
            &mut shared.instance.borrow_mut(),
            &head,
            &mut pairs,
            now,
            &self.context_id.to_le_bytes(),
        );
        exchange
            .upstream(&shared.config)
            .apply_to_request(&mut HostEdits);
        self.request_body = exchange
            .request_body_wanted()
            .map(|length| (Vec::with_capacity(length), length));
        self.exchange = Some(exchange);
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // Copied, never held: the chunk goes on at once (always `Continue`).
        let (Some(exchange), Some((copy, length))) = (&mut self.exchange, &mut self.request_body)
        else {
            return Action::Continue;
        };
        let room = (*length + 1).saturating_sub(copy.len()).min(body_size);
        if room > 0
            && let Ok(Some(chunk)) = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, room)
        {
            copy.extend_from_slice(&chunk);
        }
        if end_of_stream {
            exchange.request_body(copy);
            self.request_body = None;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let (Some(shared), Some(exchange)) = (&self.shared, &mut self.exchange) else {
            return Action::Continue;
        };
        let headers = header_map::bytes(MapType::HttpResponseHeaders);
        let mut pairs = Pairs::parse(&headers);
        self.status = pairs.first(":status").and_then(props::status_header);
        exchange.response_headers(&shared.config, self.status, &mut pairs);
        exchange
            .upstream(&shared.config)
            .apply_to_response(&mut HostEdits);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // Scanned as it passes (memory bounded by `mcpBodyLimit`), never paused.
        let (Some(shared), Some(exchange)) = (&self.shared, &mut self.exchange) else {
            return Action::Continue;
        };
        if !exchange.response_body_wanted() {
            return Action::Continue;
        }
        if body_size > 0
            && let Ok(Some(chunk)) =
                hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size)
        {
            exchange.response_chunk(&shared.config, &chunk);
        }
        if end_of_stream {
            exchange.response_end();
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let (Some(shared), Some(mut exchange)) = (&self.shared, self.exchange.take()) else {
            return;
        };
        // A body cut short still gives its outcome (unknown, with a reason).
        exchange.response_end();
        let status = self.status.or_else(|| {
            hostcalls::get_property(vec!["response", "code"])
                .ok()
                .flatten()
                .and_then(|raw| props::decode_status(&raw, shared.host()))
        });
        shared.enqueue(&exchange.record(&shared.config, status, now_unix_ns(), shared.host(), 0));
    }
}
