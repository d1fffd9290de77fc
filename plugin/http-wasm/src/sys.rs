//! The plugin's only unsafe code: the raw `http_handler` imports and the WASI preview-1 calls
//! (through the `wasi` crate) the spool needs, each wrapped as a safe function over slices.
//! Built for wasm32 only (clippy also checks it natively; it never links there).
#![allow(unsafe_code)]

use gatetrace_abi::http_wasm::{BodyKind, Features, HeaderKind, LogLevel, unpack_eof_len};

#[link(wasm_import_module = "http_handler")]
unsafe extern "C" {
    #[link_name = "enable_features"]
    fn raw_enable_features(features: i32) -> i32;
    #[link_name = "get_config"]
    fn raw_get_config(buf: *mut u8, buf_limit: i32) -> i32;
    #[link_name = "log"]
    fn raw_log(level: i32, message: *const u8, message_len: i32);
    #[link_name = "get_method"]
    fn raw_get_method(buf: *mut u8, buf_limit: i32) -> i32;
    #[link_name = "get_uri"]
    fn raw_get_uri(buf: *mut u8, buf_limit: i32) -> i32;
    #[link_name = "get_source_addr"]
    fn raw_get_source_addr(buf: *mut u8, buf_limit: i32) -> i32;
    #[link_name = "get_header_names"]
    fn raw_get_header_names(kind: i32, buf: *mut u8, buf_limit: i32) -> i64;
    #[link_name = "get_header_values"]
    fn raw_get_header_values(
        kind: i32,
        name: *const u8,
        name_len: i32,
        buf: *mut u8,
        buf_limit: i32,
    ) -> i64;
    #[link_name = "set_header_value"]
    fn raw_set_header_value(
        kind: i32,
        name: *const u8,
        name_len: i32,
        value: *const u8,
        value_len: i32,
    );
    #[link_name = "remove_header"]
    fn raw_remove_header(kind: i32, name: *const u8, name_len: i32);
    #[link_name = "get_status_code"]
    fn raw_get_status_code() -> i32;
    #[link_name = "read_body"]
    fn raw_read_body(kind: i32, buf: *mut u8, buf_limit: i32) -> i64;
    #[link_name = "write_body"]
    fn raw_write_body(kind: i32, body: *const u8, body_len: i32);
}

unsafe extern "C" {
    /// Runs the module's static constructors (emitted by the linker for wasip1 reactors).
    fn __wasm_call_ctors();
}

/// Runs the static constructors; `_initialize` calls it once, before anything else.
pub fn call_ctors() {
    // SAFETY: the linker-generated constructor runner; the only caller is `_initialize`, which
    // the host calls once per instance before any other export, as the wasip1 reactor ABI
    // requires.
    unsafe { __wasm_call_ctors() };
}

/// The length the host reports as unsigned (lengths never exceed guest memory).
fn len32(len: i32) -> usize {
    len as u32 as usize
}

/// A slice length as the ABI's `i32` (guest slices are far below 2 GiB).
fn i32_len(bytes: &[u8]) -> i32 {
    bytes.len() as i32
}

pub fn enable_features(features: Features) -> Features {
    // SAFETY: plain integer call; the host only updates this request's feature set.
    Features::from_abi(unsafe { raw_enable_features(features.to_abi()) })
}

pub fn get_config(buf: &mut [u8]) -> usize {
    // SAFETY: the host writes at most `buf.len()` bytes at `buf` (buf_limit protocol).
    len32(unsafe { raw_get_config(buf.as_mut_ptr(), i32_len(buf)) })
}

pub fn log(level: LogLevel, message: &str) {
    // SAFETY: the host only reads `message.len()` bytes from a live slice.
    unsafe { raw_log(level as i32, message.as_ptr(), i32_len(message.as_bytes())) }
}

pub fn get_method(buf: &mut [u8]) -> usize {
    // SAFETY: the host writes at most `buf.len()` bytes at `buf`.
    len32(unsafe { raw_get_method(buf.as_mut_ptr(), i32_len(buf)) })
}

pub fn get_uri(buf: &mut [u8]) -> usize {
    // SAFETY: the host writes at most `buf.len()` bytes at `buf`.
    len32(unsafe { raw_get_uri(buf.as_mut_ptr(), i32_len(buf)) })
}

pub fn get_source_addr(buf: &mut [u8]) -> usize {
    // SAFETY: the host writes at most `buf.len()` bytes at `buf`.
    len32(unsafe { raw_get_source_addr(buf.as_mut_ptr(), i32_len(buf)) })
}

/// `count << 32 | len` (see [`gatetrace_abi::http_wasm::unpack_count_len`]).
pub fn get_header_names(kind: HeaderKind, buf: &mut [u8]) -> i64 {
    // SAFETY: the host writes at most `buf.len()` bytes at `buf`.
    unsafe { raw_get_header_names(kind as i32, buf.as_mut_ptr(), i32_len(buf)) }
}

/// `count << 32 | len` (see [`gatetrace_abi::http_wasm::unpack_count_len`]).
pub fn get_header_values(kind: HeaderKind, name: &[u8], buf: &mut [u8]) -> i64 {
    // SAFETY: the host reads `name.len()` bytes of a live slice and writes at most
    // `buf.len()` bytes at `buf`; the two slices cannot overlap (one is borrowed mutably).
    unsafe {
        raw_get_header_values(
            kind as i32,
            name.as_ptr(),
            i32_len(name),
            buf.as_mut_ptr(),
            i32_len(buf),
        )
    }
}

