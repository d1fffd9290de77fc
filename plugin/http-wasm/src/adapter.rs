//! The Traefik adapter: per instance, the config, the id generator and the spool appender; per
//! request, the host calls that feed the core's exchange and the record that goes to the spool.
//! Generic over [`Host`] and [`SpoolDir`] so it runs natively against fakes in tests.

use std::path::PathBuf;

use gatetrace_abi::http_wasm::{BodyKind, HeaderKind, LogLevel, pack_ctx_next};
use gatetrace_core::config::Config;
use gatetrace_core::exchange::{
    Exchange, HeaderEdits, REQUEST_HEADERS, RESPONSE_HEADERS, RequestHead,
};
use gatetrace_core::ids::Instance;
use gatetrace_core::record::HostKind;

use crate::drops::DropLedger;
use crate::headers::{HostHeaders, WantedNames};
use crate::host::{Buf, Host};
use crate::spool::{AppendOutcome, NO_SPOOL, SpoolAppender, SpoolDir, claim_salt};

/// The request header whose value is the record's `host` (`recordHost`).
const HOST_HEADER: &str = "host";

/// Most requests of one instance awaiting `handle_response` (Traefik runs one at a time per
/// instance; more means responses never came, and the oldest are forgotten).
const MAX_IN_FLIGHT: usize = 16;

/// Most `read_body` calls in a row that return no bytes and no EOF before reading stops (the
/// host fills the buffer or reaches EOF; this only bounds a host that never does). Reads that
/// return bytes always continue: stopping early would lose the rest of the body upstream.
const MAX_EMPTY_READS: usize = 8;

/// What the instance learns from its environment at start.
#[derive(Debug, Clone)]
pub struct Env {
    /// The node's name (`GATETRACE_NODE` or `HOSTNAME`, passed by Traefik's `settings.envs`).
    pub node: String,
}

impl Env {
    /// Reads the environment Traefik passes through.
    #[must_use]
    pub fn from_process() -> Self {
        let node = std::env::var("GATETRACE_NODE")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_default();
        Self { node }
    }
}

/// Buffers reused by every request of the instance.
#[derive(Debug)]
struct Bufs {
    names: Buf,
    value: Buf,
    method: Buf,
    uri: Buf,
    addr: Buf,
    authority: Buf,
    line: Vec<u8>,
    /// An MCP request or buffered response body (at most `mcpBodyLimit` + 1 bytes).
    body: Vec<u8>,
}

/// One plugin instance, writing through spool directory access `D`.
#[derive(Debug)]
pub struct Plugin<D: SpoolDir> {
    config: Config,
    /// The request headers this adapter or the core may ask for: the configured request id
    /// header, `host` with `recordHost`, then the core's [`REQUEST_HEADERS`].
    request_wanted: WantedNames,
    /// The core's [`RESPONSE_HEADERS`].
    response_wanted: WantedNames,
    ids: Instance,
    spool: SpoolAppender<D>,
    in_flight: Vec<InFlightRequest>,
    next_ctx: u32,
    bufs: Bufs,
    /// A spool write failure was logged already (log once, then only count).
    spool_warned: bool,
}

