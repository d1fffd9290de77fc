//! Spool tailing in-process: new segments, partial lines, vanished and unreadable files,
//! deletion only as the layout allows, and resuming from the checkpoint after a restart.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use gatetrace_collector::metrics::names::{
    DEFAULT_NAMESPACE, RECORDS_RECEIVED_TOTAL, RECORDS_REJECTED_TOTAL, REQUESTS_TOTAL,
    SPOOL_ERRORS_TOTAL, SPOOL_LAG_BYTES,
};
use gatetrace_collector::{Collector, Config};
use gatetrace_core::spool::segment_name;
use gatetrace_core::testing::example_line;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

fn append(dir: &Path, window: u64, text: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(segment_name(window)))
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn current_window() -> u64 {
    let secs = testkit::now_unix_ns() / 1_000_000_000;
    secs - secs % 3600
}

async fn start(spool: &Path, checkpoint: &Path) -> Collector {
    start_with(spool, checkpoint, "3600", "0").await
}

async fn start_with(spool: &Path, checkpoint: &Path, window: &str, grace: &str) -> Collector {
    let config = Config::load([
        "gatetrace-collector",
        "--access-log",
        "off",
        "--spool-dir",
        spool.to_str().unwrap(),
        "--spool-poll-ms",
        "10",
        "--spool-window-secs",
        window,
        "--spool-grace-secs",
        grace,
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--checkpoint-interval-ms",
        "20",
    ])
    .unwrap();
    Collector::start(config, None).await.unwrap()
}

async fn scrape(c: &Collector) -> String {
    let response = c
        .app()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

static REQUESTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{DEFAULT_NAMESPACE}_{REQUESTS_TOTAL}{{service=\"mcp\",method=\"GET\",endpoint=\"/mcp\",status=\"200\"}}"
    )
});

