//! `cargo xtask`: set-up and orchestration for gatetrace — builds the wasm plugins, installs
//! the tools the end-to-end tests need, runs every test, checks the layout rules, runs the demo,
//! runs the benchmarks and packages the plugin.

mod apt;
mod bench;
mod demo;
mod layout;
mod npm;
mod package;
mod proc;
mod test;
mod toolchain;
mod tools;
mod wasm;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "gatetrace set-up and orchestration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build both plugins, the npm package and the test fixtures to `target/wasm/` and check
    /// their ABI.
    Wasm,
    /// The one test command: fmt, clippy, wasm builds, tool installs, every test.
    Test,
    /// The MCP OAuth gateway in miniature: real Traefik with the plugin, the seed's auth
    /// service, a FastMCP server, the collector and Prometheus, driven by real traffic; prints
    /// what an operator sees, then stops everything (or keeps it running with `--keep`).
    Demo(demo::DemoArgs),
    /// Write `target/gatetrace-<version>.zip` for the Traefik plugin catalog.
    Package,
    /// Install the e2e tools and write `target/gatetrace-env.sh` (to `source` before running
    /// single e2e tests by hand with `cargo test -- --ignored`).
    Tools,
    /// Check the layout rules alone (no import circle between files, no unexplained file over
    /// 700 lines); `cargo xtask test` runs it too.
    Layout,
    /// Run every benchmark suite (short by default; `--full` for the published numbers), print
    /// one line per figure, write `BENCHMARKS.md` and the plots in `bench/curves/`.
    Bench(bench::BenchArgs),
    /// Run one benchmark suite built into the xtask (what `bench` runs; see its suite table).
    #[command(hide = true)]
    BenchSuite(bench::SuiteArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match proc::install_interrupt_handler()
        .and_then(|()| Ctx::new())
        .and_then(|ctx| dispatch(&cli.command, &ctx))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: &Command, ctx: &Ctx) -> Result<()> {
    match command {
        Command::Wasm => wasm::build_all(ctx).map(drop),
        Command::Test => test::run(ctx),
        Command::Demo(args) => demo::run(ctx, args),
        Command::Package => package::write_zip(ctx).map(drop),
        Command::Tools => tools::write_env_file(ctx),
        Command::Layout => layout::check(&ctx.root),
        Command::Bench(args) => bench::run(ctx, args),
        Command::BenchSuite(args) => bench::run_suite(ctx, args),
    }
}

/// Where things are: the workspace being worked on and the cache kept outside it.
#[derive(Debug)]
pub struct Ctx {
    /// The workspace root (holds the top `Cargo.toml`).
    pub root: PathBuf,
    /// Tools, virtualenvs and the wasm std build, shared by every clone on this machine.
    pub cache: PathBuf,
}

impl Ctx {
    fn new() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask lives one level below the workspace root")?
            .to_path_buf();
        let cache = match std::env::var_os("GATETRACE_CACHE") {
            Some(dir) => PathBuf::from(dir),
            None => std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
                .context("neither GATETRACE_CACHE, XDG_CACHE_HOME nor HOME is set")?
                .join("gatetrace"),
        };
        std::fs::create_dir_all(&cache)
            .with_context(|| format!("create cache dir {}", cache.display()))?;
        Ok(Self { root, cache })
    }

    /// `target/wasm/` of the workspace: where the built `.wasm` files land.
    pub fn wasm_dir(&self) -> PathBuf {
        self.root.join("target/wasm")
    }
}

/// The cargo that runs this xtask (cargo sets `CARGO`), so child builds use the same one.
pub fn cargo() -> std::process::Command {
    std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}
