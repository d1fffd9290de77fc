//! The adapter's tests: host-call budgets, records, spool windows, buffering rules and the
//! failure paths, against the scripted [`FakeHost`] and real or fake spool directories.

use super::*;
use crate::host::fake::FakeHost;
use crate::spool::StdDir;
use gatetrace_core::record::Record;
use gatetrace_core::trace::parse_traceparent;

pub(super) fn config(dir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"{{"service":"svc",{extra}"spool":{{"dir":"{}"}}}}"#,
        dir.display()
    )
}

pub(super) fn plugin(host: &mut FakeHost) -> Plugin<StdDir> {
    let env = Env {
        node: "node-a".into(),
    };
    Plugin::new(host, &env, |d| Some(StdDir(d.into()))).expect("valid config")
}

/// Runs one request through both phases; returns the host calls of each phase.
pub(super) fn run<D: SpoolDir>(
    plugin: &mut Plugin<D>,
    host: &mut FakeHost,
) -> (Vec<&'static str>, Vec<&'static str>) {
    host.calls.clear();
    host.buffering = false;
    let packed = plugin.on_request(host) as u64;
    assert_eq!(packed as u32, 1, "always continues to next");
    let request_calls = std::mem::take(&mut host.calls);
    plugin.on_response(host, (packed >> 32) as u32, false);
    (request_calls, std::mem::take(&mut host.calls))
}

pub(super) fn records(dir: &std::path::Path) -> Vec<Record> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("seg-")
        {
            for line in std::fs::read_to_string(path).unwrap().lines() {
                out.push(Record::from_ndjson_line(line.as_bytes()).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, key) in [
        (r#""bogusKey":1,"#, "bogusKey"),
        (r#""echoRequestId":"perhaps","#, "echoRequestId"),
    ] {
        let mut host = FakeHost::new(&config(dir.path(), extra));
        let env = Env {
            node: String::new(),
        };
        let err = Plugin::new(&mut host, &env, |d| Some(StdDir(d.into()))).unwrap_err();
        assert!(err.contains(key), "{err}");
    }
}

#[test]
fn a_plain_request_costs_these_host_calls_and_gives_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = FakeHost::new(&config(dir.path(), ""));
    let mut plugin = plugin(&mut host);
    host.uri = b"/users/12345?token=SECRET".to_vec();
    let (request_calls, response_calls) = run(&mut plugin, &mut host);
    // The host-call budget of a plain buffered request (no incoming id or trace): with the
    // spool append's one fd_write on WASI, 10 calls (and, on the first record of a window,
    // fd_close of the old segment, path_filestat_get for the full probe and path_open).
    assert_eq!(
        request_calls,
        [
            "clock_time_get",
            "get_method",
            "get_uri",
            "get_header_names",
            "set_header_value", // x-request-id
            "set_header_value", // traceparent
            "enable_features",
        ]
    );
    // An observed 200 on a plain route: the core asks for no response header.
    assert_eq!(response_calls, ["get_status_code", "clock_time_get"]);
    let id = host.upstream("x-request-id").unwrap();
    assert_eq!(id.len(), 32);
    let tp = parse_traceparent(host.upstream("traceparent").unwrap().as_bytes()).unwrap();
    let recs = records(dir.path());
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.request_id, id);
    assert_eq!(r.trace_id, tp.trace_id.to_hex());
    assert_eq!(r.span_id, tp.parent_id.to_hex());
    assert_eq!(r.status, Some(200));
    assert_eq!(r.duration_ns, 1_500_000);
    assert_eq!(r.endpoint, "/users/{id}");
    assert_eq!(r.service, "svc");
    assert_eq!(r.host_kind, HostKind::Traefik);
    assert_eq!(
        (r.host.as_deref(), r.response_bytes),
        (None, None),
        "both opt-in"
    );
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files[0].starts_with("claims-")
            && files[1].starts_with("drops-")
            && files[2].starts_with("seg-"),
        "one segment, the claim file and the instance's (zero) drops slot: {files:?}"
    );
}

#[test]
fn host_and_response_size_cost_their_calls_only_when_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let extra = r#""recordHost":"true","recordResponseSize":true,"#;
    let mut host = FakeHost::new(&config(dir.path(), extra));
    let mut plugin = plugin(&mut host);
    let (request_calls, response_calls) = run(&mut plugin, &mut host);
    assert_eq!(
        request_calls
            .iter()
            .filter(|c| **c == "get_header_values")
            .count(),
        1,
        "host: {request_calls:?}"
    );
    assert_eq!(
        response_calls,
        [
            "get_status_code",
            "get_header_names",
            "get_header_values", // content-length
            "clock_time_get",
        ]
    );
    let recs = records(dir.path());
    assert_eq!(recs[0].host.as_deref(), Some("gw.example"));
    assert_eq!(recs[0].response_bytes, Some(2));
}

