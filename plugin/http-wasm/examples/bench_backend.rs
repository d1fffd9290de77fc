//! A tiny keep-alive HTTP/1.1 backend for the Traefik benchmark (`cargo xtask bench`): answers
//! every request with 200 and a short body, one thread per connection. The benchmark also runs
//! it as its OTLP/HTTP receiver, a sink: exports (sent with `Content-Length`) are read and
//! discarded, and a 2xx is all an exporter needs. Usage: `bench_backend <port>`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: bench_backend <port>");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind loopback port");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            let mut content_length = 0usize;
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" || line == "\n" {
                    if content_length > 0 {
                        let mut body = vec![0; content_length];
                        if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
                            return;
                        }
                        content_length = 0;
                    }
                    if reader.get_mut().write_all(RESPONSE).is_err() {
                        return;
                    }
                }
            }
        });
    }
}
