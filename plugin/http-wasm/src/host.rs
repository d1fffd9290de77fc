//! The safe host interface the adapter runs against: the http-wasm calls it needs, with
//! reusable buffers. Implemented by the real `http_handler` imports and by test fakes.

use gatetrace_abi::http_wasm::{BodyKind, HeaderKind, LogLevel};

/// Largest value a getter accepts (Traefik's default header limit is 1 MiB); a longer one reads
/// as empty, so a hostile request can never make the plugin allocate without bound.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// A reusable byte buffer that host getters write into. It only grows, so after warm-up a
/// request allocates nothing to read values.
#[derive(Debug, Default)]
pub struct Buf {
    data: Vec<u8>,
    len: usize,
}

impl Buf {
    /// An empty buffer with `capacity` bytes ready for the host to write into.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            data: vec![0; capacity],
            len: 0,
        }
    }

    /// The bytes the last fill produced.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// Fills the buffer with the http-wasm `buf_limit` protocol: `call(dst)` writes the value
    /// into `dst` only when it fits and always returns its full length. When it did not fit,
    /// the buffer grows and the call is repeated once; a value that changed size in between
    /// leaves the buffer empty, and so does one over [`MAX_VALUE_BYTES`]. Returns the filled
    /// bytes.
    pub fn fill(&mut self, mut call: impl FnMut(&mut [u8]) -> usize) -> &[u8] {
        let mut needed = call(&mut self.data);
        if needed > MAX_VALUE_BYTES {
            needed = 0;
        } else if needed > self.data.len() {
            self.data.resize(needed, 0);
            needed = call(&mut self.data);
            if needed > self.data.len() {
                needed = 0;
            }
        }
        self.len = needed;
        self.bytes()
    }

    /// Sets the contents directly (for fakes and for the first value of a list).
    pub fn set(&mut self, bytes: &[u8]) {
        self.data.clear();
        self.data.extend_from_slice(bytes);
        self.len = bytes.len();
    }
}

/// The host calls the adapter makes. Every method is one host call (or two when a value
/// outgrows its buffer), so the number of calls per request is what the adapter asks for.
pub trait Host {
    /// Writes a line to the host log.
    fn log(&mut self, level: LogLevel, message: &str);
    /// The middleware config (JSON).
    fn config(&mut self, out: &mut Buf);
    /// The request method.
    fn method(&mut self, out: &mut Buf);
    /// The request path and query, as sent.
    fn uri(&mut self, out: &mut Buf);
    /// The client address (`ip:port`).
    fn source_addr(&mut self, out: &mut Buf);
    /// Lowercase names of the headers of `kind`, NUL-terminated; returns their count.
    fn header_names(&mut self, kind: HeaderKind, out: &mut Buf) -> u32;
    /// Values of header `name` of `kind`, NUL-terminated; returns their count.
    fn header_values(&mut self, kind: HeaderKind, name: &[u8], out: &mut Buf) -> u32;
    /// Replaces header `name` of `kind` with one value.
    fn set_header(&mut self, kind: HeaderKind, name: &[u8], value: &[u8]);
    /// Removes header `name` of `kind`.
    fn remove_header(&mut self, kind: HeaderKind, name: &[u8]);
    /// Buffers this request's response so its status can be read; false if refused.
    fn enable_buffer_response(&mut self) -> bool;
    /// The response status. Only after [`Host::enable_buffer_response`] succeeded.
    fn status_code(&mut self) -> u16;
    /// Wall clock, nanoseconds since the Unix epoch.
    fn now_unix_ns(&mut self) -> u64;
    /// Reads the next bytes of body `kind` into `dst` (non-empty): `(eof, written)`.
    /// The request body before `next` (what is read is consumed: write it back); the response
    /// body only when buffered.
    fn read_body(&mut self, kind: BodyKind, dst: &mut [u8]) -> (bool, usize);
    /// Replaces body `kind` with `body`.
    fn write_body(&mut self, kind: BodyKind, body: &[u8]);
}

/// A scripted host for the crate's tests.
#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_retries_once_with_the_announced_length() {
        let value = b"a value longer than four bytes";
        let mut buf = Buf::with_capacity(4);
        let mut calls = 0;
        let got = buf
            .fill(|dst| {
                calls += 1;
                if value.len() <= dst.len() {
                    dst[..value.len()].copy_from_slice(value);
                }
                value.len()
            })
            .to_vec();
        assert_eq!(got, value);
        assert_eq!(calls, 2);
        // Warm: the next fill of the same size is one call.
        buf.fill(|dst| {
            calls += 1;
            dst[..3].copy_from_slice(b"abc");
            3
        });
        assert_eq!(buf.bytes(), b"abc");
        assert_eq!(calls, 3);
    }

    #[test]
    fn fill_refuses_values_over_the_cap() {
        let mut buf = Buf::with_capacity(2);
        let mut calls = 0;
        buf.fill(|_| {
            calls += 1;
            MAX_VALUE_BYTES + 1
        });
        assert_eq!((buf.bytes(), calls), (&b""[..], 1));
        assert!(buf.data.len() <= 2, "no allocation for a refused value");
    }

    #[test]
    fn fill_gives_up_on_a_value_that_keeps_growing() {
        let mut buf = Buf::with_capacity(2);
        let mut next = 10;
        buf.fill(|dst| {
            next += dst.len();
            next
        });
        assert_eq!(buf.bytes(), b"");
    }
}