pub fn set_header_value(kind: HeaderKind, name: &[u8], value: &[u8]) {
    // SAFETY: the host only reads the two live slices.
    unsafe {
        raw_set_header_value(
            kind as i32,
            name.as_ptr(),
            i32_len(name),
            value.as_ptr(),
            i32_len(value),
        );
    }
}

pub fn remove_header(kind: HeaderKind, name: &[u8]) {
    // SAFETY: the host only reads the live slice.
    unsafe { raw_remove_header(kind as i32, name.as_ptr(), i32_len(name)) }
}

pub fn get_status_code() -> i32 {
    // SAFETY: plain integer call; callers only make it with response buffering enabled.
    unsafe { raw_get_status_code() }
}

/// Reads the next bytes of body `kind` into `buf` (non-empty); returns whether the body ended
/// and how many bytes were written.
pub fn read_body(kind: BodyKind, buf: &mut [u8]) -> (bool, usize) {
    // SAFETY: the host writes at most `buf.len()` bytes at `buf` (buf_limit protocol).
    let packed = unsafe { raw_read_body(kind as i32, buf.as_mut_ptr(), i32_len(buf)) };
    let (eof, len) = unpack_eof_len(packed);
    (eof, (len as usize).min(buf.len()))
}

/// Replaces body `kind` with `body` (the first call of a request replaces, later ones append).
pub fn write_body(kind: BodyKind, body: &[u8]) {
    // SAFETY: the host only reads the live slice.
    unsafe { raw_write_body(kind as i32, body.as_ptr(), i32_len(body)) }
}

// ---- WASI preview 1: just what the spool needs, on a cached preopened directory fd ----

/// `fd_prestat_get` answers `BADF` past the last preopen; stop there (or at this bound).
const MAX_PREOPEN_FD: wasi::Fd = 64;

/// The preopened directories: `(fd, guest path)`.
pub fn preopens() -> Vec<(wasi::Fd, String)> {
    let mut found = Vec::new();
    for fd in 3..MAX_PREOPEN_FD {
        // SAFETY: plain call; the crate passes a pointer to its own `MaybeUninit` out value.
        let Ok(prestat) = (unsafe { wasi::fd_prestat_get(fd) }) else {
            break;
        };
        if prestat.tag != wasi::PREOPENTYPE_DIR.raw() {
            continue;
        }
        // SAFETY: the tag says this is a directory, so `dir` is the union's live field.
        let mut name = vec![0u8; unsafe { prestat.u.dir.pr_name_len }];
        // SAFETY: the host writes at most `name.len()` bytes into the live buffer.
        if unsafe { wasi::fd_prestat_dir_name(fd, name.as_mut_ptr(), name.len()) }.is_ok() {
            let name = String::from_utf8_lossy(&name)
                .trim_end_matches('\0')
                .to_owned();
            found.push((fd, name));
        }
    }
    found
}

/// Opens `path` under `dir_fd` for appending (created if missing).
pub fn open_append_at(dir_fd: wasi::Fd, path: &str) -> Result<wasi::Fd, wasi::Errno> {
    // SAFETY: the crate passes the live `path` slice and its own out value.
    unsafe {
        wasi::path_open(
            dir_fd,
            0,
            path,
            wasi::OFLAGS_CREAT,
            wasi::RIGHTS_FD_WRITE,
            0,
            wasi::FDFLAGS_APPEND,
        )
    }
}

/// Writes `data` to `fd` with one `fd_write`; returns the bytes written or the WASI errno.
/// The one WASI call per request, so it calls the crate's raw import directly: the typed
/// wrapper is not inlined into the plugin and cost about 50 wasm instructions per request.
pub fn write(fd: wasi::Fd, data: &[u8]) -> Result<usize, i32> {
    let iov = [wasi::Ciovec {
        buf: data.as_ptr(),
        buf_len: data.len(),
    }];
    let mut written: wasi::Size = 0;
    // SAFETY: one iovec pointing at the live `data`, which outlives the call; the host writes
    // one `Size` into the live `written`. Pointers are 32-bit on wasm32.
    let errno = unsafe {
        wasi::wasi_snapshot_preview1::fd_write(
            fd as i32,
            iov.as_ptr() as i32,
            iov.len() as i32,
            (&raw mut written) as i32,
        )
    };
    if errno == 0 { Ok(written) } else { Err(errno) }
}

/// Closes an fd from [`open_append_at`].
pub fn close(fd: wasi::Fd) {
    // SAFETY: plain integer call; the caller owns `fd` and never uses it again. A failed close
    // leaves nothing to do.
    let _ = unsafe { wasi::fd_close(fd) };
}

/// Whether `path` exists under `dir_fd`.
pub fn exists_at(dir_fd: wasi::Fd, path: &str) -> bool {
    // SAFETY: the crate passes the live `path` slice and its own out value.
    unsafe { wasi::path_filestat_get(dir_fd, 0, path) }.is_ok()
}
