//! The npm package (`plugin/js`): `wasm-bindgen-cli` at exactly the version in `Cargo.lock`
//! (installed once with cargo into the cache; `wasm-pack` would download binaries from GitHub),
//! the package laid out in `target/wasm/npm/gatetrace/`, and the Node example's dependencies
//! installed from the npm registry by its committed `package-lock.json`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::{Ctx, proc};

/// Environment variables (name, path) an install provides to the tests (`tools::Vars`).
type Vars = Vec<(&'static str, PathBuf)>;

/// The package's sources (loaders, JS layer, types, `package.json`).
const PACKAGE_SOURCES: &str = "plugin/js/package";
/// Where the package is laid out, under `target/wasm/`.
pub const PACKAGE_DIR: &str = "npm/gatetrace";
/// The wasm module `cargo xtask wasm` builds for the package, under `target/wasm/`.
pub const PACKAGE_WASM: &str = "gatetrace_js.wasm";
/// The example whose dependencies the e2e tests use (`npm ci`), and where it links the package.
const EXAMPLE_DIR: &str = "examples/node-mcp";
/// How long `cargo install wasm-bindgen-cli` may take on a fresh machine.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(1800);
const NPM_TIMEOUT: Duration = Duration::from_secs(600);

/// The `wasm-bindgen` version the workspace locked (the CLI must be the same).
fn locked_wasm_bindgen(root: &Path) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("read Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            let version = lines
                .next()
                .and_then(|l| l.strip_prefix("version = \""))
                .and_then(|l| l.strip_suffix('"'));
            if let Some(version) = version {
                return Ok(version.to_owned());
            }
        }
    }
    bail!("Cargo.lock has no wasm-bindgen package")
}

/// `wasm-bindgen` of the locked version, installed into the cache when missing. Without
/// `--locked`: the CLI's lock names crate versions a registry mirror may not have; its default
/// TLS feature is left out (only its test runner downloads anything).
pub fn wasm_bindgen_cli(ctx: &Ctx) -> Result<PathBuf> {
    let version = locked_wasm_bindgen(&ctx.root)?;
    let root = ctx.cache.join(format!("wasm-bindgen-cli-{version}"));
    let bin = root.join("bin/wasm-bindgen");
    let has_version = |bin: &Path| {
        proc::capture(Command::new(bin).arg("--version"), Duration::from_secs(30))
            .is_ok_and(|out| out.split_whitespace().nth(1) == Some(version.as_str()))
    };
    if bin.is_file() && has_version(&bin) {
        return Ok(bin);
    }
    println!(
        "xtask: cargo install wasm-bindgen-cli {version} into {}",
        root.display()
    );
    proc::run(
        crate::cargo()
            .args([
                "install",
                "wasm-bindgen-cli",
                "--no-default-features",
                "--version",
            ])
            .arg(format!("={version}"))
            .arg("--root")
            .arg(&root),
        INSTALL_TIMEOUT,
    )
    .context("cargo install wasm-bindgen-cli")?;
    if !has_version(&bin) {
        bail!("{} is not wasm-bindgen {version}", bin.display());
    }
    Ok(bin)
}

/// The CLI as a tool install (`cargo xtask tools`).
pub fn wasm_bindgen_vars(ctx: &Ctx) -> Result<Vars> {
    Ok(vec![("GATETRACE_WASM_BINDGEN", wasm_bindgen_cli(ctx)?)])
}

/// Lays out `target/wasm/npm/gatetrace/`: the package's sources and `gen/` from
/// `wasm-bindgen --target web`. Returns the package directory.
pub fn build_package(ctx: &Ctx, wasm: &Path) -> Result<PathBuf> {
    let cli = wasm_bindgen_cli(ctx)?;
    let out = ctx.wasm_dir().join(PACKAGE_DIR);
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("remove {}", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let sources = ctx.root.join(PACKAGE_SOURCES);
    for entry in
        std::fs::read_dir(&sources).with_context(|| format!("read {}", sources.display()))?
    {
        let path = entry?.path();
        if path.is_file() {
            let name = path.file_name().context("a file name")?;
            std::fs::copy(&path, out.join(name))
                .with_context(|| format!("copy {}", path.display()))?;
        }
    }
    proc::run(
        Command::new(&cli)
            .args(["--target", "web", "--out-name", "gatetrace_js", "--out-dir"])
            .arg(out.join("gen"))
            .arg(wasm),
        Duration::from_secs(300),
    )
    .context("wasm-bindgen")?;
    let size = std::fs::metadata(out.join("gen/gatetrace_js_bg.wasm"))
        .context("wasm-bindgen wrote no gen/gatetrace_js_bg.wasm")?
        .len();
    println!(
        "xtask: npm package at {} ({size} bytes of wasm)",
        out.strip_prefix(&ctx.root).unwrap_or(&out).display()
    );
    Ok(out)
}

/// `npm ci` in the Node example (when its lock changed since the last install), then
/// `node_modules/gatetrace` linked to the package `cargo xtask wasm` lays out.
pub fn example_dependencies(ctx: &Ctx) -> Result<Vars> {
    let dir = ctx.root.join(EXAMPLE_DIR);
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let fresh = matches!((modified(&installed), modified(&lock)), (Some(i), Some(l)) if i >= l);
    if !fresh {
        println!("xtask: npm ci in {}", dir.display());
        proc::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
            NPM_TIMEOUT,
        )
        .context("npm ci (the Node example)")?;
    }
    let link = dir.join("node_modules/gatetrace");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(ctx.wasm_dir().join(PACKAGE_DIR), &link)
        .with_context(|| format!("link {}", link.display()))?;
    let node = proc::capture(
        Command::new("sh").args(["-c", "command -v node"]),
        Duration::from_secs(10),
    )
    .context("node is not installed")?;
    Ok(vec![
        ("GATETRACE_NODE", PathBuf::from(node.trim())),
        ("GATETRACE_NODE_EXAMPLE", dir),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_version_is_the_one_the_workspace_locked() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let version = locked_wasm_bindgen(root).unwrap();
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("wasm-bindgen = \"={version}\"")),
            "the workspace pins wasm-bindgen exactly to the locked {version}"
        );
    }
}
