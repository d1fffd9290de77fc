//! The load generator: wrk (Debian package) driven by a generated Lua script that sets the
//! request (method, headers, body) and prints wrk's own totals and latency percentiles as one
//! `key=value` line, so nothing depends on wrk's human-readable report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::proc;

/// The marker starting the line the script's `done` prints.
const RESULT_MARKER: &str = "gatetrace-wrk";

/// One request shape, sent over and over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub path: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// How hard wrk pushes: connections and threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub connections: u32,
    pub threads: u32,
}

/// wrk's two loads: one connection (latency without queueing) and 32 (throughput).
pub const ONE: Load = Load {
    connections: 1,
    threads: 1,
};
pub const MANY: Load = Load {
    connections: 32,
    threads: 2,
};

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkResult {
    pub requests: u64,
    pub seconds: f64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
    /// Answers other than 2xx/3xx.
    pub status_errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl WrkResult {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// The Lua script that makes wrk send `request` and report in one line.
pub fn script(request: &Request) -> String {
    let mut lua = String::new();
    let _ = writeln!(lua, "wrk.method = {}", lua_string(request.method));
    let _ = writeln!(lua, "wrk.path = {}", lua_string(request.path));
    for (name, value) in &request.headers {
        let _ = writeln!(
            lua,
            "wrk.headers[{}] = {}",
            lua_string(name),
            lua_string(value)
        );
    }
    if let Some(body) = &request.body {
        let _ = writeln!(lua, "wrk.body = {}", lua_string(body));
    }
    let _ = writeln!(
        lua,
        r#"function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("{RESULT_MARKER} requests=%d duration_us=%d socket_errors=%d status_errors=%d p50_us=%.0f p99_us=%.0f\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end"#
    );
    lua
}

/// A Lua string literal of `text` (quotes, backslashes and control bytes escaped).
fn lua_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for byte in text.bytes() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\{byte:03}");
            }
        }
    }
    out.push('"');
    out
}

/// Reads the script's result line from wrk's stdout.
pub fn parse(stdout: &str) -> Result<WrkResult> {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT_MARKER))
        .with_context(|| format!("wrk printed no `{RESULT_MARKER}` line:\n{stdout}"))?;
    let field = |key: &str| -> Result<f64> {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .with_context(|| format!("no {key} in wrk's line {line:?}"))?
            .parse::<f64>()
            .with_context(|| format!("{key} in wrk's line {line:?}"))
    };
    let seconds = field("duration_us")? / 1e6;
    if seconds <= 0.0 {
        bail!("wrk ran for no time: {line:?}");
    }
    Ok(WrkResult {
        requests: field("requests")? as u64,
        seconds,
        socket_errors: field("socket_errors")? as u64,
        status_errors: field("status_errors")? as u64,
        p50_ms: field("p50_us")? / 1000.0,
        p99_ms: field("p99_us")? / 1000.0,
    })
}

/// wrk with its scripts in one directory.
#[derive(Debug)]
pub struct Wrk {
    pub binary: PathBuf,
    pub scripts: PathBuf,
}

impl Wrk {
    /// Runs wrk against `port` for `seconds`; fails when it cannot run, or when more than one
    /// request in a hundred failed (a broken scenario is not a slow one).
    pub fn run(&self, port: u16, request: &Request, load: Load, seconds: u64) -> Result<WrkResult> {
        let script = self.write_script(request)?;
        let finished = proc::exec(
            Command::new(&self.binary)
                .arg(format!("-t{}", load.threads))
                .arg(format!("-c{}", load.connections))
                .arg(format!("-d{seconds}s"))
                .arg("--timeout")
                .arg("5s")
                .arg("-s")
                .arg(&script)
                .arg(format!("http://127.0.0.1:{port}")),
            proc::Output::Capture,
            Duration::from_secs(seconds + 30),
        )?;
        if !finished.status.success() {
            bail!(
                "wrk failed ({}): {}",
                finished.status,
                finished.stderr.trim()
            );
        }
        let result = parse(&finished.stdout)?;
        let failed = result.socket_errors + result.status_errors;
        if result.requests == 0 || failed * 100 > result.requests {
            bail!(
                "{} {} on port {port}: {failed} of {} requests failed ({} socket errors, {} \
                 answers not 2xx/3xx)",
                request.method,
                request.path,
                result.requests,
                result.socket_errors,
                result.status_errors
            );
        }
        Ok(result)
    }

