//! Request bodies through the Traefik profile (issue 12): it reproduces
//! http-wasm-host-go v0.7.0's `buffer_request` bug (only the bytes of the read that returned EOF
//! reach the backend: empty over HTTP/2, truncated when the body came in parts), proven with a
//! synthetic guest. (The gatetrace plugin's byte-identical bodies through this profile:
//! `plugin/proxy-wasm/tests/traefik_bodies.rs`.)

use gatetrace_host::http_wasm::{BackendResponse, HttpRequest, TraefikHost, TraefikOptions};

/// A guest that does what issue 12 forbids: enables `buffer_request`, reads the request body
/// in 16-byte reads to EOF and does not write it back.
const BUFFER_REQUEST_GUEST: &str = r#"
(module
  (import "http_handler" "enable_features" (func $enable (param i32) (result i32)))
  (import "http_handler" "read_body" (func $read (param i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "handle_request") (result i64)
    (drop (call $enable (i32.const 1)))
    (block $done
      (loop $more
        (br_if $done
          (i64.ne
            (i64.shr_u (call $read (i32.const 0) (i32.const 0) (i32.const 16)) (i64.const 32))
            (i64.const 0)))
        (br $more)))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32)))
"#;

fn post(body: &[u8], parts: &[usize], protocol: &str) -> HttpRequest {
    let mut request = HttpRequest::get("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("content-length", &body.len().to_string());
    request.method = "POST".into();
    request.protocol = protocol.into();
    request.body = body.to_vec();
    request.body_parts = parts.to_vec();
    request
}

#[test]
fn the_traefik_profile_loses_buffer_request_bodies_like_v0_7_0() {
    let mut host = TraefikHost::new(BUFFER_REQUEST_GUEST.as_bytes(), TraefikOptions::default())
        .expect("synthetic guest");
    let body = b"0123456789abcdefghij"; // 20 bytes: reads of 16 + 4
    let cases: &[(&[usize], &str, &[u8])] = &[
        // One part, HTTP/1.1: the host returns EOF with the last read (4 bytes here).
        (&[], "HTTP/1.1", b"ghij"),
        // Two parts: only the second survives.
        (&[5, 15], "HTTP/1.1", b"ghij"),
        (&[18, 2], "HTTP/1.1", b"ij"),
        // HTTP/2: EOF comes alone, the backend gets nothing.
        (&[], "HTTP/2.0", b""),
    ];
    for &(parts, protocol, upstream) in cases {
        let x = host.handle(&post(body, parts, protocol), &BackendResponse::status(200));
        assert_eq!(x.failure, None);
        let got = x.upstream.expect("next").body;
        assert_eq!(got, upstream, "{parts:?} {protocol}");
        assert_ne!(got, body, "the bug shows");
    }
    // A body that fits one read over HTTP/1.1 survives (why the bug hides in simple tests).
    let short = b"short body";
    let x = host.handle(&post(short, &[], "HTTP/1.1"), &BackendResponse::status(200));
    assert_eq!(x.upstream.expect("next").body, short);
}
