//! The access log sink: one JSON line per record, written by a thread of its own to stdout or
//! a file (the collector's own logs go to stderr). A bounded queue: when the writer falls
//! behind, lines are dropped and counted rather than stalling aggregation.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use gatetrace_core::record::Record;
use serde::Serialize;

/// Batches of lines waiting for the writer at most.
const QUEUE: usize = 256;

/// Where access lines go (`--access-log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogDestination {
    Stdout,
    Off,
    /// A file, appended to.
    File(PathBuf),
}

impl FromStr for AccessLogDestination {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "" => return Err("empty access log destination".into()),
            "stdout" | "-" => Self::Stdout,
            "off" | "none" => Self::Off,
            path => Self::File(PathBuf::from(path)),
        })
    }
}

/// The line written per record (Loki/promtail-ready, stable field names).
#[derive(Serialize)]
struct Line<'a> {
    time: Rfc3339,
    request_id: &'a str,
    trace_id: &'a str,
    span_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_span_id: Option<&'a str>,
    sampled: bool,
    service: &'a str,
    method: &'a str,
    endpoint: &'a str,
    status: Option<u16>,
    duration_ms: f64,
    streamed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_addr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<gatetrace_core::record::TokenResult>,
    host_kind: gatetrace_core::record::HostKind,
}

/// Unix nanoseconds rendered as RFC 3339 UTC with milliseconds (`2023-11-14T22:13:20.000Z`).
struct Rfc3339(u64);

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // u64 nanoseconds end in 2554, inside jiff's range (years up to 9999).
        let time =
            jiff::Timestamp::from_nanosecond(i128::from(self.0)).unwrap_or(jiff::Timestamp::MAX);
        s.collect_str(&format_args!("{time:.3}"))
    }
}

/// Appends the access line of `record` to `buf`.
pub fn append_line(buf: &mut Vec<u8>, record: &Record) {
    let line = Line {
        time: Rfc3339(record.start_unix_ns),
        request_id: &record.request_id,
        trace_id: &record.trace_id,
        span_id: &record.span_id,
        parent_span_id: record.parent_span_id.as_deref(),
        sampled: record.sampled,
        service: &record.service,
        method: &record.method,
        endpoint: &record.endpoint,
        status: record.status,
        duration_ms: record.duration_ns as f64 / 1e6,
        streamed: record.streamed,
        host: record.host.as_deref(),
        client_addr: record.client_addr.as_deref(),
        user_agent: record.user_agent.as_deref(),
        request_bytes: record.request_bytes,
        response_bytes: record.response_bytes,
        session_id: record.session.as_ref().map(|s| s.id.as_str()),
        token: record.token,
        host_kind: record.host_kind,
    };
    // Serialising borrowed strings and numbers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, &line);
    buf.push(b'\n');
}

/// Sends batches of access lines to the writer thread.
#[derive(Debug)]
pub struct AccessWriter {
    tx: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
    dropped: Arc<AtomicU64>,
}

impl AccessWriter {
    /// Opens the destination and starts the writer thread (`None` for `off`).
    ///
    /// # Errors
    /// A file that cannot be opened for appending.
    pub fn start(dest: &AccessLogDestination, dropped: Arc<AtomicU64>) -> anyhow::Result<Self> {
        let mut out: Box<dyn Write + Send> = match dest {
            AccessLogDestination::Off => {
                return Ok(Self {
                    tx: None,
                    thread: None,
                    dropped,
                });
            }
            AccessLogDestination::Stdout => Box::new(std::io::stdout()),
            AccessLogDestination::File(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening access log {}", path.display()))?,
            ),
        };
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                for chunk in rx {
                    if let Err(e) = out.write_all(&chunk).and_then(|()| out.flush()) {
                        tracing::warn!(error = %e, "access log write failed");
                    }
                }
            })
            .context("starting the access log thread")?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            dropped,
        })
    }

    /// Whether lines are written at all (so callers can skip formatting them).
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues `lines` (holding `count` lines); drops and counts them when the queue is full.
    pub fn send(&self, lines: Vec<u8>, count: u64) {
        let Some(tx) = &self.tx else { return };
        if lines.is_empty() {
            return;
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(lines) {
            self.dropped.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// Lets the writer finish what is queued, waiting at most `timeout`.
    pub fn close(mut self, timeout: Duration) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + timeout;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        let mut buf = Vec::new();
        let record: Record =
            serde_json::from_str(&crate::sources::decode::tests::line(9, None, true)).unwrap();
        append_line(&mut buf, &record);
        let value: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(value["time"], "2023-11-14T22:13:20.000Z");
        assert_eq!(value["status"], serde_json::Value::Null);
        assert_eq!(value["duration_ms"], 20.0);
        assert_eq!(value["trace_id"], format!("{:032x}", 9));
        // The epoch, a leap day, and milliseconds truncated, not rounded.
        let day_ns = 86_400 * 1_000_000_000;
        for (unix_ns, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (11_016 * day_ns, "2000-02-29T00:00:00.000Z"),
            (1_700_000_000_999_999_999, "2023-11-14T22:13:20.999Z"),
        ] {
            assert_eq!(
                serde_json::to_value(Rfc3339(unix_ns)).unwrap(),
                text,
                "{unix_ns}"
            );
        }
    }
}
