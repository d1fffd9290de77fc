//! End-to-end crash safety with the real gateway (issue 14): real Traefik 3.7 runs the plugin on
//! two routers (a third, plugin-less router is traffic the collector must not count) under load
//! from client threads on loopback, while the collector tailing the plugin's spool is SIGKILLed
//! 20 times at random moments (seeded; the seed is printed) and restarted on the same
//! checkpoint. In the end the collector's `requests_total` plus the drops the plugin reported
//! equals the requests in Traefik's own JSON access log for the plugin's routers (and, when the
//! plugin reported no drops, per router and status): none lost, none counted twice.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::http::Backend;
use common::metrics::{samples, sum_by};
use common::serial;
use common::traefik::Traefik;
use gatetrace_collector::metrics::names::{
    DEFAULT_NAMESPACE, RECORDS_DROPPED_TOTAL, REQUESTS_TOTAL,
};
use testkit::http::Http;
use testkit::{ChildGuard, wait_until};

/// Collector SIGKILLs under load.
const KILLS: usize = 20;
/// The longest a collector runs before its kill (its lifetime is drawn from `0..` this).
const MAX_LIFETIME_MS: u64 = 1_200;
/// Client threads and the most requests they send in all (the load stops after the kills).
const CLIENTS: usize = 4;
const MAX_REQUESTS: u64 = 60_000;
/// Spool segment window: short, so segments close and are deleted between kills.
const WINDOW_SECS: u64 = 1;
/// Router and `service` of the plugin's two middlewares, and the router without the plugin.
const ROUTERS: [(&str, &str); 2] = [("api@file", "api"), ("other@file", "other")];
const PLAIN_ROUTER: &str = "plain@file";
/// What each client cycles through: three statuses on `api`, one path on each other router.
const TARGETS: [&str; 5] = [
    "/status/200",
    "/status/404",
    "/status/500",
    "/other/x",
    "/plain/x",
];

const DYNAMIC: &str = r#"
http:
  routers:
    api:
      rule: "PathPrefix(`/status`)"
      entryPoints: [web]
      service: backend
      middlewares: [gatetrace-api]
    other:
      rule: "PathPrefix(`/other`)"
      entryPoints: [web]
      service: backend
      middlewares: [gatetrace-other]
    plain:
      rule: "PathPrefix(`/plain`)"
      entryPoints: [web]
      service: backend
  middlewares:
    gatetrace-api:
      plugin:
        gatetrace:
          service: api
          spool:
            dir: "{spool}"
            windowSecs: "1"
            graceSecs: "1"
    gatetrace-other:
      plugin:
        gatetrace:
          service: other
          spool:
            dir: "{spool}"
            windowSecs: "1"
            graceSecs: "1"
  services:
    backend:
      loadBalancer:
        servers:
          - url: "{backend}"
"#;

/// The collector binary on the plugin's spool, its checkpoint in `state`; waits until ready.
fn start_collector(spool: &Path, state: &Path, run: usize) -> (ChildGuard, u16) {
    let mut command = Command::new(common::collector_binary());
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
        state.join("checkpoint.json").to_str().unwrap(),
        "--checkpoint-interval-ms",
        "100",
    ]);
    let child = ChildGuard::spawn(&mut command, state.join(format!("collector-{run}.log")));
    let port = child.collector_port();
    let http = Http::new();
    wait_until("the collector's /ready", Duration::from_secs(20), || {
        http.get_text(&format!("http://127.0.0.1:{port}/ready"))
            .is_some_and(|(status, _)| status == 200)
    });
    (child, port)
}

/// What the collector counted: `requests_total` by (service, status), and the drops the plugin
/// reported.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counted {
    requests: BTreeMap<(String, String), u64>,
    dropped: u64,
}

impl Counted {
    fn total(&self) -> u64 {
        self.requests.values().sum()
    }
}

fn scrape(http: &Http, port: u16) -> Option<Counted> {
    let (status, text) = http.get_text(&format!("http://127.0.0.1:{port}/metrics"))?;
    if status != 200 {
        return None;
    }
    let samples = samples(&text);
    let requests_total = format!("{DEFAULT_NAMESPACE}_{REQUESTS_TOTAL}");
    let mut requests = BTreeMap::new();
    for (_, service) in ROUTERS {
        for (status, n) in sum_by(&samples, &requests_total, "status", &[("service", service)]) {
            requests.insert((service.to_owned(), status), n);
        }
    }
    let dropped = sum_by(
        &samples,
        RECORDS_DROPPED_TOTAL,
        "reason",
        &[("reason", "plugin")],
    )
    .values()
    .sum();
    Some(Counted { requests, dropped })
}

/// What Traefik's access log says.
struct Logged {
    /// Lines of the plugin's routers by (the router's `service`, status).
    by_status: BTreeMap<(String, String), u64>,
    /// Lines of the plain router.
    plain: u64,
    /// Lines of the load's requests (any router).
    load: u64,
}

impl Logged {
    fn read(traefik: &Traefik) -> Self {
        let mut logged = Self {
            by_status: BTreeMap::new(),
            plain: 0,
            load: 0,
        };
        for line in traefik.access_lines() {
            let router = line["RouterName"].as_str().unwrap_or_default();
            let status = line["DownstreamStatus"].to_string();
            if TARGETS.contains(&line["RequestPath"].as_str().unwrap_or_default()) {
                logged.load += 1;
            }
            if router == PLAIN_ROUTER {
                logged.plain += 1;
            } else if let Some((_, service)) = ROUTERS.iter().find(|(r, _)| *r == router) {
                *logged
                    .by_status
                    .entry(((*service).to_owned(), status))
                    .or_insert(0) += 1;
            } else {
                // Only Traefik's own 404s before the routes were loaded have no router.
                assert!(router.is_empty(), "a line of an unknown router: {line}");
            }
        }
        logged
    }

