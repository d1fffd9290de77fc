//! Raw HTTP/1.1 over loopback sockets, so the test controls how a request body is written (one
//! write, or two writes 50 ms apart) and sees when the first SSE event arrives; JSON-RPC
//! bodies sized to the byte; the MCP servers' logs of the bodies they received.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What every MCP client sends as `Accept` on a POST.
pub const MCP_ACCEPT: &str = "application/json, text/event-stream";
/// The protocol version the old-protocol (mcp 1.x) client speaks.
pub const OLD_PROTOCOL: &str = "2025-11-25";
/// The protocol version with header routing (SEP-2243).
pub const NEW_PROTOCOL: &str = "2026-07-28";
/// Pause between the two writes of a split body.
pub const SPLIT_PAUSE: Duration = Duration::from_millis(50);

/// One answer, read to the end of the connection.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the first `data:` line arrived, from the start of sending.
    pub first_event: Option<Duration>,
    pub total: Duration,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The last `data:` event's JSON (an SSE answer) or the body's JSON.
    pub fn json(&self) -> Value {
        let text = String::from_utf8_lossy(&self.body);
        let data = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("data:"))
            .unwrap_or(&text);
        serde_json::from_str(data.trim())
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"))
    }
}

/// How the body goes onto the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Head and body in one write.
    One,
    /// Head plus the body's first half, [`SPLIT_PAUSE`], then the rest.
    Two,
}

/// Sends `method /path` with `headers` and `body` (`Content-Length` and `Connection: close`
/// added) and reads the answer to the end of the connection.
pub fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    writes: Writes,
) -> Answer {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to traefik");
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let start = Instant::now();
    let mut first = head.into_bytes();
    match writes {
        Writes::One => {
            first.extend_from_slice(body);
            stream.write_all(&first).unwrap();
        }
        Writes::Two => {
            let half = body.len() / 2;
            first.extend_from_slice(&body[..half]);
            stream.write_all(&first).unwrap();
            std::thread::sleep(SPLIT_PAUSE);
            stream.write_all(&body[half..]).unwrap();
        }
    }
    let mut raw = Vec::new();
    let mut first_event = None;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("reading the answer to {method} {path}: {e}"));
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if first_event.is_none() && raw.windows(5).any(|w| w == b"data:") {
            first_event = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    parse_answer(&raw, first_event, total)
}

fn parse_answer(raw: &[u8], first_event: Option<Duration>, total: Duration) -> Answer {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Answer {
        status,
        headers,
        body,
        first_event,
        total,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or_else(|| panic!("bad chunk size in {:?}", String::from_utf8_lossy(rest)));
        if size == 0 {
            break;
        }
        let start = eol + 2;
        body.extend_from_slice(&rest[start..start + size]);
        rest = &rest[(start + size + 2).min(rest.len())..];
    }
    body
}

/// A JSON-RPC request body.
pub fn rpc(id: u64, method: &str, params: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
        .unwrap()
}

/// A `tools/call` of `echo` carrying `secret`, padded to exactly `size` bytes.
pub fn sized_echo_call(id: u64, size: usize, secret: &str) -> Vec<u8> {
    let body = |pad: usize| {
        rpc(
            id,
            "tools/call",
            &json!({"name": "echo", "arguments": {"text": "x".repeat(pad), "secret": secret}}),
        )
    };
    let bare = body(0).len();
    assert!(size >= bare, "{size} bytes cannot hold a call of {bare}");
    let sized = body(size - bare);
    assert_eq!(sized.len(), size);
    sized
}

/// One request as an MCP server received it (its body log, `tests/e2e/mcp/body_log.py`).
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: serde_json::Map<String, Value>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }

    /// The JSON-RPC body, when the body is one.
    pub fn rpc(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Every request an MCP server logged so far.
pub fn received(log: &Path) -> Vec<Received> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let hex = v["body_hex"].as_str().unwrap();
            Received {
                method: v["method"].as_str().unwrap().to_owned(),
                path: v["path"].as_str().unwrap().to_owned(),
                headers: v["headers"].as_object().unwrap().clone(),
                body: (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect(),
            }
        })
        .collect()
}
