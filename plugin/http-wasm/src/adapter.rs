//! The Traefik adapter: per instance, the config, the id generator and the spool writer; per
//! request, the host calls that feed the core's exchange and the record that goes to the spool.
//! Generic over [`Host`] so it runs natively against a fake host in tests.

use std::path::PathBuf;

use gatetrace_core::config::Config;
use gatetrace_core::exchange::{
    Exchange, HeaderLookup, REQUEST_HEADERS, RESPONSE_HEADERS, RequestHead, TracestateAction,
};
use gatetrace_core::ids::Instance;
use gatetrace_core::record::HostKind;

use crate::abi::{HeaderKind, LogLevel, nul_terminated, pack_ctx_next};
use crate::host::{Buf, Host};
use crate::spool::{Outcome, SpoolDir, SpoolWriter, claim_salt};

/// Most requests of one instance awaiting `handle_response` (Traefik runs one at a time per
/// instance; more means responses never came, and the oldest are forgotten).
const MAX_PENDING: usize = 16;

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
}

/// One plugin instance, writing through spool directory access `D`.
#[derive(Debug)]
pub struct Plugin<D: SpoolDir> {
    config: Config,
    /// The request headers this adapter or the core may ask for: `host`, the configured
    /// request id header, then the core's [`REQUEST_HEADERS`].
    request_wanted: WantedNames,
    /// The core's [`RESPONSE_HEADERS`].
    response_wanted: WantedNames,
    ids: Instance,
    spool: SpoolWriter<D>,
    pending: Vec<Pending>,
    next_ctx: u32,
    bufs: Bufs,
    /// A spool failure was logged already (log once, then only count).
    spool_warned: bool,
}

