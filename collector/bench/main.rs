//! The collector's benchmark suite (issue 15): ingest against `serde_json`, memory and
//! `/metrics` render time by live series, record → visible latency, OTLP span export against
//! the SDK exporter, and how cost grows with series and sampling.
//! Run: `cargo run --release -p gatetrace-collector --example collector_bench -- --json PATH
//! --short|--full` (what `cargo xtask bench` runs). The other first arguments run one
//! measurement alone and print its JSON: `ingest ROUNDS RECORDS`, `series N RECORDS`,
//! `visible SAMPLES`, `otlp ROUNDS SPANS OFFERS`, `sampling ROUNDS RECORDS`; `receive grpc|http`
//! serves OTLP; `export old|new grpc|http URL SPANS [gzip]` runs one exporter alone;
//! `post-client URL RECORDS` is the ingest run's HTTP client.

mod ingest;
mod otlp;
mod proc;
mod records;
mod report;
mod router;
mod sampling;
mod sdk_baseline;
mod series;
mod suite;
mod visible;

use std::future::Future;

/// The usage line of a wrong invocation.
const USAGE: &str = "collector_bench --json PATH --short|--full \
     | ingest ROUNDS RECORDS | series N RECORDS | visible SAMPLES | otlp ROUNDS SPANS OFFERS \
     | sampling ROUNDS RECORDS | receive grpc|http | export old|new grpc|http URL SPANS [gzip] | post-client URL RECORDS";

/// Runs `work` on a runtime with one worker thread: the measured work on one core.
fn on_one_worker<T>(work: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(work)
}

fn number<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("argument {i} is a number; usage: {USAGE}"))
}

fn print(value: &serde_json::Value) {
    println!("{value}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--json") => {
            let path = args.get(1).unwrap_or_else(|| panic!("usage: {USAGE}"));
            let (plan, mode) = match args.get(2).map(String::as_str) {
                Some("--short") | None => (suite::Plan::SHORT, "--short"),
                Some("--full") => (suite::Plan::FULL, "--full"),
                Some(other) => panic!("{other:?}: usage: {USAGE}"),
            };
            let suite = suite::run(plan, mode);
            let json = serde_json::to_string_pretty(&suite).expect("JSON");
            std::fs::write(path, json + "\n").unwrap_or_else(|e| panic!("writing {path}: {e}"));
            eprintln!("collector bench: wrote {path}");
        }
        Some("ingest") => print(&on_one_worker(ingest::run(
            number(&args, 1),
            number(&args, 2),
        ))),
        Some("series") => print(&on_one_worker(series::run(
            number(&args, 1),
            number(&args, 2),
        ))),
        Some("visible") => print(&on_one_worker(visible::run(number(&args, 1)))),
        Some("otlp") => print(&on_one_worker(otlp::run(
            number(&args, 1),
            number(&args, 2),
            number(&args, 3),
        ))),
        Some("sampling") => print(&on_one_worker(sampling::run(
            number(&args, 1),
            number(&args, 2),
        ))),
        Some("receive") => on_one_worker(otlp::receive(otlp::protocol(
            args.get(1).map(String::as_str),
        ))),
        Some("export") => on_one_worker(otlp::export_alone(&args[1..])),
        Some("post-client") => on_one_worker(ingest::post_client(
            args.get(1)
                .unwrap_or_else(|| panic!("usage: {USAGE}"))
                .clone(),
            number(&args, 2),
        )),
        _ => panic!("usage: {USAGE}"),
    }
}
