//! A minimal HTTP/1.1 client and backend over std sockets, hand-written for what needs the raw
//! socket: the client sends hostile header bytes (invalid UTF-8, 10 KiB ids) exactly as
//! written and reports each streamed chunk as it arrives; the backend decides the moment each
//! SSE event is flushed. Plain requests go through `testkit::http`, the tests' one client.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A parsed HTTP response (or request head, for the backend).
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// Status code for responses; 0 for requests.
    pub status: u16,
    /// Request method and target (backend side).
    pub method: String,
    pub target: String,
    /// Lowercase header names → raw values (in order of arrival).
    pub headers: BTreeMap<String, Vec<Vec<u8>>>,
    pub body: Vec<u8>,
}

impl Message {
    /// The first value of header `name` (lowercase), as lossy text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.first())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<(String, Message)>> {
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut msg = Message::default();
    loop {
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
            let value = line[colon + 1..].trim_ascii().to_vec();
            msg.headers.entry(name).or_default().push(value);
        }
    }
    Ok(Some((first.trim_end().to_owned(), msg)))
}

/// Reads a body framed by content-length or chunked encoding; `on_chunk` sees each piece as
/// it arrives (for streaming assertions).
fn read_body(
    reader: &mut impl BufRead,
    msg: &Message,
    mut on_chunk: impl FnMut(&[u8]),
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if msg
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {size:?}")))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            chunk.truncate(size);
            if size == 0 {
                break;
            }
            on_chunk(&chunk);
            body.extend_from_slice(&chunk);
        }
    } else if let Some(len) = msg.header("content-length") {
        let len: usize = len.parse().map_err(std::io::Error::other)?;
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
        on_chunk(&body);
    }
    Ok(body)
}

/// One keep-alive client connection.
pub struct Client {
    reader: BufReader<TcpStream>,
    port: u16,
}

impl Client {
    pub fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to traefik");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            reader: BufReader::new(stream),
            port,
        }
    }

    /// Sends one request with raw header bytes and reads the whole response.
    pub fn request(&mut self, method: &str, target: &str, headers: &[(&str, &[u8])]) -> Message {
        self.request_streaming(method, target, headers, |_| {})
    }

    /// Like [`Client::request`], calling `on_chunk` with each body piece as it arrives.
    pub fn request_streaming(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &[u8])],
        on_chunk: impl FnMut(&[u8]),
    ) -> Message {
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
            self.port
        )
        .into_bytes();
        for (name, value) in headers {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        if method == "POST" {
            head.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
        } else {
            head.extend_from_slice(b"\r\n");
        }
        self.reader
            .get_mut()
            .write_all(&head)
            .expect("send request");
        let (status_line, mut msg) = read_head(&mut self.reader)
            .expect("read response head")
            .expect("connection closed before a response");
        msg.status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        msg.body = read_body(&mut self.reader, &msg, on_chunk).expect("read response body");
        msg
    }
}

/// One-shot request on a fresh connection.
pub fn get(port: u16, target: &str, headers: &[(&str, &[u8])]) -> Message {
    Client::connect(port).request("GET", target, headers)
}

/// A loopback HTTP/1.1 backend: `/status/<code>` answers that code, `/sse` streams two events
/// 2 s apart, anything else answers 200. Every request head it receives is kept.
pub struct Backend {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Message>>>,
    stop: Arc<AtomicBool>,
}

impl Backend {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let seen = seen2.clone();
                std::thread::spawn(move || serve(stream, &seen));
            }
        });
        Self { port, seen, stop }
    }

    /// Request heads seen whose target starts with `prefix`.
    pub fn seen_with(&self, prefix: &str) -> Vec<Message> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.target.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Message>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream);
    while let Ok(Some((line, mut msg))) = read_head(&mut reader) {
        let mut parts = line.split(' ');
        msg.method = parts.next().unwrap_or("").to_owned();
        msg.target = parts.next().unwrap_or("").to_owned();
        match read_body(&mut reader, &msg, |_| {}) {
            Ok(body) => msg.body = body,
            Err(_) => return,
        }
        seen.lock().unwrap().push(msg.clone());
        let out = reader.get_mut();
        let ok = if msg.target.starts_with("/sse") {
            stream_sse(out);
            return;
        } else {
            let status: u16 = msg
                .target
                .strip_prefix("/status/")
                .and_then(|s| s.split(['?', '/']).next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(200);
            let body = format!("status {status}\n");
            let mut extra = String::new();
            if msg.target.starts_with("/mcp") {
                extra.push_str("Content-Type: application/json\r\nMcp-Session-Id: sess-1\r\n");
            }
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{extra}\r\n{body}",
                body.len()
            );
            out.write_all(response.as_bytes()).is_ok()
        };
        if !ok {
            return;
        }
    }
}

/// Sends one SSE event, waits 2 s, sends another, then ends the chunked stream. The
/// connection closes after it, and says so: otherwise Traefik may reuse the closed connection
/// for the next request and answer it 502 (a `POST` is not retried).
fn stream_sse(out: &mut TcpStream) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunk = |data: &str| format!("{:x}\r\n{data}\r\n", data.len());
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(chunk("data: one\n\n").as_bytes());
    let _ = out.flush();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        std::thread::sleep(until - Instant::now());
    }
    let _ = out.write_all(chunk("data: two\n\n").as_bytes());
    let _ = out.write_all(b"0\r\n\r\n");
    let _ = out.flush();
}