impl<D: SpoolDir> Plugin<D> {
    /// Reads and validates the config, claims the instance salt and opens the spool with
    /// `open_dir` (given the configured dir). The error names the bad key; the caller logs it
    /// and refuses to run.
    pub fn new(
        host: &mut impl Host,
        env: &Env,
        open_dir: impl FnOnce(&str) -> D,
    ) -> Result<Self, String> {
        let mut raw = Buf::with_capacity(1024);
        host.config(&mut raw);
        let config = Config::from_json(raw.bytes())
            .map_err(|e| format!("gatetrace: invalid middleware config: {e}"))?;
        let start = host.now_unix_ns();
        let dir = PathBuf::from(&config.spool.dir);
        let claimed = match claim_salt(&dir, start) {
            Ok(offset) => offset,
            Err(e) => {
                // Not fatal: the request path still works, records count as dropped.
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "gatetrace: spool dir {} not writable ({e}); records will be dropped",
                        config.spool.dir
                    ),
                );
                u64::MAX
            }
        };
        let ids = Instance::new(&[claimed, start, Instance::salt_word(env.node.as_bytes())]);
        let spool = SpoolWriter::new(open_dir(&config.spool.dir), config.spool.layout);
        let request_wanted = WantedNames::new(
            ["host", config.request_id_header.as_str()]
                .into_iter()
                .chain(REQUEST_HEADERS.iter().copied()),
        );
        Ok(Self {
            config,
            request_wanted,
            response_wanted: WantedNames::new(RESPONSE_HEADERS.iter().copied()),
            ids,
            spool,
            pending: Vec::with_capacity(2),
            next_ctx: 0,
            bufs: Bufs {
                names: Buf::with_capacity(512),
                value: Buf::with_capacity(256),
                method: Buf::with_capacity(16),
                uri: Buf::with_capacity(256),
                addr: Buf::with_capacity(64),
                authority: Buf::with_capacity(64),
                line: Vec::with_capacity(1024),
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
        host.header_names(HeaderKind::Request, &mut bufs.names);
        let mut lookup = HostHeaders::new(
            &mut *host,
            HeaderKind::Request,
            bufs.names.bytes(),
            &self.request_wanted,
            &mut bufs.value,
        );
        let authority = lookup.first("host", &mut bufs.authority);
        let head = RequestHead {
            method: bufs.method.bytes(),
            path_and_query: bufs.uri.bytes(),
            authority,
            client_addr: self.config.record_client_addr.then(|| bufs.addr.bytes()),
        };
        let exchange = Exchange::begin(&self.config, &mut self.ids, &head, &mut lookup, start, &[]);
        let up = exchange.upstream(&self.config);
        let id_header = up.request_id_header.as_bytes();
        if up.set_request_id {
            host.set_header(HeaderKind::Request, id_header, up.request_id.as_bytes());
        }
        if up.echo_request_id {
            host.set_header(HeaderKind::Response, id_header, up.request_id.as_bytes());
        }
        host.set_header(
            HeaderKind::Request,
            b"traceparent",
            up.traceparent.as_bytes(),
        );
        match up.tracestate {
            TracestateAction::Keep => {}
            TracestateAction::Set(value) => {
                host.set_header(HeaderKind::Request, b"tracestate", value.as_bytes());
            }
            TracestateAction::Remove => host.remove_header(HeaderKind::Request, b"tracestate"),
        }
        let buffered = up.buffer_response && host.enable_buffer_response();
        self.next_ctx = self.next_ctx.wrapping_add(1).max(1);
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        self.pending.push(Pending {
            ctx: self.next_ctx,
            buffered,
            exchange,
        });
        pack_ctx_next(self.next_ctx, true)
    }

    /// `handle_response`: reads the status (only when buffered) and the response headers,
    /// finishes the record and appends it to the spool.
    pub fn on_response(&mut self, host: &mut impl Host, req_ctx: u32, is_error: bool) {
        let Some(index) = self.pending.iter().position(|p| p.ctx == req_ctx) else {
            return;
        };
        let Pending {
            buffered,
            mut exchange,
            ..
        } = self.pending.swap_remove(index);
        // Never ask for the status without buffering: the host would panic.
        let status = (buffered && !is_error).then(|| host.status_code());
        let bufs = &mut self.bufs;
        host.header_names(HeaderKind::Response, &mut bufs.names);
        let mut lookup = HostHeaders::new(
            &mut *host,
            HeaderKind::Response,
            bufs.names.bytes(),
            &self.response_wanted,
            &mut bufs.value,
        );
        exchange.response_headers(&self.config, &mut lookup);
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
        if let Outcome::Failed(e) = outcome
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

/// One request between `handle_request` and `handle_response`.
#[derive(Debug)]
struct Pending {
    ctx: u32,
    /// The host agreed to buffer the response: only then may the status be read.
    buffered: bool,
    exchange: Exchange,
}

/// A header name packed into integers, so matching names needs no byte comparison: for names
/// of up to 16 bytes the first and last eight bytes cover every byte, so equal keys mean equal
/// names; longer names (a long configured request id header) also compare their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NameKey {
    len: usize,
    head: u64,
    tail: u64,
}

impl NameKey {
    fn of(name: &[u8]) -> Self {
        // One load for eight bytes; a short name folds its bytes (no memcpy call in wasm).
        let word = |bytes: &[u8]| match <[u8; 8]>::try_from(bytes) {
            Ok(eight) => u64::from_le_bytes(eight),
            Err(_) => bytes.iter().fold(0, |word, &b| (word << 8) | u64::from(b)),
        };
        Self {
            len: name.len(),
            head: word(&name[..name.len().min(8)]),
            tail: word(&name[name.len().saturating_sub(8)..]),
        }
    }

    /// Whether `self` (the key of `name`) is the key of `other` and both are the same name.
    fn matches(self, name: &[u8], other: Self, other_name: &[u8]) -> bool {
        self == other && (self.len <= 16 || name == other_name)
    }
}

/// The header names a phase may ask for (lowercase), keyed once per instance.
#[derive(Debug)]
struct WantedNames(Vec<(NameKey, String)>);

impl WantedNames {
    fn new<'n>(names: impl IntoIterator<Item = &'n str>) -> Self {
        Self(
            names
                .into_iter()
                .map(|n| (NameKey::of(n.as_bytes()), n.to_owned()))
                .collect(),
        )
    }

    fn position(&self, key: NameKey, name: &[u8]) -> Option<usize> {
        self.0
            .iter()
            .position(|(k, n)| key.matches(name, *k, n.as_bytes()))
    }
}

/// The core's header access over the host: one `get_header_names` per phase tells which
/// headers exist, so only present headers cost a `get_header_values` call. The name list is
/// matched once against the names the phase may ask for (`wanted`), so a lookup is a bit test.
struct HostHeaders<'a, H> {
    host: &'a mut H,
    kind: HeaderKind,
    names: &'a [u8],
    wanted: &'a WantedNames,
    /// Bit `i`: `wanted[i]` is among `names` (for the first 64 wanted names).
    present: u64,
    value: &'a mut Buf,
}

