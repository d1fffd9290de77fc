//! The wasm32 glue: the [`Host`] implementation over the safe `sys` calls, and the one
//! plugin instance per module instance that the exports drive.

use std::cell::RefCell;

use crate::abi::{FEATURE_BUFFER_RESPONSE, HeaderKind, LogLevel, unpack_count_len};
use crate::adapter::Plugin;
use crate::host::{Buf, Host};
use crate::spool::{SpoolDir, StdDir, locate};
use crate::sys;

/// The spool directory through a cached preopened fd: opening a segment is one `path_open`,
/// an append one `fd_write`. Falls back to `std::fs` when no preopen holds it.
#[derive(Debug)]
enum WasiDir {
    Preopen {
        fd: i32,
        /// The spool dir relative to the preopen, with a trailing `/` (or empty).
        prefix: String,
    },
    Std(StdDir),
}

/// An open segment of a [`WasiDir`].
#[derive(Debug)]
enum WasiFile {
    Fd(i32),
    Std(std::fs::File),
}

impl WasiDir {
    fn open(dir: &str) -> Self {
        match locate(dir, &sys::preopens()) {
            Some((fd, prefix)) => Self::Preopen { fd, prefix },
            None => Self::Std(StdDir(dir.into())),
        }
    }
}

fn wasi_error(errno: i32) -> std::io::Error {
    std::io::Error::other(format!("wasi errno {errno}"))
}

impl SpoolDir for WasiDir {
    type File = WasiFile;

    fn open(&mut self, name: &str) -> std::io::Result<WasiFile> {
        match self {
            Self::Preopen { fd, prefix } => {
                sys::open_append_at(*fd, format!("{prefix}{name}").as_bytes())
                    .map(WasiFile::Fd)
                    .map_err(wasi_error)
            }
            Self::Std(dir) => dir.open(name).map(WasiFile::Std),
        }
    }

    fn write(&mut self, file: &mut WasiFile, line: &[u8]) -> std::io::Result<usize> {
        match file {
            WasiFile::Fd(fd) => sys::write(*fd, line).map_err(wasi_error),
            WasiFile::Std(file) => std::io::Write::write(file, line),
        }
    }

    fn close(&mut self, file: WasiFile) {
        if let WasiFile::Fd(fd) = file {
            sys::close(fd);
        }
    }

    fn exists(&mut self, name: &str) -> bool {
        match self {
            Self::Preopen { fd, prefix } => {
                sys::exists_at(*fd, format!("{prefix}{name}").as_bytes())
            }
            Self::Std(dir) => dir.exists(name),
        }
    }
}

/// The real host: every method is one `http_handler` (or WASI clock) call.
struct WasmHost;

impl Host for WasmHost {
    fn log(&mut self, level: LogLevel, message: &str) {
        sys::log(level, message);
    }

    fn config(&mut self, out: &mut Buf) {
        out.fill(sys::get_config);
    }

    fn method(&mut self, out: &mut Buf) {
        out.fill(sys::get_method);
    }

    fn uri(&mut self, out: &mut Buf) {
        out.fill(sys::get_uri);
    }

    fn source_addr(&mut self, out: &mut Buf) {
        out.fill(sys::get_source_addr);
    }

    fn header_names(&mut self, kind: HeaderKind, out: &mut Buf) -> u32 {
        let mut count = 0;
        out.fill(|dst| {
            let (c, len) = unpack_count_len(sys::get_header_names(kind, dst));
            count = c;
            len as usize
        });
        if out.bytes().is_empty() { 0 } else { count }
    }

    fn header_values(&mut self, kind: HeaderKind, name: &[u8], out: &mut Buf) -> u32 {
        let mut count = 0;
        out.fill(|dst| {
            let (c, len) = unpack_count_len(sys::get_header_values(kind, name, dst));
            count = c;
            len as usize
        });
        if out.bytes().is_empty() { 0 } else { count }
    }

    fn set_header(&mut self, kind: HeaderKind, name: &[u8], value: &[u8]) {
        sys::set_header_value(kind, name, value);
    }

    fn remove_header(&mut self, kind: HeaderKind, name: &[u8]) {
        sys::remove_header(kind, name);
    }

    fn enable_buffer_response(&mut self) -> bool {
        sys::enable_features(FEATURE_BUFFER_RESPONSE) & FEATURE_BUFFER_RESPONSE != 0
    }

    fn status_code(&mut self) -> u16 {
        u16::try_from(sys::get_status_code()).unwrap_or(0)
    }

    fn now_unix_ns(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

thread_local! {
    static PLUGIN: RefCell<Option<Plugin<WasiDir>>> = const { RefCell::new(None) };
}

/// `_initialize`: reads and validates the config. A bad config is logged (naming the key)
/// and traps, so Traefik refuses the middleware; nothing else here traps.
pub fn initialize() {
    let mut host = WasmHost;
    match Plugin::new(
        &mut host,
        &crate::adapter::Env::from_process(),
        WasiDir::open,
    ) {
        Ok(plugin) => PLUGIN.with(|p| *p.borrow_mut() = Some(plugin)),
        Err(message) => {
            host.log(LogLevel::Error, &message);
            std::process::abort();
        }
    }
}

/// `handle_request`: always continues to the next handler.
pub fn handle_request() -> i64 {
    PLUGIN.with(|p| match p.try_borrow_mut().ok().as_deref_mut() {
        Some(Some(plugin)) => plugin.on_request(&mut WasmHost),
        _ => crate::abi::pack_ctx_next(0, true),
    })
}

/// `handle_response`: finishes the request's record.
pub fn handle_response(req_ctx: u32, is_error: bool) {
    PLUGIN.with(|p| {
        if let Ok(mut guard) = p.try_borrow_mut()
            && let Some(plugin) = guard.as_mut()
        {
            plugin.on_response(&mut WasmHost, req_ctx, is_error);
        }
    });
}
