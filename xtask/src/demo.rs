//! `cargo xtask demo`: builds the plugins, starts the collector (with a spool directory for the
//! Traefik plugin) and shows where it listens; runs until Ctrl-C.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::{Ctx, proc, wasm};

/// Where the demo collector listens unless `GATETRACE_LISTEN` says otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

pub fn run(ctx: &Ctx) -> Result<()> {
    let wasm_dir = wasm::build_all(ctx)?;
    let listen: SocketAddr = std::env::var("GATETRACE_LISTEN")
        .unwrap_or_else(|_| DEFAULT_LISTEN.to_owned())
        .parse()
        .context("GATETRACE_LISTEN must be an address such as 127.0.0.1:9464")?;
    let spool = ctx.root.join("target/demo/spool");
    std::fs::create_dir_all(&spool).with_context(|| format!("create {}", spool.display()))?;

    proc::run(
        crate::cargo().args(["build", "-p", "gatetrace-collector"]),
        Duration::from_secs(1800),
    )?;
    let mut collector = proc::spawn(
        crate::cargo()
            .args(["run", "-q", "-p", "gatetrace-collector", "--", "--listen"])
            .arg(listen.to_string())
            .arg("--spool-dir")
            .arg(&spool),
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(listen) {
        if let Some(status) = collector.try_wait()? {
            bail!("the collector exited before it was ready: {status}");
        }
        if proc::interrupted() || Instant::now() >= deadline {
            proc::kill_group(&mut collector);
            bail!("the collector did not answer /ready on {listen} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "\nxtask demo: plugins in {}\n\
         xtask demo: collector listening on http://{listen}\n\
         \x20 metrics:  http://{listen}/metrics\n\
         \x20 health:   http://{listen}/health, http://{listen}/ready\n\
         \x20 ingest:   POST http://{listen}/v1/records (proxy-wasm batches)\n\
         \x20 spool:    {} (Traefik plugin appends here)\n\
         Ctrl-C stops it.",
        wasm_dir.display(),
        spool.display()
    );
    loop {
        if let Some(status) = collector.try_wait()? {
            bail!("the collector exited: {status}");
        }
        if proc::interrupted() {
            proc::stop_group(&mut collector, Duration::from_secs(10));
            println!("xtask demo: stopped");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether `GET /ready` on `addr` answers 200.
fn ready(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.1 200")
}