#[test]
fn records_go_through_one_open_segment_per_window() {
    use crate::spool::fake::FakeDir;
    use gatetrace_core::spool::{SpoolLayout, segment_name};

    let dir = tempfile::tempdir().unwrap();
    let mut host = FakeHost::new(&config(dir.path(), ""));
    let env = Env {
        node: "node-a".into(),
    };
    let mut plugin = Plugin::new(&mut host, &env, |_| Some(FakeDir::default())).unwrap();
    let layout = SpoolLayout::default();
    let sec = 1_000_000_000;
    // Start 10 ms before a window ends: the third request's record ends in the next one.
    host.clock = (layout.window_start(host.clock) + layout.window_secs) * sec - 10_000_000;
    let mut ends = Vec::new();
    for gap in [0, 0, 8_000_000, 0, 0, 40 * sec] {
        host.clock += gap;
        run(&mut plugin, &mut host);
        ends.push(host.clock);
    }
    let dir = &plugin.spool.dir().ops;
    let w: Vec<String> = ends
        .iter()
        .map(|&t| segment_name(layout.window_start(t)))
        .collect();
    let probe = |t: u64| {
        let window = layout.window_start(t);
        format!(
            "exists {}",
            segment_name(layout.full_probe(window).unwrap())
        )
    };
    assert_eq!(
        *dir,
        [
            probe(ends[0]),
            format!("open {}", w[0]),
            format!("write {}", w[0]),
            format!("write {}", w[1]),
            // New window: close the old handle first, probe once, open the new segment.
            format!("close {}", w[1]),
            probe(ends[2]),
            format!("open {}", w[2]),
            format!("write {}", w[2]),
            format!("write {}", w[3]),
            format!("write {}", w[4]),
            // An idle instance wakes up windows later: same again.
            format!("close {}", w[4]),
            probe(ends[5]),
            format!("open {}", w[5]),
            format!("write {}", w[5]),
        ]
    );
    assert_eq!(
        (w[0] == w[1], w[1] == w[2], w[4] == w[5]),
        (true, false, false)
    );
    // Every record went to the segment of the clock reading that ended it.
    for (segment, line) in &plugin.spool.dir().lines {
        let r = Record::from_ndjson_line(line).unwrap();
        let end = r.start_unix_ns + r.duration_ns;
        assert_eq!(*segment, segment_name(layout.window_start(end)));
    }
    assert_eq!(plugin.spool.dir().lines.len(), 6);
}

#[test]
fn streams_are_never_buffered_and_never_asked_for_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = FakeHost::new(&config(dir.path(), ""));
    let mut plugin = plugin(&mut host);
    for (name, value) in [
        ("accept", &b"application/json, text/event-stream"[..]),
        ("upgrade", b"websocket"),
        ("content-type", b"application/grpc"),
    ] {
        host.request = vec![(name.into(), value.to_vec())];
        host.response = vec![("content-type".into(), b"text/event-stream".to_vec())];
        let (request_calls, response_calls) = run(&mut plugin, &mut host);
        assert!(!request_calls.contains(&"enable_features"), "{name}");
        assert!(!response_calls.contains(&"get_status_code"), "{name}");
    }
    let recs = records(dir.path());
    assert_eq!(recs.len(), 3);
    // Unbuffered: the SSE content type implies 200 (issue 12), never read from the host.
    assert!(recs.iter().all(|r| r.streamed
        && r.status == Some(200)
        && r.status_source == Some(gatetrace_core::mcp::StatusSource::Implied)));
}

#[test]
fn buffer_modes_always_and_never() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, expect) in [("always", true), ("never", false)] {
        let mut host = FakeHost::new(&config(
            dir.path(),
            &format!(r#""bufferResponses":"{mode}","#),
        ));
        let mut plugin = plugin(&mut host);
        host.request = vec![("accept".into(), b"text/event-stream".to_vec())];
        let (request_calls, response_calls) = run(&mut plugin, &mut host);
        assert_eq!(request_calls.contains(&"enable_features"), expect, "{mode}");
        assert_eq!(
            response_calls.contains(&"get_status_code"),
            expect,
            "{mode}"
        );
    }
}