impl<'a, H: Host> HostHeaders<'a, H> {
    fn new(
        host: &'a mut H,
        kind: HeaderKind,
        names: &'a [u8],
        wanted: &'a WantedNames,
        value: &'a mut Buf,
    ) -> Self {
        let mut present = 0u64;
        for name in nul_terminated(names) {
            if let Some(i) = wanted.position(NameKey::of(name), name)
                && i < 64
            {
                present |= 1 << i;
            }
        }
        Self {
            host,
            kind,
            names,
            wanted,
            present,
            value,
        }
    }

    fn present(&self, name: &str) -> bool {
        let key = NameKey::of(name.as_bytes());
        match self.wanted.position(key, name.as_bytes()) {
            Some(i) if i < 64 => self.present & (1 << i) != 0,
            // A name outside the list (or past 64): scan the host's list.
            _ => {
                nul_terminated(self.names).any(|n| key.matches(name.as_bytes(), NameKey::of(n), n))
            }
        }
    }

    /// The first value of `name` copied into `out` (it must outlive this lookup).
    fn first<'b>(&mut self, name: &str, out: &'b mut Buf) -> Option<&'b [u8]> {
        if !self.present(name) {
            return None;
        }
        self.host.header_values(self.kind, name.as_bytes(), out);
        let first = nul_terminated(out.bytes()).next()?.len();
        Some(&out.bytes()[..first])
    }
}

