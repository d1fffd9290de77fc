//! One collector process holding a number of live series: its resident memory, the time (and
//! CPU time) one `/metrics` render takes, and the CPU per record once every series exists.
//! Live series `i` is `requests_total` plus the latency histogram of one route
//! ([`records::series_route`]); 1 in 10 of them carries exemplars.

use std::time::Instant;

use gatetrace_collector::{Collector, Config};
use serde_json::{Value, json};

use crate::proc::{memory_kib, threads_cpu};
use crate::{records, router};

/// Renders timed per process after the first (which writes into fresh memory; later ones
/// reuse the buffer the collector keeps between scrapes).
const RENDERS: usize = 5;

/// Fills a fresh collector with `series` live series, then sends `steady` more records over
/// them (round robin) and measures.
pub async fn run(series: u64, steady: u64) -> Value {
    let (rss_idle, _) = memory_kib();
    let cap = (series + 100).to_string();
    let config =
        Config::load(["bench", "--access-log", "off", "--series-cap", &cap]).expect("config");
    let collector = Collector::start(config, None).await.expect("start");
    let app = collector.app();
    // Every series once.
    feed(&app, 0..series, series).await;
    let (rss_filled, _) = memory_kib();
    // Then the steady state: every record updates an existing series.
    let cpu_before = threads_cpu();
    let started = Instant::now();
    feed(&app, series..series + steady, series).await;
    let wall = started.elapsed();
    let cpu = threads_cpu().saturating_sub(cpu_before);
    let mut render_ms = Vec::new();
    let mut render_cpu_ms = Vec::new();
    let mut exposition_bytes = 0;
    for _ in 0..=RENDERS {
        let cpu_before = threads_cpu();
        let started = Instant::now();
        let bytes = router::scrape_bytes(&app).await;
        render_ms.push(started.elapsed().as_secs_f64() * 1e3);
        render_cpu_ms.push(threads_cpu().saturating_sub(cpu_before).as_secs_f64() * 1e3);
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        exposition_bytes = text.len();
        let last = format!("endpoint=\"{}\"", records::series_route(series - 1));
        assert!(text.contains(&last), "the last series is served");
        assert!(text.ends_with("# EOF\n"), "a whole exposition");
        assert!(!text.contains("endpoint=\"other\""), "no series overflowed");
    }
    let (first_render_ms, first_render_cpu_ms) = (render_ms.remove(0), render_cpu_ms.remove(0));
    let (rss, hwm) = memory_kib();
    collector.shutdown().await.expect("shutdown");
    eprintln!(
        "  {series} series: RSS {:.1} MiB (idle {:.1}, peak {:.1}), first render {first_render_ms:.1} ms ({first_render_cpu_ms:.1} ms CPU), then \
         {render_ms:.1?} ms ({render_cpu_ms:.1?} ms CPU), \
         {:.2} µs CPU per record",
        rss as f64 / 1024.0,
        rss_idle as f64 / 1024.0,
        hwm as f64 / 1024.0,
        cpu.as_secs_f64() * 1e6 / steady as f64
    );
    json!({
        "series": series,
        "rss_idle_mib": rss_idle as f64 / 1024.0,
        "rss_filled_mib": rss_filled as f64 / 1024.0,
        "rss_mib": rss as f64 / 1024.0,
        "peak_rss_mib": hwm as f64 / 1024.0,
        "first_render_ms": first_render_ms,
        "first_render_cpu_ms": first_render_cpu_ms,
        "render_ms": render_ms,
        "render_cpu_ms": render_cpu_ms,
        "exposition_bytes": exposition_bytes,
        "cpu_us_per_record": cpu.as_secs_f64() * 1e6 / steady as f64,
        "wall_us_per_record": wall.as_secs_f64() * 1e6 / steady as f64,
    })
}

/// Posts records `numbers` (record `n` in series `n % series`) in batches.
async fn feed(app: &axum::Router, numbers: std::ops::Range<u64>, series: u64) {
    let mut first = numbers.start;
    while first < numbers.end {
        let end = (first + records::BATCH).min(numbers.end);
        let body = records::ndjson(
            (first..end)
                .map(|n| records::of_series(n % series, n, (n % series).is_multiple_of(10))),
        );
        router::post_records(app, body).await;
        first = end;
    }
}