#[test]
fn incoming_context_is_continued_and_hostile_ids_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = FakeHost::new(&config(dir.path(), r#""echoRequestId":true,"#));
    let mut plugin = plugin(&mut host);
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    host.request = vec![
        ("x-request-id".into(), b"abc-123".to_vec()),
        ("traceparent".into(), incoming.as_bytes().to_vec()),
    ];
    run(&mut plugin, &mut host);
    // A kept id is not rewritten upstream, but is echoed.
    assert_eq!(host.upstream("x-request-id"), None);
    assert!(
        host.set
            .iter()
            .any(|(k, n, v)| *k == HeaderKind::Response && n == "x-request-id" && v == b"abc-123")
    );
    let out = parse_traceparent(host.upstream("traceparent").unwrap().as_bytes()).unwrap();
    assert_eq!(out.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(out.parent_id.to_hex(), "00f067aa0ba902b7");

    host.set.clear();
    host.request = vec![("x-request-id".into(), b"{\"x\":\"\xff\"}".to_vec())];
    run(&mut plugin, &mut host);
    let replaced = host.upstream("x-request-id").unwrap();
    assert_eq!(replaced.len(), 32);
    let recs = records(dir.path());
    assert_eq!(recs[1].request_id, replaced);
    assert_eq!(recs[0].parent_span_id.as_deref(), Some("00f067aa0ba902b7"));

    // An invalid traceparent starts a new trace, and its tracestate is removed upstream.
    host.request = vec![
        ("traceparent".into(), b"00-zz-bad".to_vec()),
        ("tracestate".into(), b"vendor=abc".to_vec()),
    ];
    run(&mut plugin, &mut host);
    assert_eq!(host.removed, ["tracestate"]);
    let started = parse_traceparent(host.upstream("traceparent").unwrap().as_bytes()).unwrap();
    assert_ne!(
        started.trace_id.to_hex(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

#[test]
fn an_error_or_unknown_context_never_reads_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = FakeHost::new(&config(dir.path(), ""));
    let mut plugin = plugin(&mut host);
    // A response for a request this instance never saw: ignored.
    plugin.on_response(&mut host, 999, false);
    assert!(records(dir.path()).is_empty());
    // The next handler failed: the record has no status.
    host.buffering = false;
    let packed = plugin.on_request(&mut host) as u64;
    host.calls.clear();
    plugin.on_response(&mut host, (packed >> 32) as u32, true);
    assert!(!host.calls.contains(&"get_status_code"));
    assert_eq!(records(dir.path())[0].status, None);
}

#[test]
fn requests_in_flight_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = FakeHost::new(&config(dir.path(), ""));
    let mut plugin = plugin(&mut host);
    for _ in 0..(MAX_IN_FLIGHT * 3) {
        plugin.on_request(&mut host);
    }
    assert_eq!(plugin.in_flight.len(), MAX_IN_FLIGHT);
}

#[test]
fn a_missing_spool_dir_logs_once_counts_and_reports_later() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("not-yet");
    let mut host = FakeHost::new(&config(&spool, ""));
    let mut plugin = plugin(&mut host);
    assert_eq!(host.logs.len(), 1, "claim failure logged: {:?}", host.logs);
    for _ in 0..3 {
        run(&mut plugin, &mut host);
    }
    assert_eq!(
        host.logs.len(),
        2,
        "one write failure logged: {:?}",
        host.logs
    );
    std::fs::create_dir(&spool).unwrap();
    run(&mut plugin, &mut host);
    run(&mut plugin, &mut host);
    let recs = records(&spool);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].dropped, 3, "the drops are reported once");
    assert_eq!(recs[1].dropped, 0);
}

#[test]
fn without_a_spool_mount_the_plugin_runs_logs_once_and_counts_drops_as_no_spool() {
    let mut host = FakeHost::new(r#"{"service":"svc","spool":{"dir":"/var/spool/gatetrace"}}"#);
    let env = Env {
        node: "node-a".into(),
    };
    let mut plugin = Plugin::<StdDir>::new(&mut host, &env, |_| None).expect("runs");
    for _ in 0..3 {
        let (request_calls, response_calls) = run(&mut plugin, &mut host);
        // Ids and trace context still go upstream; the status is still read.
        assert!(request_calls.contains(&"set_header_value"));
        assert!(response_calls.contains(&"get_status_code"));
    }
    assert!(host.upstream("traceparent").is_some());
    assert_eq!(host.logs.len(), 1, "logged once: {:?}", host.logs);
    assert!(host.logs[0].contains("reason no_spool"), "{:?}", host.logs);
    assert!(
        host.logs[0].contains("/var/spool/gatetrace"),
        "{:?}",
        host.logs
    );
    assert_eq!(plugin.spool.dropped(), 3);
}

#[test]
fn without_a_spool_mount_a_bad_config_is_still_refused() {
    let mut host = FakeHost::new(r#"{"service":"svc","bogusKey":1}"#);
    let env = Env {
        node: String::new(),
    };
    let err = Plugin::<StdDir>::new(&mut host, &env, |_| None).unwrap_err();
    assert!(err.contains("bogusKey"), "{err}");
}
