//! Real-network mode: a `proxy_http_call` to a cluster mapped to a loopback address becomes a
//! plain HTTP/1.1 request (std sockets, `Connection: close`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::headers::Headers;

/// A response read off the wire.
#[derive(Debug, Clone)]
pub(crate) struct WireResponse {
    pub(crate) status: u16,
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
}

/// Sends the call (pseudo-headers `:method`, `:path`, `:authority`) to `addr` and reads the
/// whole answer; errors name what failed.
pub(crate) fn send(
    addr: SocketAddr,
    headers: &Headers,
    body: &[u8],
    timeout: Duration,
) -> Result<WireResponse, String> {
    let method = headers.get(":method").unwrap_or("GET");
    let path = headers.get(":path").unwrap_or("/");
    let authority = headers
        .get(":authority")
        .map_or_else(|| addr.to_string(), str::to_owned);
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {authority}\r\n");
    for (k, v) in headers.pairs() {
        if !k.starts_with(':')
            && !k.eq_ignore_ascii_case("content-length")
            && !k.eq_ignore_ascii_case("host")
        {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    request.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    parse(&raw).ok_or_else(|| format!("malformed HTTP response from {addr}"))
}

fn parse(raw: &[u8]) -> Option<WireResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Headers::default();
    for line in lines {
        let (k, v) = line.split_once(':')?;
        headers.add(&k.trim().to_ascii_lowercase(), v.trim());
    }
    let rest = &raw[split + 4..];
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(WireResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = parse(b"HTTP/1.1 202 Accepted\r\nContent-Type: text/plain\r\n\r\nok").unwrap();
        assert_eq!((plain.status, plain.body.as_slice()), (202, &b"ok"[..]));
        assert_eq!(plain.headers.get("content-type"), Some("text/plain"));
        let chunked =
            parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(chunked.body, b"abcde");
        assert!(parse(b"garbage").is_none());
    }
}
