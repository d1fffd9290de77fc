//! Real-network mode: a `proxy_http_call` to a cluster mapped to a loopback address becomes a
//! real HTTP/1.1 request, sent with `ureq` (no TLS; the answer's status, headers and whole
//! body come back to the guest).

use std::net::SocketAddr;
use std::time::Duration;

use crate::headers::Headers;

/// A response read off the wire.
#[derive(Debug, Clone)]
pub(super) struct WireResponse {
    pub(super) status: u16,
    pub(super) headers: Headers,
    pub(super) body: Vec<u8>,
}

/// Sends the call (pseudo-headers `:method`, `:path`, `:authority`) to `addr` and reads the
/// whole answer, whatever its status; errors name what failed.
pub(super) fn send(
    addr: SocketAddr,
    headers: &Headers,
    body: &[u8],
    timeout: Duration,
) -> Result<WireResponse, String> {
    let method = headers.get(":method").unwrap_or("GET");
    let path = headers.get(":path").unwrap_or("/");
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(authority) = headers.get(":authority") {
        request = request.header("host", authority);
    }
    // One request per connection, as the hosts' own call clients do here: the peer (a
    // collector, or a test's fault proxy reading to end of file) sees the exchange end.
    request = request.header("connection", "close");
    for (k, v) in headers.pairs() {
        if !k.starts_with(':')
            && !k.eq_ignore_ascii_case("content-length")
            && !k.eq_ignore_ascii_case("host")
            && !k.eq_ignore_ascii_case("connection")
        {
            request = request.header(k.as_str(), v.as_str());
        }
    }
    let request = request
        .body(body)
        .map_err(|e| format!("call to {addr}: {e}"))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .run(request)
        .map_err(|e| format!("call to {addr}: {e}"))?;
    let mut wire_headers = Headers::default();
    for (name, value) in response.headers() {
        wire_headers.add(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
    }
    let body = response
        .body_mut()
        .read_to_vec()
        .map_err(|e| format!("read from {addr}: {e}"))?;
    Ok(WireResponse {
        status: response.status().as_u16(),
        headers: wire_headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Serves one connection on loopback with `answer`, returning the request it read.
    fn serve_once(answer: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            // Headers, then the 5-byte body the test sends.
            while !request.ends_with(b"\r\n\r\nbatch") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "client closed early");
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(answer).unwrap();
            String::from_utf8(request).unwrap()
        });
        (addr, server)
    }

    #[test]
    fn a_call_goes_out_as_http_and_a_chunked_answer_comes_back_whole() {
        let (addr, server) = serve_once(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        let headers = Headers::from_pairs([
            (":method", "POST"),
            (":path", "/v1/records?x=1"),
            (":authority", "collector"),
            ("x-gatetrace-seq", "7"),
        ]);
        let response = send(addr, &headers, b"batch", Duration::from_secs(5)).unwrap();
        assert_eq!(response.status, 503, "a status is an answer, not an error");
        assert_eq!(response.body, b"abcde");
        assert_eq!(response.headers.get("content-type"), Some("text/plain"));
        let request = server.join().unwrap().to_ascii_lowercase();
        assert!(
            request.starts_with("post /v1/records?x=1 http/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("\r\nhost: collector\r\n"), "{request}");
        assert!(request.contains("\r\nx-gatetrace-seq: 7\r\n"), "{request}");
        assert!(request.contains("\r\ncontent-length: 5\r\n"), "{request}");
        assert!(request.contains("\r\nconnection: close\r\n"), "{request}");
    }

    #[test]
    fn an_unreachable_address_is_an_error_naming_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let headers = Headers::from_pairs([(":method", "GET"), (":path", "/")]);
        let err = send(addr, &headers, b"", Duration::from_secs(2)).unwrap_err();
        assert!(err.contains(&addr.to_string()), "{err}");
    }
}
