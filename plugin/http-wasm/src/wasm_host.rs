//! The real host behind the adapter's traits: [`WasmHost`] (the [`Host`] calls over the
//! `http_handler` imports) and [`WasiDir`] (the spool directory over WASI preview 1).

use gatetrace_abi::http_wasm::{BodyKind, Features, HeaderKind, LogLevel, unpack_count_len};

use crate::host::{Buf, Host};
use crate::spool::{SpoolDir, StdDir, locate};
use crate::sys;

/// The spool directory through a cached preopened fd: opening a segment is one `path_open`,
/// an append one `fd_write`. Falls back to `std::fs` when no preopen's name holds it but
/// something is mounted (wasi-libc may still resolve it).
#[derive(Debug)]
pub enum WasiDir {
    Preopen {
        fd: wasi::Fd,
        /// The spool dir relative to the preopen, with a trailing `/` (or empty).
        prefix: String,
    },
    Std(StdDir),
}

/// An open segment of a [`WasiDir`].
#[derive(Debug)]
pub enum WasiFile {
    Fd(wasi::Fd),
    Std(std::fs::File),
}

impl WasiDir {
    /// The spool directory `dir`, or `None` when nothing at all is mounted into the plugin
    /// (Traefik started it without `settings.mounts`): there is no spool to write to.
    pub fn open(dir: &str) -> Option<Self> {
        let preopens = sys::preopens();
        if preopens.is_empty() {
            return None;
        }
        Some(match locate(dir, &preopens) {
            Some((fd, prefix)) => Self::Preopen { fd, prefix },
            None => Self::Std(StdDir(dir.into())),
        })
    }
}

fn wasi_error(errno: i32) -> std::io::Error {
    std::io::Error::other(format!("wasi errno {errno}"))
}

impl SpoolDir for WasiDir {
    type File = WasiFile;

    fn open(&mut self, name: &str) -> std::io::Result<WasiFile> {
        match self {
            Self::Preopen { fd, prefix } => sys::open_append_at(*fd, &format!("{prefix}{name}"))
                .map(WasiFile::Fd)
                .map_err(|e| wasi_error(i32::from(e.raw()))),
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
            Self::Preopen { fd, prefix } => sys::exists_at(*fd, &format!("{prefix}{name}")),
            Self::Std(dir) => dir.exists(name),
        }
    }
}

/// The real host: every method is one `http_handler` (or WASI clock) call.
#[derive(Debug)]
pub struct WasmHost;

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
        sys::enable_features(Features::BUFFER_RESPONSE).contains(Features::BUFFER_RESPONSE)
    }

    fn status_code(&mut self) -> u16 {
        u16::try_from(sys::get_status_code()).unwrap_or(0)
    }

    fn read_body(&mut self, kind: BodyKind, dst: &mut [u8]) -> (bool, usize) {
        sys::read_body(kind, dst)
    }

    fn write_body(&mut self, kind: BodyKind, body: &[u8]) {
        sys::write_body(kind, body);
    }

    fn now_unix_ns(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}