impl<D: SpoolDir> Plugin<D> {
    /// Reads and validates the config, opens the spool with `open_dir` (given the configured
    /// dir; `None` when no spool is mounted) and claims the instance salt there. The error
    /// names the bad key; the caller logs it and refuses to run. Without a spool the plugin
    /// still runs: it logs that once and counts every record as dropped ([`NO_SPOOL`]).
    pub fn new(
        host: &mut impl Host,
        env: &Env,
        open_dir: impl FnOnce(&str) -> Option<D>,
    ) -> Result<Self, String> {
        let mut raw = Buf::with_capacity(1024);
        host.config(&mut raw);
        let config = Config::from_json(raw.bytes())
            .map_err(|e| format!("gatetrace: invalid middleware config: {e}"))?;
        let start = host.now_unix_ns();
        let dir = open_dir(&config.spool.dir);
        let claimed = if dir.is_none() {
            host.log(
                LogLevel::Warn,
                &format!(
                    "gatetrace: no spool mounted for {} (settings.mounts); records are dropped and counted, reason {NO_SPOOL}",
                    config.spool.dir
                ),
            );
            None
        } else {
            match claim_salt(&PathBuf::from(&config.spool.dir), start) {
                Ok(claim) => Some(claim),
                Err(e) => {
                    // Not fatal: the request path still works, records count as dropped.
                    host.log(
                        LogLevel::Warn,
                        &format!(
                            "gatetrace: spool dir {} not writable ({e}); records will be dropped",
                            config.spool.dir
                        ),
                    );
                    None
                }
            }
        };
        let (generation, offset) =
            claimed.map_or((u64::MAX, u64::MAX), |c| (c.generation, c.offset));
        let ids = Instance::new(&[
            generation,
            offset,
            start,
            Instance::salt_word(env.node.as_bytes()),
        ]);
        let ledger = dir
            .is_some()
            .then(|| DropLedger::new(PathBuf::from(&config.spool.dir), config.spool.layout, start));
        let mut spool = SpoolAppender::new(dir, config.spool.layout);
        if let Some(ledger) = ledger {
            spool = spool.with_ledger(ledger);
        }
        let request_wanted = WantedNames::new(
            [config.request_id_header.as_str()]
                .into_iter()
                .chain(config.record_host.then_some(HOST_HEADER))
                .chain(REQUEST_HEADERS.iter().copied()),
        );
        Ok(Self {
            config,
            request_wanted,
            response_wanted: WantedNames::new(RESPONSE_HEADERS.iter().copied()),
            ids,
            spool,
            in_flight: Vec::with_capacity(2),
            next_ctx: 0,
            bufs: Bufs {
                names: Buf::with_capacity(512),
                value: Buf::with_capacity(256),
                method: Buf::with_capacity(16),
                uri: Buf::with_capacity(256),
                addr: Buf::with_capacity(64),
                authority: Buf::with_capacity(64),
                line: Vec::with_capacity(1024),
                body: Vec::new(),
            },
            spool_warned: false,
        })
    }

    /// `handle_request`: sets ids and trace context upstream (and the id on the response when
    /// configured), asks for buffering when the request cannot stream, keeps the exchange.
    pub fn on_request(&mut self, host: &mut impl Host) -> i64 {
        let start = host.now_unix_ns();
        let bufs = &mut self.bufs;
        host.method(&mut bufs.method);
        host.uri(&mut bufs.uri);
        if self.config.record_client_addr {
            host.source_addr(&mut bufs.addr);
        }
        let mut lookup = HostHeaders::new(
            &mut *host,
            HeaderKind::Request,
            &mut bufs.names,
            &self.request_wanted,
            &mut bufs.value,
        );
        let authority = if self.config.record_host {
            lookup.first(HOST_HEADER, &mut bufs.authority)
        } else {
            None
        };
        let head = RequestHead {
            method: bufs.method.bytes(),
            path_and_query: bufs.uri.bytes(),
            authority,
            client_addr: self.config.record_client_addr.then(|| bufs.addr.bytes()),
        };
        let mut exchange =
            Exchange::begin(&self.config, &mut self.ids, &head, &mut lookup, start, &[]);
        if let Some(length) = exchange.request_body_wanted() {
            // Never `buffer_request`: http-wasm-host-go v0.7.0 keeps only the bytes returned
            // with EOF. Read to the end and write the identical bytes back, once.
            let body = read_to_end(host, BodyKind::Request, &mut bufs.body, length);
            if !body.is_empty() {
                host.write_body(BodyKind::Request, body);
            }
            exchange.request_body(body);
        }
        let upstream = exchange.upstream(&self.config);
        // Both sides now: after `next` the response headers are already on their way.
        upstream.apply_to_request(&mut HostEdits(&mut *host));
        upstream.apply_to_response(&mut HostEdits(&mut *host));
        let buffered = upstream.buffer_response && host.enable_buffer_response();
        self.next_ctx = self.next_ctx.wrapping_add(1).max(1);
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.in_flight.remove(0);
        }
        self.in_flight.push(InFlightRequest {
            ctx: self.next_ctx,
            buffered,
            exchange,
        });
        pack_ctx_next(self.next_ctx, true)
    }

    /// `handle_response`: reads the status (only when buffered) and the response headers the
    /// core asks for, finishes the record and appends it to the spool.
    pub fn on_response(&mut self, host: &mut impl Host, req_ctx: u32, is_error: bool) {
        let Some(index) = self.in_flight.iter().position(|p| p.ctx == req_ctx) else {
            return;
        };
        let InFlightRequest {
            buffered,
            mut exchange,
            ..
        } = self.in_flight.swap_remove(index);
        // Never ask for the status without buffering: the host would panic.
        let status = (buffered && !is_error).then(|| host.status_code());
        if is_error {
            exchange.set_host_error();
        }
        let bufs = &mut self.bufs;
        // Names are fetched only if the core asks for a header: a plain request answered with
        // an observed status asks for none.
        let mut lookup = HostHeaders::new(
            &mut *host,
            HeaderKind::Response,
            &mut bufs.names,
            &self.response_wanted,
            &mut bufs.value,
        );
        exchange.response_headers(&self.config, status, &mut lookup);
        if buffered && !is_error && exchange.response_body_wanted() {
            // Read (bounded), never written: the client gets the body as the server sent it.
            let limit = self.config.mcp_body_limit;
            let body = read_to_end(host, BodyKind::Response, &mut bufs.body, limit);
            exchange.response_body(&self.config, body);
        }
        // The one clock read of this phase: the end of the request, and the moment that picks
        // the spool window, with no host call between it and the write.
        let end = host.now_unix_ns();
        let config = &self.config;
        let line = &mut bufs.line;
        let outcome = self.spool.append(end, |dropped| {
            line.clear();
            exchange
                .record(config, status, end, HostKind::Traefik, dropped)
                .write_ndjson_line(line);
            line
        });
        if let AppendOutcome::Failed(e) = outcome
            && !self.spool_warned
        {
            self.spool_warned = true;
            host.log(
                LogLevel::Warn,
                &format!("gatetrace: spool write failed ({e}); counting dropped records"),
            );
        }
    }
}

