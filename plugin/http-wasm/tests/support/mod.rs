//! Shared rig for the Traefik end-to-end tests.

pub mod http;
pub mod traefik;

use gatetrace_core::record::Record;

/// Parses every spool line as a record; panics naming the first malformed line.
pub fn parse_records(lines: &[String]) -> Vec<Record> {
    lines
        .iter()
        .map(|line| {
            Record::from_ndjson_line(line.as_bytes())
                .unwrap_or_else(|e| panic!("malformed spool line {line:?}: {e}"))
        })
        .collect()
}

/// Tests in this binary each run their own Traefik; one at a time keeps timing honest on a
/// two-core machine.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
