//! `cargo xtask demo`: the MCP OAuth gateway in miniature, observed end to end, on 127.0.0.1.
//! Builds the plugin and the collector, installs what it runs (cached), starts Redis, the
//! seed's auth service, a FastMCP server, real Traefik with gatetrace on every router, the
//! collector, the exporters and Prometheus; drives a realistic traffic mix; prints what an
//! operator looks at while sessions are still open; then stops all it started (or, with
//! `--keep`, keeps it running with light traffic until Ctrl-C).

mod config;
pub(crate) mod http;
mod report;
mod services;
mod stack;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::{Ctx, proc, tools, wasm};
use config::{Dirs, Ports};
use stack::Stack;

/// Options of `cargo xtask demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep everything running with light traffic until Ctrl-C.
    #[arg(long)]
    keep: bool,
    /// Seconds of the full traffic mix before the figures are read.
    #[arg(long, default_value_t = 25, value_name = "SECS", value_parser = clap::value_parser!(u64).range(5..=600))]
    mix_secs: u64,
    /// Working directory (configs, logs, spool, checkpoint, Prometheus data); emptied at start.
    /// Default: `target/demo/`.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The file (in the working directory) naming every URL of a running demo, as `KEY=value`
/// lines the `justfile`'s recipes read.
pub const DEMO_ENV: &str = "demo.env";

/// Longest wait for the traffic mix beyond its planned length.
const MIX_SLACK: Duration = Duration::from_secs(90);

/// Time for Prometheus to scrape (2 s) and evaluate (2 s) what the mix left, after it ends.
const SETTLE: Duration = Duration::from_secs(5);

/// How long the driver gets to close its open sessions when asked to stop.
const DRIVER_GRACE: Duration = Duration::from_secs(20);

pub fn run(ctx: &Ctx, args: &DemoArgs) -> Result<()> {
    let started = Instant::now();
    let say = |text: &str| stack::say(started, text);
    say("building the plugin (cargo xtask wasm)");
    let wasm_dir = wasm::build_all(ctx)?;
    say("building the collector");
    let collector = services::build_collector()?;
    say(&format!(
        "installing what the demo runs (cached under {})",
        ctx.cache.display()
    ));
    let tools = tools::demo_tools(ctx)?;
    let dirs = Dirs::prepare(
        &args
            .dir
            .clone()
            .unwrap_or_else(|| ctx.root.join("target/demo")),
    )?;
    let ports = Ports::pick()?;
    say(&format!(
        "starting the stack in {} (logs in {})",
        dirs.root.display(),
        dirs.logs.display()
    ));
    let mut stack = Stack::new(&dirs.logs, started);
    let outcome = run_stack(
        ctx,
        args,
        &services::Setup {
            tools: &tools,
            dirs: &dirs,
            ports: &ports,
            collector: &collector,
            wasm_dir: &wasm_dir,
        },
        &mut stack,
    );
    stack.stop_all();
    if outcome.is_ok() {
        say(&format!("done in {}", proc::secs(started.elapsed())));
    }
    outcome
}

fn run_stack(ctx: &Ctx, args: &DemoArgs, setup: &services::Setup, stack: &mut Stack) -> Result<()> {
    services::start_all(ctx, setup, stack)?;
    let driver = services::start_driver(ctx, setup, args.mix_secs, args.keep, stack)?;
    stack.say(&format!(
        "driving the traffic mix for {} s (registrations, tokens, MCP sessions, tool calls, errors)",
        args.mix_secs
    ));
    let deadline = Instant::now() + Duration::from_secs(args.mix_secs) + MIX_SLACK;
    while !driver.mix_done() {
        stack.check_alive()?;
        if proc::interrupted() {
            bail!("interrupted");
        }
        if Instant::now() >= deadline {
            bail!("the traffic mix did not finish in time (see the driver's lines above)");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stack.say("reading the figures from Prometheus while the sessions are still open");
    std::thread::sleep(SETTLE);
    let problems = report::print(&report::Sources {
        prometheus: format!("http://{}", config::loopback(setup.ports.prometheus)),
        access_log: setup.dirs.logs.join(services::ACCESS_LOG),
    })?;
    let urls = services::urls(setup);
    report::print_urls(&urls);
    let env_file = setup.dirs.root.join(DEMO_ENV);
    std::fs::write(&env_file, services::env_lines(setup, &urls, &stack.pids()))
        .with_context(|| format!("write {}", env_file.display()))?;
    if args.keep {
        stack.say(&format!(
            "running with light traffic until Ctrl-C (URLs in {})",
            env_file.display()
        ));
        while !proc::interrupted() {
            stack.check_alive()?;
            std::thread::sleep(Duration::from_millis(200));
        }
        println!();
    }
    stack.say("closing the open MCP sessions");
    if !stack.stop_one(services::DRIVER, DRIVER_GRACE) {
        bail!(
            "the driver did not close its sessions cleanly:\n{}",
            stack::tail(&setup.dirs.logs.join(format!("{}.log", services::DRIVER)))
        );
    }
    if !problems.is_empty() {
        bail!(
            "the demo did not show what it should:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}
