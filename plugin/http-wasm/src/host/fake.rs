//! A scripted [`Host`] that logs every call and panics where Traefik's host would panic
//! (reading the status of an unbuffered response), for the adapter's and headers' tests.

use gatetrace_abi::http_wasm::{BodyKind, HeaderKind, LogLevel};

use super::{Buf, Host};

/// Header fields of one map: `(lowercase name, value)`.
pub(crate) type Fields = Vec<(String, Vec<u8>)>;

#[derive(Debug, Default)]
pub(crate) struct FakeHost {
    pub(crate) config: Vec<u8>,
    pub(crate) method: Vec<u8>,
    pub(crate) uri: Vec<u8>,
    pub(crate) request: Fields,
    pub(crate) response: Fields,
    pub(crate) status: u16,
    pub(crate) clock: u64,
    pub(crate) buffering: bool,
    /// Every call, by import name.
    pub(crate) calls: Vec<&'static str>,
    /// Every `set_header_value`: `(kind, name, value)`.
    pub(crate) set: Vec<(HeaderKind, String, Vec<u8>)>,
    /// Every `remove_header`'s name.
    pub(crate) removed: Vec<String>,
    pub(crate) logs: Vec<String>,
    /// The request body still to read, and the most bytes one read returns.
    pub(crate) request_body: Vec<u8>,
    pub(crate) read_chunk: usize,
    /// What the plugin wrote as the request body (each `write_body(request)` call).
    pub(crate) written: Vec<Vec<u8>>,
    /// The buffered response body, and how far it was read.
    pub(crate) response_body: Vec<u8>,
    pub(crate) response_read: usize,
}

impl FakeHost {
    /// A GET of `/` with a `host` header, answered 200 with JSON, under `config`.
    pub(crate) fn new(config: &str) -> Self {
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
            HeaderKind::RequestTrailers | HeaderKind::ResponseTrailers => &[],
        }
    }

    /// The last value set on request header `name`.
    pub(crate) fn upstream(&self, name: &str) -> Option<String> {
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
    fn read_body(&mut self, kind: BodyKind, dst: &mut [u8]) -> (bool, usize) {
        self.calls.push("read_body");
        assert!(
            !dst.is_empty(),
            "read_body with buf_limit 0 panics the host"
        );
        match kind {
            BodyKind::Request => {
                let n = dst
                    .len()
                    .min(self.request_body.len())
                    .min(self.read_chunk.max(1));
                dst[..n].copy_from_slice(&self.request_body[..n]);
                self.request_body.drain(..n);
                (self.request_body.is_empty(), n)
            }
            BodyKind::Response => {
                assert!(self.buffering, "read_body(response) without buffering");
                let rest = &self.response_body[self.response_read..];
                let n = dst.len().min(rest.len());
                dst[..n].copy_from_slice(&rest[..n]);
                self.response_read += n;
                (self.response_read == self.response_body.len(), n)
            }
        }
    }
    fn write_body(&mut self, kind: BodyKind, body: &[u8]) {
        self.calls.push("write_body");
        assert_eq!(
            kind,
            BodyKind::Request,
            "the response body is never changed"
        );
        self.written.push(body.to_vec());
    }
    fn now_unix_ns(&mut self) -> u64 {
        self.calls.push("clock_time_get");
        self.clock += 1_500_000;
        self.clock
    }
}