/// Reads body `kind` until EOF into `buf`, sized `expected + 1` so a body longer than expected
/// shows as such (the host fills the buffer or reaches EOF); returns the bytes read.
fn read_to_end<'b>(
    host: &mut impl Host,
    kind: BodyKind,
    buf: &'b mut Vec<u8>,
    expected: usize,
) -> &'b [u8] {
    buf.clear();
    buf.resize(expected + 1, 0);
    let mut filled = 0;
    let mut empty_reads = 0;
    while empty_reads < MAX_EMPTY_READS {
        if filled == buf.len() {
            // Longer than its `Content-Length` said (Go's server refuses that, a host need
            // not): read on to the end anyway, since what is written back replaces it all.
            buf.resize(buf.len() * 2, 0);
        }
        let (eof, n) = host.read_body(kind, &mut buf[filled..]);
        filled += n;
        if eof {
            break;
        }
        empty_reads = if n == 0 { empty_reads + 1 } else { 0 };
    }
    &buf[..filled]
}

/// One request between `handle_request` and `handle_response`.
#[derive(Debug)]
struct InFlightRequest {
    ctx: u32,
    /// The host agreed to buffer the response: only then may the status be read.
    buffered: bool,
    exchange: Exchange,
}

/// The core's header edits as `set_header_value` / `remove_header` calls.
struct HostEdits<'a, H>(&'a mut H);

impl<H: Host> HeaderEdits for HostEdits<'_, H> {
    fn set_request_header(&mut self, name: &str, value: &str) {
        self.0
            .set_header(HeaderKind::Request, name.as_bytes(), value.as_bytes());
    }

    fn remove_request_header(&mut self, name: &str) {
        self.0.remove_header(HeaderKind::Request, name.as_bytes());
    }

    fn set_response_header(&mut self, name: &str, value: &str) {
        self.0
            .set_header(HeaderKind::Response, name.as_bytes(), value.as_bytes());
    }
}

#[cfg(test)]
mod mcp_tests;
#[cfg(test)]
mod tests;