    /// Lines of the plugin's routers.
    fn through_plugin(&self) -> u64 {
        self.by_status.values().sum()
    }
}

/// Client threads' tallies: requests started and answered.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    started: AtomicU64,
    answered: AtomicU64,
}

/// One client thread: keep-alive GETs through Traefik until told to stop or the cap is reached;
/// every answer must be the status the backend gives.
fn client(load: &Load, port: u16, first: usize) {
    let http = Http::new();
    let mut i = first;
    while !load.stop.load(Ordering::SeqCst) {
        if load.started.fetch_add(1, Ordering::SeqCst) >= MAX_REQUESTS {
            load.started.fetch_sub(1, Ordering::SeqCst);
            break;
        }
        let target = TARGETS[i % TARGETS.len()];
        i += 1;
        let (status, body) = http
            .get_text(&format!("http://127.0.0.1:{port}{target}"))
            .unwrap_or_else(|| panic!("no answer from Traefik for {target}"));
        let want = target
            .strip_prefix("/status/")
            .map_or(200, |code| code.parse().unwrap());
        assert_eq!(status, want, "{target}: {body}");
        load.answered.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
#[ignore = "e2e: needs traefik + cargo xtask wasm"]
fn sigkilled_collector_under_traefik_load_counts_every_logged_request_once() {
    let _serial = serial();
    let backend = Backend::start();
    let traefik = Traefik::start_logging_access(DYNAMIC, backend.port);
    // Not the load's targets: the load's own lines are told apart by path.
    for target in ["/status/201", "/other/ready", "/plain/ready"] {
        traefik.wait_route(target);
    }
    // Those two requests through the plugin, logged as they end.
    let mut warmup = 0;
    wait_until(
        "the warm-up requests' lines",
        Duration::from_secs(10),
        || {
            warmup = Logged::read(&traefik).through_plugin();
            warmup >= 2
        },
    );
    let state = tempfile::tempdir().unwrap();
    let seed = testkit::now_unix_ns();
    println!("seed {seed} (collector lifetimes before each SIGKILL)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let http = Http::new();

    let load = Load::default();
    let started = Instant::now();
    let mut seen_at_kill = Vec::new();
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let load = &load;
            s.spawn(move || client(load, traefik.port, c));
        }
        for run in 0..KILLS {
            let (mut collector, port) = start_collector(&traefik.spool, state.path(), run);
            // Sometimes at once (mid catch-up, mid-checkpoint), sometimes after a while.
            std::thread::sleep(Duration::from_millis(rng.u64(0..MAX_LIFETIME_MS)));
            let seen = scrape(&http, port).map_or(0, |c| c.total());
            let sent = load.started.load(Ordering::SeqCst);
            collector.kill();
            assert!(
                seen <= sent + warmup,
                "run {run}: counted {seen} of {sent} + {warmup} requests sent: doubled"
            );
            assert!(
                !collector.log().contains("\"level\":\"ERROR\""),
                "run {run}:\n{}",
                collector.log()
            );
            seen_at_kill.push(seen);
        }
        load.stop.store(true, Ordering::SeqCst);
    });
    let answered = load.answered.load(Ordering::SeqCst);
    println!(
        "{answered} requests answered during {KILLS} kills in {:.1?}; counted just before each kill: {seen_at_kill:?}",
        started.elapsed()
    );

    // Traefik logs a request as it ends (after its answer is sent): every answered request of
    // the load gets its line.
    let mut logged = Logged::read(&traefik);
    wait_until(
        "an access log line for every answered request",
        Duration::from_secs(10),
        || {
            logged = Logged::read(&traefik);
            logged.load >= answered
        },
    );
    assert_eq!(
        logged.load, answered,
        "access log lines of the load vs answers"
    );
    let logged_total = logged.through_plugin();
    assert!(
        seen_at_kill.windows(2).any(|w| w[1] > w[0])
            && *seen_at_kill.last().unwrap() < logged_total,
        "the kills must land while records flow in"
    );

    let (_collector, port) = start_collector(&traefik.spool, state.path(), KILLS);
    let mut counted = Counted::default();
    wait_until(
        "the collector to count every logged request",
        Duration::from_secs(60),
        || {
            counted = scrape(&http, port).unwrap_or_default();
            let so_far = counted.total() + counted.dropped;
            assert!(
                so_far <= logged_total,
                "counted {so_far} > {logged_total} logged: doubled\n{counted:?}"
            );
            so_far == logged_total
        },
    );
    // Still exact a few checkpoints and spool polls later (nothing re-read).
    std::thread::sleep(Duration::from_millis(600));
    let last = scrape(&http, port).unwrap();
    assert_eq!(last, counted, "the count moved after it matched");
    if counted.dropped == 0 {
        assert_eq!(
            counted.requests, logged.by_status,
            "requests_total by (service, status) vs Traefik's access log"
        );
    }
    println!(
        "crash: seed {seed}; {answered} load requests, {KILLS} SIGKILLs; counted {} + {} plugin \
         drops = {logged_total} access-log lines of the plugin's routers ({} of the plain one)",
        counted.total(),
        counted.dropped,
        logged.plain
    );
}
