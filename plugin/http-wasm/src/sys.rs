//! The only unsafe code of the plugin: the raw `http_handler` imports wrapped as safe
//! functions over slices, and the guest exports Traefik calls (`_initialize`,
//! `handle_request`, `handle_response`). Built for wasm32 only.
#![allow(unsafe_code)]

use crate::abi::{HeaderKind, LogLevel};

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
}

unsafe extern "C" {
    /// Runs the module's static constructors (emitted by the linker for wasip1 reactors).
    fn __wasm_call_ctors();
}

/// The length the host reports as unsigned (lengths never exceed guest memory).
fn len32(len: i32) -> usize {
    len as u32 as usize
}

/// A slice length as the ABI's `i32` (guest slices are far below 2 GiB).
fn i32_len(bytes: &[u8]) -> i32 {
    bytes.len() as i32
}

pub fn enable_features(features: i32) -> i32 {
    // SAFETY: plain integer call; the host only updates this request's feature set.
    unsafe { raw_enable_features(features) }
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

pub fn get_header_names(kind: HeaderKind, buf: &mut [u8]) -> i64 {
    // SAFETY: the host writes at most `buf.len()` bytes at `buf`.
    unsafe { raw_get_header_names(kind as i32, buf.as_mut_ptr(), i32_len(buf)) }
}

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

/// Reactor entry point: constructors first, then config validation (which traps on a bad
/// config so Traefik refuses the middleware).
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    // SAFETY: called once per instance by the host before any other export, as the wasip1
    // reactor ABI requires.
    unsafe { __wasm_call_ctors() };
    crate::wasm::initialize();
}

#[unsafe(no_mangle)]
pub extern "C" fn handle_request() -> i64 {
    crate::wasm::handle_request()
}

#[unsafe(no_mangle)]
pub extern "C" fn handle_response(req_ctx: i32, is_error: i32) {
    crate::wasm::handle_response(req_ctx as u32, is_error != 0);
}

// ---- WASI preview 1: just what the spool writer needs, on a cached preopened dir fd ----

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    #[link_name = "path_open"]
    fn raw_path_open(
        fd: i32,
        dirflags: i32,
        path: *const u8,
        path_len: usize,
        oflags: i32,
        fs_rights_base: i64,
        fs_rights_inheriting: i64,
        fdflags: i32,
        opened_fd: *mut i32,
    ) -> i32;
    #[link_name = "fd_write"]
    fn raw_fd_write(fd: i32, iovs: *const [usize; 2], iovs_len: usize, written: *mut usize) -> i32;
    #[link_name = "fd_close"]
    fn raw_fd_close(fd: i32) -> i32;
    #[link_name = "fd_prestat_get"]
    fn raw_fd_prestat_get(fd: i32, prestat: *mut [u32; 2]) -> i32;
    #[link_name = "fd_prestat_dir_name"]
    fn raw_fd_prestat_dir_name(fd: i32, path: *mut u8, path_len: usize) -> i32;
    #[link_name = "path_filestat_get"]
    fn raw_path_filestat_get(
        fd: i32,
        flags: i32,
        path: *const u8,
        path_len: usize,
        filestat: *mut [u64; 8],
    ) -> i32;
}

/// WASI `oflags::CREAT`, `fdflags::APPEND`, `rights::FD_WRITE`.
const OFLAGS_CREAT: i32 = 1;
const FDFLAGS_APPEND: i32 = 1;
const RIGHTS_FD_WRITE: i64 = 1 << 6;
/// `fd_prestat_get` returns `BADF` past the last preopen; stop there (or at this bound).
const MAX_PREOPEN_FD: i32 = 64;

/// The preopened directories: `(fd, guest path)`.
pub fn preopens() -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for fd in 3..MAX_PREOPEN_FD {
        let mut prestat = [0u32; 2];
        // SAFETY: the host writes one 8-byte `prestat` into the live array.
        if unsafe { raw_fd_prestat_get(fd, &mut prestat) } != 0 {
            break;
        }
        // Tag 0 is a directory; its name length follows.
        if prestat[0] & 0xff != 0 {
            continue;
        }
        let mut name = vec![0u8; prestat[1] as usize];
        // SAFETY: the host writes at most `name.len()` bytes into the live buffer.
        if unsafe { raw_fd_prestat_dir_name(fd, name.as_mut_ptr(), name.len()) } == 0 {
            let name = String::from_utf8_lossy(&name)
                .trim_end_matches('\0')
                .to_owned();
            found.push((fd, name));
        }
    }
    found
}

/// Opens `path` under `dir_fd` for appending (created if missing). Returns the fd or the
/// WASI errno.
pub fn open_append_at(dir_fd: i32, path: &[u8]) -> Result<i32, i32> {
    let mut fd = -1;
    // SAFETY: the host reads `path.len()` bytes of a live slice and writes one i32 to `fd`.
    let errno = unsafe {
        raw_path_open(
            dir_fd,
            0,
            path.as_ptr(),
            path.len(),
            OFLAGS_CREAT,
            RIGHTS_FD_WRITE,
            0,
            FDFLAGS_APPEND,
            &mut fd,
        )
    };
    if errno == 0 { Ok(fd) } else { Err(errno) }
}

/// Writes `data` to `fd` with one `fd_write`. Returns bytes written or the WASI errno.
pub fn write(fd: i32, data: &[u8]) -> Result<usize, i32> {
    let iov = [data.as_ptr() as usize, data.len()];
    let mut written = 0usize;
    // SAFETY: one iovec pointing at the live `data`; the host writes one usize to `written`.
    let errno = unsafe { raw_fd_write(fd, &iov, 1, &mut written) };
    if errno == 0 { Ok(written) } else { Err(errno) }
}

/// Closes an fd from [`open_append_at`].
pub fn close(fd: i32) {
    // SAFETY: plain integer call; the caller owns `fd` and never uses it again.
    unsafe { raw_fd_close(fd) };
}

/// Whether `path` exists under `dir_fd`.
pub fn exists_at(dir_fd: i32, path: &[u8]) -> bool {
    let mut filestat = [0u64; 8];
    // SAFETY: the host reads `path.len()` bytes of a live slice and writes one 64-byte
    // filestat into the live array.
    unsafe { raw_path_filestat_get(dir_fd, 0, path.as_ptr(), path.len(), &mut filestat) == 0 }
}