impl<H: Host> HeaderLookup for HostHeaders<'_, H> {
    fn each_value(&mut self, name: &str, visit: &mut dyn FnMut(&[u8])) {
        if !self.present(name) {
            return;
        }
        self.host
            .header_values(self.kind, name.as_bytes(), self.value);
        for value in nul_terminated(self.value.bytes()) {
            visit(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::StdDir;
    use gatetrace_core::record::Record;
    use gatetrace_core::trace::parse_traceparent;

    /// A scripted host that logs every call, and panics where Traefik's host would panic
    /// (reading the status of an unbuffered response).
    #[derive(Default)]
    struct FakeHost {
        config: Vec<u8>,
        method: Vec<u8>,
        uri: Vec<u8>,
        request: Vec<(String, Vec<u8>)>,
        response: Vec<(String, Vec<u8>)>,
        status: u16,
        clock: u64,
        buffering: bool,
        calls: Vec<&'static str>,
        set: Vec<(HeaderKind, String, Vec<u8>)>,
        removed: Vec<String>,
        logs: Vec<String>,
    }

    impl FakeHost {
        fn new(config: &str) -> Self {
            Self {
                config: config.as_bytes().to_vec(),
                method: b"GET".to_vec(),
                uri: b"/".to_vec(),
                request: vec![("host".into(), b"gw.example".to_vec())],
                response: vec![
                    ("content-type".into(), b"application/json".to_vec()),
                    ("content-length".into(), b"2".to_vec()),
                ],
                status: 200,
                clock: 1_700_000_000_000_000_000,
                ..Self::default()
            }
        }

        fn headers(&self, kind: HeaderKind) -> &[(String, Vec<u8>)] {
            match kind {
                HeaderKind::Request => &self.request,
                HeaderKind::Response => &self.response,
            }
        }

        fn upstream(&self, name: &str) -> Option<String> {
            self.set
                .iter()
                .rev()
                .find(|(k, n, _)| *k == HeaderKind::Request && n == name)
                .map(|(_, _, v)| String::from_utf8(v.clone()).unwrap())
        }
    }

    impl Host for FakeHost {
        fn log(&mut self, _level: LogLevel, message: &str) {
            self.calls.push("log");
            self.logs.push(message.to_owned());
        }
        fn config(&mut self, out: &mut Buf) {
            self.calls.push("get_config");
            out.set(&self.config);
        }
        fn method(&mut self, out: &mut Buf) {
            self.calls.push("get_method");
            out.set(&self.method);
        }
        fn uri(&mut self, out: &mut Buf) {
            self.calls.push("get_uri");
            out.set(&self.uri);
        }
        fn source_addr(&mut self, out: &mut Buf) {
            self.calls.push("get_source_addr");
            out.set(b"127.0.0.1:5555");
        }
        fn header_names(&mut self, kind: HeaderKind, out: &mut Buf) -> u32 {
            self.calls.push("get_header_names");
            // "a\0b\0": NUL-terminated lowercase names, as the host writes them.
            let mut bytes = Vec::new();
            for (name, _) in self.headers(kind) {
                bytes.extend_from_slice(name.as_bytes());
                bytes.push(0);
            }
            out.set(&bytes);
            self.headers(kind).len() as u32
        }
        fn header_values(&mut self, kind: HeaderKind, name: &[u8], out: &mut Buf) -> u32 {
            self.calls.push("get_header_values");
            let mut bytes = Vec::new();
            let mut count = 0;
            for (n, v) in self.headers(kind) {
                if n.as_bytes().eq_ignore_ascii_case(name) {
                    bytes.extend_from_slice(v);
                    bytes.push(0);
                    count += 1;
                }
            }
            out.set(&bytes);
            count
        }
        fn set_header(&mut self, kind: HeaderKind, name: &[u8], value: &[u8]) {
            self.calls.push("set_header_value");
            let name = String::from_utf8(name.to_vec()).unwrap();
            self.set.push((kind, name, value.to_vec()));
        }
        fn remove_header(&mut self, _kind: HeaderKind, name: &[u8]) {
            self.calls.push("remove_header");
            self.removed.push(String::from_utf8(name.to_vec()).unwrap());
        }
        fn enable_buffer_response(&mut self) -> bool {
            self.calls.push("enable_features");
            self.buffering = true;
            true
        }
        fn status_code(&mut self) -> u16 {
            self.calls.push("get_status_code");
            assert!(
                self.buffering,
                "get_status_code without buffering panics Traefik"
            );
            self.status
        }
        fn now_unix_ns(&mut self) -> u64 {
            self.calls.push("clock_time_get");
            self.clock += 1_500_000;
            self.clock
        }
    }

    fn config(dir: &std::path::Path, extra: &str) -> String {
        format!(
            r#"{{"service":"svc",{extra}"spool":{{"dir":"{}"}}}}"#,
            dir.display()
        )
    }

    fn plugin(host: &mut FakeHost) -> Plugin<StdDir> {
        let env = Env {
            node: "node-a".into(),
        };
        Plugin::new(host, &env, |d| StdDir(d.into())).expect("valid config")
    }

    /// Runs one request through both phases; returns the host calls of each phase.
    fn run<D: SpoolDir>(
        plugin: &mut Plugin<D>,
        host: &mut FakeHost,
    ) -> (Vec<&'static str>, Vec<&'static str>) {
        host.calls.clear();
        host.buffering = false;
        let packed = plugin.on_request(host) as u64;
        assert_eq!(packed as u32, 1, "always continues to next");
        let request_calls = std::mem::take(&mut host.calls);
        plugin.on_response(host, (packed >> 32) as u32, false);
        (request_calls, std::mem::take(&mut host.calls))
    }

    fn records(dir: &std::path::Path) -> Vec<Record> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("seg-")
            {
                for line in std::fs::read_to_string(path).unwrap().lines() {
                    out.push(Record::from_ndjson_line(line.as_bytes()).unwrap());
                }
            }
        }
        out
    }

    #[test]
    fn a_bad_config_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        for (extra, key) in [
            (r#""bogusKey":1,"#, "bogusKey"),
            (r#""echoRequestId":"perhaps","#, "echoRequestId"),
        ] {
            let mut host = FakeHost::new(&config(dir.path(), extra));
            let env = Env {
                node: String::new(),
            };
            let err = Plugin::new(&mut host, &env, |d| StdDir(d.into())).unwrap_err();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn a_plain_request_costs_these_host_calls_and_gives_one_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = FakeHost::new(&config(dir.path(), ""));
        let mut plugin = plugin(&mut host);
        host.uri = b"/users/12345?token=SECRET".to_vec();
        let (request_calls, response_calls) = run(&mut plugin, &mut host);
        // The host-call budget of a plain buffered request (no incoming id or trace). The
        // spool append adds one fd_write on WASI (and, on the first record of a window,
        // fd_close of the old segment, path_filestat_get for the full probe and path_open).
        assert_eq!(
            request_calls,
            [
                "clock_time_get",
                "get_method",
                "get_uri",
                "get_header_names",
                "get_header_values", // host
                "set_header_value",  // x-request-id
                "set_header_value",  // traceparent
                "enable_features",
            ]
        );
        assert_eq!(
            response_calls,
            [
                "get_status_code",
                "get_header_names",
                "get_header_values", // content-type
                "get_header_values", // content-length
                "clock_time_get",
            ]
        );
        let id = host.upstream("x-request-id").unwrap();
        assert_eq!(id.len(), 32);
        let tp = parse_traceparent(host.upstream("traceparent").unwrap().as_bytes()).unwrap();
        let recs = records(dir.path());
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        assert_eq!(r.request_id, id);
        assert_eq!(r.trace_id, tp.trace_id.to_hex());
        assert_eq!(r.span_id, tp.parent_id.to_hex());
        assert_eq!(r.status, Some(200));
        assert_eq!(r.duration_ns, 1_500_000);
        assert_eq!(r.endpoint, "/users/{id}");
        assert_eq!(r.service, "svc");
        assert_eq!(r.host_kind, HostKind::Traefik);
        let line = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(line, 2, "one segment + the claim file");
    }

    #[test]
    fn records_go_through_one_open_segment_per_window() {
        use crate::spool::fake::FakeDir;
        use gatetrace_core::spool::{SpoolLayout, segment_name};

        let dir = tempfile::tempdir().unwrap();
        let mut host = FakeHost::new(&config(dir.path(), ""));
        let env = Env {
            node: "node-a".into(),
        };
        let mut plugin = Plugin::new(&mut host, &env, |_| FakeDir::default()).unwrap();
        let layout = SpoolLayout::default();
        let sec = 1_000_000_000;
        // Start 10 ms before a window ends: the third request's record ends in the next one.
        host.clock = (layout.window_start(host.clock) + layout.window_secs) * sec - 10_000_000;
        let mut ends = Vec::new();
        for gap in [0, 0, 8_000_000, 0, 0, 40 * sec] {
            host.clock += gap;
            run(&mut plugin, &mut host);
            ends.push(host.clock);
        }
        let dir = &plugin.spool.dir().ops;
        let w: Vec<String> = ends
            .iter()
            .map(|&t| segment_name(layout.window_start(t)))
            .collect();
        let probe = |t: u64| {
            let window = layout.window_start(t);
            format!(
                "exists {}",
                segment_name(layout.full_probe(window).unwrap())
            )
        };
        assert_eq!(
            *dir,
            [
                probe(ends[0]),
                format!("open {}", w[0]),
                format!("write {}", w[0]),
                format!("write {}", w[1]),
                // New window: close the old handle first, probe once, open the new segment.
                format!("close {}", w[1]),
                probe(ends[2]),
                format!("open {}", w[2]),
                format!("write {}", w[2]),
                format!("write {}", w[3]),
                format!("write {}", w[4]),
                // An idle instance wakes up windows later: same again.
                format!("close {}", w[4]),
                probe(ends[5]),
                format!("open {}", w[5]),
                format!("write {}", w[5]),
            ]
        );
        assert_eq!(
            (w[0] == w[1], w[1] == w[2], w[4] == w[5]),
            (true, false, false)
        );
        // Every record went to the segment of the clock reading that ended it.
        for (segment, line) in &plugin.spool.dir().lines {
            let r = Record::from_ndjson_line(line).unwrap();
            let end = r.start_unix_ns + r.duration_ns;
            assert_eq!(*segment, segment_name(layout.window_start(end)));
        }
        assert_eq!(plugin.spool.dir().lines.len(), 6);
    }

    #[test]
    fn name_keys_tell_names_apart_without_comparing_bytes_up_to_16_and_with_beyond() {
        let key = |n: &str| NameKey::of(n.as_bytes());
        let same = |a: &str, b: &str| key(a).matches(a.as_bytes(), key(b), b.as_bytes());
        // Same length, same first eight bytes: the tail word differs.
        assert!(!same("x-forwarded-host", "x-forwarded-port"));
        // Same length, same last eight bytes: the head word differs.
        assert!(!same("content-length", "xontent-length"));
        assert!(same("traceparent", "traceparent"));
        assert!(!same("", "a"));
        assert!(same("", ""));
        // Over 16 bytes the middle is not in the key: the bytes decide.
        let (a, b) = ("x-aaaaaaaa-1-bbbbbbbb", "x-aaaaaaaa-2-bbbbbbbb");
        assert_eq!(key(a), key(b));
        assert!(!same(a, b));
        assert!(same(a, a));
    }

    #[test]
    fn header_presence_is_one_pass_and_names_outside_the_list_still_resolve() {
        let mut host = FakeHost::new("{}");
        host.request = vec![
            ("accept".into(), b"*/*".to_vec()),
            ("x-other".into(), b"1".to_vec()),
            ("accept".into(), b"text/html".to_vec()),
        ];
        let mut value = Buf::default();
        let wanted = WantedNames::new(["host", "accept", "upgrade"]);
        let names = b"accept\0x-other\0";
        let mut lookup =
            HostHeaders::new(&mut host, HeaderKind::Request, names, &wanted, &mut value);
        assert_eq!(lookup.present, 0b010);
        let mut seen = Vec::new();
        for name in ["host", "accept", "upgrade", "x-other", "x-absent"] {
            lookup.each_value(name, &mut |v| seen.push((name, v.to_vec())));
        }
        assert_eq!(
            seen,
            [
                ("accept", b"*/*".to_vec()),
                ("accept", b"text/html".to_vec()),
                ("x-other", b"1".to_vec()),
            ]
        );
        // Only present headers cost a values call.
        assert_eq!(host.calls, ["get_header_values", "get_header_values"]);
    }

    #[test]
    fn streams_are_never_buffered_and_never_asked_for_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = FakeHost::new(&config(dir.path(), ""));
        let mut plugin = plugin(&mut host);
        for (name, value) in [
            ("accept", &b"application/json, text/event-stream"[..]),
            ("upgrade", b"websocket"),
            ("content-type", b"application/grpc"),
        ] {
            host.request = vec![(name.into(), value.to_vec())];
            host.response = vec![("content-type".into(), b"text/event-stream".to_vec())];
            let (request_calls, response_calls) = run(&mut plugin, &mut host);
            assert!(!request_calls.contains(&"enable_features"), "{name}");
            assert!(!response_calls.contains(&"get_status_code"), "{name}");
        }
        let recs = records(dir.path());
        assert_eq!(recs.len(), 3);
        assert!(recs.iter().all(|r| r.streamed && r.status.is_none()));
    }

    #[test]
    fn buffer_modes_always_and_never() {
        let dir = tempfile::tempdir().unwrap();
        for (mode, expect) in [("always", true), ("never", false)] {
            let mut host = FakeHost::new(&config(
                dir.path(),
                &format!(r#""bufferResponses":"{mode}","#),
            ));
            let mut plugin = plugin(&mut host);
            host.request = vec![("accept".into(), b"text/event-stream".to_vec())];
            let (request_calls, response_calls) = run(&mut plugin, &mut host);
            assert_eq!(request_calls.contains(&"enable_features"), expect, "{mode}");
            assert_eq!(
                response_calls.contains(&"get_status_code"),
                expect,
                "{mode}"
            );
        }
    }

    #[test]
    fn incoming_context_is_continued_and_hostile_ids_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = FakeHost::new(&config(dir.path(), r#""echoRequestId":true,"#));
        let mut plugin = plugin(&mut host);
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        host.request = vec![
            ("x-request-id".into(), b"abc-123".to_vec()),
            ("traceparent".into(), incoming.as_bytes().to_vec()),
        ];
        run(&mut plugin, &mut host);
        // A kept id is not rewritten upstream, but is echoed.
        assert_eq!(host.upstream("x-request-id"), None);
        assert!(
            host.set.iter().any(|(k, n, v)| *k == HeaderKind::Response
                && n == "x-request-id"
                && v == b"abc-123")
        );
        let out = parse_traceparent(host.upstream("traceparent").unwrap().as_bytes()).unwrap();
        assert_eq!(out.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(out.parent_id.to_hex(), "00f067aa0ba902b7");

        host.set.clear();
        host.request = vec![("x-request-id".into(), b"{\"x\":\"\xff\"}".to_vec())];
        run(&mut plugin, &mut host);
        let replaced = host.upstream("x-request-id").unwrap();
        assert_eq!(replaced.len(), 32);
        let recs = records(dir.path());
        assert_eq!(recs[1].request_id, replaced);
        assert_eq!(recs[0].parent_span_id.as_deref(), Some("00f067aa0ba902b7"));

        // An invalid traceparent starts a new trace, and its tracestate is removed upstream.
        host.request = vec![
            ("traceparent".into(), b"00-zz-bad".to_vec()),
            ("tracestate".into(), b"vendor=abc".to_vec()),
        ];
        run(&mut plugin, &mut host);
        assert_eq!(host.removed, ["tracestate"]);
        let started = parse_traceparent(host.upstream("traceparent").unwrap().as_bytes()).unwrap();
        assert_ne!(
            started.trace_id.to_hex(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn an_error_or_unknown_context_never_reads_the_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = FakeHost::new(&config(dir.path(), ""));
        let mut plugin = plugin(&mut host);
        // A response for a request this instance never saw: ignored.
        plugin.on_response(&mut host, 999, false);
        assert!(records(dir.path()).is_empty());
        // The next handler failed: the record has no status.
        host.buffering = false;
        let packed = plugin.on_request(&mut host) as u64;
        host.calls.clear();
        plugin.on_response(&mut host, (packed >> 32) as u32, true);
        assert!(!host.calls.contains(&"get_status_code"));
        assert_eq!(records(dir.path())[0].status, None);
    }

    #[test]
    fn pending_requests_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = FakeHost::new(&config(dir.path(), ""));
        let mut plugin = plugin(&mut host);
        for _ in 0..(MAX_PENDING * 3) {
            plugin.on_request(&mut host);
        }
        assert_eq!(plugin.pending.len(), MAX_PENDING);
    }

    #[test]
    fn a_missing_spool_dir_logs_once_counts_and_reports_later() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("not-yet");
        let mut host = FakeHost::new(&config(&spool, ""));
        let mut plugin = plugin(&mut host);
        assert_eq!(host.logs.len(), 1, "claim failure logged: {:?}", host.logs);
        for _ in 0..3 {
            run(&mut plugin, &mut host);
        }
        assert_eq!(
            host.logs.len(),
            2,
            "one write failure logged: {:?}",
            host.logs
        );
        std::fs::create_dir(&spool).unwrap();
        run(&mut plugin, &mut host);
        run(&mut plugin, &mut host);
        let recs = records(&spool);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].dropped, 3, "the drops are reported once");
        assert_eq!(recs[1].dropped, 0);
    }
}