    /// The script for `request`, written once per distinct request.
    fn write_script(&self, request: &Request) -> Result<PathBuf> {
        let lua = script(request);
        let file = self
            .scripts
            .join(format!("request-{:016x}.lua", fingerprint(&lua)));
        if !Path::new(&file).exists() {
            std::fs::write(&file, lua).with_context(|| format!("write {}", file.display()))?;
        }
        Ok(file)
    }
}

/// FNV-1a of `text`: a stable file name for a script.
fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_sets_the_request_and_reports_in_one_line() {
        let request = Request {
            method: "POST",
            path: "/mcp",
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(r#"{"a":"b\c"}"#.to_owned() + "\n\u{1}"),
        };
        let lua = script(&request);
        assert!(lua.starts_with("wrk.method = \"POST\"\nwrk.path = \"/mcp\"\n"));
        assert!(lua.contains("wrk.headers[\"content-type\"] = \"application/json\"\n"));
        assert!(
            lua.contains(r#"wrk.body = "{\"a\":\"b\\c\"}\n\001""#),
            "{lua}"
        );
        assert!(lua.contains("function done(summary, latency, requests)"));
        assert!(lua.contains("gatetrace-wrk requests=%d"));
    }

    #[test]
    fn reads_the_result_line() {
        let out = "Running 3s test @ http://127.0.0.1:1\n  2 threads and 32 connections\n\
                   gatetrace-wrk requests=90000 duration_us=3000000 socket_errors=2 \
                   status_errors=0 p50_us=850 p99_us=4200\n";
        let result = parse(out).unwrap();
        assert_eq!(result.requests, 90000);
        assert_eq!(result.seconds, 3.0);
        assert_eq!((result.socket_errors, result.status_errors), (2, 0));
        assert_eq!((result.p50_ms, result.p99_ms), (0.85, 4.2));
        assert_eq!(result.requests_per_second(), 30000.0);
        let err = parse("no line").unwrap_err().to_string();
        assert!(err.contains("gatetrace-wrk"), "{err}");
        let partial = parse("gatetrace-wrk requests=1 duration_us=1").unwrap_err();
        assert!(partial.to_string().contains("socket_errors"), "{partial}");
    }

    #[test]
    fn the_script_runs_in_real_wrk_when_it_is_installed() {
        // Only wrk can say whether the script is good Lua; `cargo xtask test` installs it and
        // sets GATETRACE_WRK, a plain `cargo test` may run where it is missing.
        let Ok(wrk) = which_wrk() else {
            eprintln!("skipped: wrk is not installed");
            return;
        };
        let dir = std::env::temp_dir().join(format!("xtask-wrk-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || answer_ok(&listener));
        let wrk = Wrk {
            binary: wrk,
            scripts: dir.clone(),
        };
        let request = Request {
            method: "POST",
            path: "/mcp",
            headers: vec![("x-test".into(), "1".into())],
            body: Some("{\"jsonrpc\":\"2.0\"}".into()),
        };
        let load = Load {
            connections: 1,
            threads: 1,
        };
        let result = wrk.run(port, &request, load, 1).unwrap();
        assert!(
            result.requests > 0 && result.p99_ms >= result.p50_ms,
            "{result:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    /// `GATETRACE_WRK` (set by `cargo xtask test`), else Debian's wrk if installed.
    fn which_wrk() -> Result<PathBuf> {
        if let Some(path) = std::env::var_os("GATETRACE_WRK") {
            return Ok(PathBuf::from(path));
        }
        let path = PathBuf::from("/usr/bin/wrk");
        if path.is_file() {
            Ok(path)
        } else {
            bail!("no wrk")
        }
    }

    /// A keep-alive server answering every request (headers and a 17-byte body) with 200.
    fn answer_ok(listener: &std::net::TcpListener) {
        use std::io::{BufRead as _, BufReader, Read as _, Write as _};
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        let mut body = [0; 17];
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                        if reader.read_exact(&mut body).is_err()
                            || reader.get_mut().write_all(answer).is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    }
}