async fn wait_for(c: &Collector, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(c).await;
        if ok(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn follows_segments_and_waits_for_partial_lines() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let w = current_window();
    let third = example_line(3);
    append(
        &spool,
        w,
        &(example_line(1) + &example_line(2) + &third[..40]),
    );
    let c = start(&spool, &dir.path().join("cp.json")).await;
    wait_for(&c, "two complete lines", |t| value(t, &REQUESTS) == 2.0).await;
    // The partial line is neither counted nor rejected while it is incomplete.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = scrape(&c).await;
    assert_eq!(value(&text, &REQUESTS), 2.0);
    assert_eq!(
        value(
            &text,
            &format!("{RECORDS_REJECTED_TOTAL}{{reason=\"invalid_json\"}}")
        ),
        0.0
    );
    assert!(value(&text, SPOOL_LAG_BYTES) > 0.0);
    append(&spool, w, &third[40..]);
    wait_for(&c, "the completed line", |t| value(t, &REQUESTS) == 3.0).await;
    // A newer segment is followed too.
    append(&spool, w + 3600, &example_line(4));
    let text = wait_for(&c, "the next segment", |t| value(t, &REQUESTS) == 4.0).await;
    assert_eq!(value(&text, SPOOL_LAG_BYTES), 0.0);
    assert_eq!(
        value(
            &text,
            &format!("{RECORDS_RECEIVED_TOTAL}{{transport=\"spool\"}}")
        ),
        4.0
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn unreadable_and_vanishing_segments_are_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let w = current_window();
    // A "segment" that cannot be read (a directory: root ignores file permissions).
    std::fs::create_dir(spool.join(segment_name(w - 7200))).unwrap();
    append(&spool, w - 3600, &example_line(1));
    append(&spool, w, &example_line(2));
    let c = start(&spool, &dir.path().join("cp.json")).await;
    let text = wait_for(&c, "both readable segments", |t| value(t, &REQUESTS) == 2.0).await;
    assert!(
        value(
            &text,
            &format!("{SPOOL_ERRORS_TOTAL}{{kind=\"unreadable\"}}")
        ) >= 1.0
    );
    // A segment vanishing under the tailer is forgotten; later data still arrives.
    std::fs::remove_file(spool.join(segment_name(w))).unwrap();
    append(&spool, w + 3600, &example_line(3));
    wait_for(&c, "data after a vanished segment", |t| {
        value(t, &REQUESTS) == 3.0
    })
    .await;
    let response = c
        .app()
        .oneshot(Request::get("/ready").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "a bad segment does not make the collector unready"
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn finished_segments_are_deleted_only_when_the_layout_allows() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let w = current_window();
    let old = w - 2 * 3600;
    append(&spool, old, &(example_line(1) + &example_line(2)));
    append(&spool, w, &example_line(3));
    let c = start(&spool, &dir.path().join("cp.json")).await;
    wait_for(&c, "all lines", |t| value(t, &REQUESTS) == 3.0).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while spool.join(segment_name(old)).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "old segment never deleted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The current window's segment stays (its window is open).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(spool.join(segment_name(w)).exists());
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restart_resumes_from_the_checkpoint_without_loss_or_double_counting() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let checkpoint = dir.path().join("cp.json");
    let w = current_window();
    append(&spool, w, &(example_line(1) + &example_line(2)));
    let c = start(&spool, &checkpoint).await;
    wait_for(&c, "first lines", |t| value(t, &REQUESTS) == 2.0).await;
    c.shutdown().await.unwrap();
    assert!(checkpoint.exists());

    append(
        &spool,
        w,
        &(example_line(3) + &example_line(4) + &example_line(5)),
    );
    let c = start(&spool, &checkpoint).await;
    wait_for(&c, "counters to continue", |t| value(t, &REQUESTS) == 5.0).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        value(&scrape(&c).await, &REQUESTS),
        5.0,
        "nothing counted twice"
    );
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_quiet_spool_still_deletes_segments_once_their_window_closes() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let now = testkit::now_unix_ns() / 1_000_000_000;
    // The current 1 s window, and an empty segment (a writer that died before writing).
    append(&spool, now, &example_line(1));
    append(&spool, now - 1, "");
    let c = start_with(&spool, &dir.path().join("cp.json"), "1", "1").await;
    wait_for(&c, "the line", |t| value(t, &REQUESTS) == 1.0).await;
    // No more data arrives; the windows close (+1 s grace) and both segments go.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&spool).unwrap().count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "segments never deleted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(value(&scrape(&c).await, &REQUESTS), 1.0);
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unwritable_checkpoint_or_a_corrupt_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let load = |checkpoint: &Path| {
        Config::load([
            "gatetrace-collector",
            "--access-log",
            "off",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ])
        .unwrap()
    };
    let missing_dir = dir.path().join("no/such/dir/cp.json");
    let err = Collector::start(load(&missing_dir), None)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("writing checkpoint"), "{err:#}");
    let corrupt = dir.path().join("cp.json");
    std::fs::write(&corrupt, "{").unwrap();
    let err = Collector::start(load(&corrupt), None).await.unwrap_err();
    assert!(format!("{err:#}").contains("corrupt"), "{err:#}");
}

#[tokio::test]
async fn garbage_in_the_middle_of_a_segment_is_counted_and_the_lines_around_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let w = current_window();
    // Binary junk, a torn line, and a line with a future schema, between good lines.
    let mut bytes = example_line(1).into_bytes();
    bytes.extend_from_slice(b"\x00\xff\xfe garbage {{{\n");
    bytes.extend_from_slice(&example_line(2).as_bytes()[..50]);
    bytes.push(b'\n');
    bytes.extend_from_slice(example_line(3).replace("\"v\":1", "\"v\":9").as_bytes());
    bytes.extend_from_slice(example_line(4).as_bytes());
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(spool.join(segment_name(w)))
        .unwrap();
    file.write_all(&bytes).unwrap();
    let c = start(&spool, &dir.path().join("cp.json")).await;
    let text = wait_for(&c, "the good lines", |t| value(t, &REQUESTS) == 2.0).await;
    let rejected = |reason: &str| {
        value(
            &text,
            &format!("{RECORDS_REJECTED_TOTAL}{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(rejected("invalid_json"), 2.0, "{text}");
    assert_eq!(rejected("schema_version"), 1.0);
    // And the tailer goes on with what is appended later.
    append(&spool, w, &example_line(5));
    wait_for(&c, "the line after", |t| value(t, &REQUESTS) == 3.0).await;
    c.shutdown().await.unwrap();
}
