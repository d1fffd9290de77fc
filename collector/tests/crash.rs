//! Exactly-once metrics across crashes: the real binary tails a spool that a writer keeps
//! filling, is SIGKILLed at random moments a dozen times and restarted from its checkpoint;
//! in the end `mcp_oauth_requests_total` and the latency histogram's count equal the records
//! written, none lost or doubled. Histograms and exemplars continue across SIGTERM and SIGKILL.

use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatetrace_collector::metrics::names::{
    DEFAULT_NAMESPACE, REQUEST_DURATION_SECONDS, REQUESTS_TOTAL,
};
use gatetrace_core::record::Record;
use gatetrace_core::spool::{SpoolLayout, segment_name};
use gatetrace_core::testing::{example_line, ndjson_line};
use testkit::{ChildGuard, wait_until};

const KILLS: usize = 12;
const WINDOW_SECS: u64 = 1;

/// Small deterministic generator (the seed is printed so a failure can be replayed).
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Appends batches of complete lines to the current window's segment, like the plugin.
fn writer(spool: &Path, stop: &AtomicBool, written: &AtomicU64) {
    let layout = SpoolLayout {
        window_secs: WINDOW_SECS,
        ..SpoolLayout::default()
    };
    let mut n = written.load(Ordering::SeqCst);
    while !stop.load(Ordering::SeqCst) {
        let now = testkit::now_unix_ns();
        let path = spool.join(segment_name(layout.window_start(now)));
        let mut batch = String::new();
        for _ in 0..50 {
            n += 1;
            let status = [200, 201, 404, 500][(n % 4) as usize];
            batch += &ndjson_line(&Record {
                sampled: n.is_multiple_of(3),
                start_unix_ns: now,
                duration_ns: 1_000_000 * (n % 700),
                method: "POST".into(),
                status: Some(status),
                ..Record::example(n)
            });
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        // One write of whole lines, as the plugin does.
        file.write_all(batch.as_bytes()).unwrap();
        written.store(n, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// Sum of every series of `metric` (chunked encoding aside, values are whole lines, so a
/// plain scan works).
fn sum_of(body: &str, metric: &str) -> u64 {
    let series = format!("{metric}{{");
    body.lines()
        .filter(|l| l.starts_with(&series))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

fn requests_total(body: &str) -> u64 {
    sum_of(body, &format!("{DEFAULT_NAMESPACE}_{REQUESTS_TOTAL}"))
}

/// Observations in the latency histogram, all series.
fn latency_count(body: &str) -> u64 {
    sum_of(
        body,
        &format!("{DEFAULT_NAMESPACE}_{REQUEST_DURATION_SECONDS}_count"),
    )
}

/// The latency histogram's bucket lines that carry an exemplar.
fn exemplar_lines(body: &str) -> Vec<String> {
    body.lines()
        .filter(|l| l.contains(" # {trace_id="))
        .map(str::to_owned)
        .collect()
}

/// POSTs `body` to `/v1/records`; the whole answer.
fn post_records(port: u16, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /v1/records HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Records `first..=last` (the core's example records), sampled when `sampled`, each taking
/// `duration_ns`.
fn records(first: u64, last: u64, sampled: bool, duration_ns: u64) -> String {
    (first..=last)
        .map(|n| {
            ndjson_line(&Record {
                sampled,
                duration_ns,
                ..Record::example(n)
            })
        })
        .collect()
}

/// Sends SIGTERM and waits for a clean exit.
fn terminate(child: &mut ChildGuard) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exit = None;
    wait_until(
        "the collector to exit on SIGTERM",
        Duration::from_secs(20),
        || {
            exit = child.try_wait();
            exit.is_some()
        },
    );
    assert!(exit.unwrap().success(), "{}", child.log());
}

fn start(dir: &Path, run: usize) -> (ChildGuard, u16) {
    let spool = dir.join("spool");
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatetrace-collector"));
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--access-log",
        "off",
        "--spool-dir",
        spool.to_str().unwrap(),
        "--spool-window-secs",
        &WINDOW_SECS.to_string(),
        "--spool-grace-secs",
        "1",
        "--spool-poll-ms",
        "20",
        "--checkpoint",
        dir.join("checkpoint.json").to_str().unwrap(),
        "--checkpoint-interval-ms",
        "100",
    ]);
    let child = ChildGuard::spawn(&mut command, dir.join(format!("run-{run}.log")));
    let port = child.collector_port();
    wait_until("/ready", Duration::from_secs(20), || {
        http_get(port, "/ready").is_some_and(|(status, _)| status == 200)
    });
    (child, port)
}

#[test]
fn sigkill_at_random_moments_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let seed = testkit::now_unix_ns() | 1;
    println!("seed {seed}");
    let mut rng = XorShift(seed);

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (spool, stop, written) = (spool.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || writer(&spool, &stop, &written))
    };

    let started = Instant::now();
    let mut seen_at_kill = Vec::new();
    for run in 0..KILLS {
        let (mut child, port) = start(dir.path(), run);
        // Sometimes right away (mid catch-up or mid-checkpoint), sometimes after a while.
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        let seen = http_get(port, "/metrics").map_or(0, |(_, body)| requests_total(&body));
        child.kill();
        let so_far = written.load(Ordering::SeqCst);
        assert!(
            seen <= so_far,
            "run {run}: counted {seen} of {so_far} written: doubled"
        );
        seen_at_kill.push(seen);
        assert!(
            child
                .log()
                .lines()
                .all(|l| !l.contains("\"level\":\"ERROR\"")),
            "run {run}:\n{}",
            child.log()
        );
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let total = written.load(Ordering::SeqCst);
    println!("written {total}, counts seen just before each kill {seen_at_kill:?}");
    assert!(
        seen_at_kill.windows(2).any(|w| w[1] > w[0]) && *seen_at_kill.last().unwrap() < total,
        "the kills must land while ingestion is under way"
    );

    let (_child, port) = start(dir.path(), KILLS);
    let mut last = 0;
    wait_until(
        "every record to be counted",
        Duration::from_secs(30),
        || {
            last = http_get(port, "/metrics").map_or(0, |(_, body)| requests_total(&body));
            assert!(last <= total, "counted {last} > written {total}: doubled");
            last == total
        },
    );
    // Still exact a few checkpoints later (nothing re-read).
    std::thread::sleep(Duration::from_millis(500));
    let (_, body) = http_get(port, "/metrics").unwrap();
    assert_eq!(requests_total(&body), total);
    assert_eq!(latency_count(&body), total, "the histogram is exact too");
    // Exemplars (restored or new) only ever name sampled records (every third).
    for line in exemplar_lines(&body) {
        let id = line
            .split("trace_id=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let n = u64::from_str_radix(id, 16).unwrap();
        assert!(n.is_multiple_of(3) && n <= total, "{line}");
    }
    let segments = std::fs::read_dir(&spool).unwrap().count();
    println!(
        "{KILLS} kills in {:?}; {segments} segment(s) left in the spool",
        started.elapsed()
    );
}

#[test]
fn sigterm_drains_and_writes_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("spool")).unwrap();
    let (mut child, port) = start(dir.path(), 0);
    let body: String = (1..=3u64).map(example_line).collect();
    let answer = post_records(port, &body);
    assert!(answer.contains("\"accepted\":3"), "{answer}");
    // Acknowledged means durable: the checkpoint already holds the batch.
    let state =
        gatetrace_collector::aggregate::checkpoint::load(&dir.path().join("checkpoint.json"))
            .unwrap()
            .unwrap();
    assert_eq!(state.received[0], 3);

    terminate(&mut child);
    assert!(
        child.log().contains("gatetrace-collector stopped"),
        "{}",
        child.log()
    );
    assert!(http_get(port, "/health").is_none(), "no longer serving");
}

#[test]
fn histograms_and_exemplars_continue_after_sigterm_and_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("spool")).unwrap();
    let scrape = |port| http_get(port, "/metrics").unwrap().1;

    // Run 0: two fast requests (one sampled) and a slow sampled one, then SIGTERM.
    let (mut child, port) = start(dir.path(), 0);
    let mut body = records(1, 1, true, 20_000_000);
    body += &records(2, 2, false, 20_000_000);
    body += &records(3, 3, true, 3_000_000_000);
    assert!(post_records(port, &body).contains("\"accepted\":3"));
    let before = scrape(port);
    let exemplars = exemplar_lines(&before);
    assert_eq!(exemplars.len(), 2, "{before}");
    terminate(&mut child);

    // Run 1: the same histogram, exemplars included, line for line.
    let (mut child, port) = start(dir.path(), 1);
    let after_term = scrape(port);
    assert_eq!(latency_count(&after_term), 3);
    assert_eq!(
        exemplar_lines(&after_term),
        exemplars,
        "exemplars after SIGTERM"
    );
    let sum = |text: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "{DEFAULT_NAMESPACE}_{REQUEST_DURATION_SECONDS}_sum{{"
                ))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .unwrap()
    };
    assert!((sum(&after_term) - 3.04).abs() < 1e-9, "{after_term}");
    // Acknowledged (so durable), then SIGKILL: no graceful anything.
    assert!(post_records(port, &records(4, 4, true, 400_000_000)).contains("\"accepted\":1"));
    let before_kill = exemplar_lines(&scrape(port));
    assert_eq!(before_kill.len(), 3);
    child.kill();

    // Run 2: counts, sum and all three exemplars continue; new observations add to them.
    let (_child, port) = start(dir.path(), 2);
    let after_kill = scrape(port);
    assert_eq!(latency_count(&after_kill), 4);
    assert_eq!(requests_total(&after_kill), 4);
    assert!((sum(&after_kill) - 3.44).abs() < 1e-9, "{after_kill}");
    assert_eq!(
        exemplar_lines(&after_kill),
        before_kill,
        "exemplars after SIGKILL"
    );
    assert!(post_records(port, &records(5, 5, false, 20_000_000)).contains("\"accepted\":1"));
    assert_eq!(latency_count(&scrape(port)), 5);
}
