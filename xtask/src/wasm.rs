//! `cargo xtask wasm`: builds the plugins, the npm package's module and the harness fixtures for
//! wasm, copies them to `target/wasm/`, lays out Traefik's local-plugin directory and the npm
//! package, and checks each module's ABI.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use wasmparser::{Parser, Payload, Validator, WasmFeatures};

use crate::proc::{self, Output};
use crate::toolchain::Toolchain;
use crate::{Ctx, apt, npm};

/// Which host ABI a module must speak (what it may import and must export).
#[derive(Debug, Clone, Copy)]
enum Abi {
    /// Traefik's http-wasm.
    HttpWasm,
    /// Envoy/Istio/Kong's proxy-wasm 0.2.1.
    ProxyWasm,
}

impl Abi {
    /// Modules the guest may import from.
    fn allowed_imports(self) -> &'static [&'static str] {
        match self {
            Self::HttpWasm => &["http_handler", "wasi_snapshot_preview1"],
            Self::ProxyWasm => &["env", "wasi_snapshot_preview1"],
        }
    }

    /// Exports a host needs (the proxy-wasm SDK exports every callback; these are the ones the
    /// plugin uses).
    fn required_exports(self) -> &'static [&'static str] {
        match self {
            Self::HttpWasm => &["memory", "handle_request", "handle_response"],
            Self::ProxyWasm => &[
                "memory",
                "proxy_abi_version_0_2_1",
                "proxy_on_memory_allocate",
                "proxy_on_context_create",
                "proxy_on_vm_start",
                "proxy_on_configure",
                "proxy_on_request_headers",
                "proxy_on_response_headers",
                "proxy_on_log",
                "proxy_on_tick",
                "proxy_on_http_call_response",
                "proxy_on_done",
                "proxy_on_delete",
            ],
        }
    }
}

/// One built module: which package, for which target, written where under `target/wasm/`, and
/// (for the shipped plugins) which ABI it is held to. Change a target here.
#[derive(Debug)]
struct Artifact {
    package: &'static str,
    target: &'static str,
    output: &'static str,
    abi: Option<Abi>,
}

#[rustfmt::skip]
const ARTIFACTS: [Artifact; 5] = [
    Artifact { package: "gatetrace-traefik",   target: "wasm32-wasip1", output: "gatetrace-traefik.wasm",    abi: Some(Abi::HttpWasm) },
    Artifact { package: "gatetrace-proxy",     target: "wasm32-wasip1", output: "gatetrace-proxy.wasm",      abi: Some(Abi::ProxyWasm) },
    Artifact { package: "gatetrace-js",        target: "wasm32-unknown-unknown", output: npm::PACKAGE_WASM, abi: None },
    Artifact { package: "fixture-http-guest",  target: "wasm32-wasip1", output: "fixtures/http-guest.wasm",  abi: None },
    Artifact { package: "fixture-proxy-guest", target: "wasm32-wasip1", output: "fixtures/proxy-guest.wasm", abi: None },
];

/// The artifact Traefik loads from its local-plugin directory.
pub const TRAEFIK_PLUGIN: &str = "gatetrace-traefik.wasm";

/// Targets the pure core must build for (checked by `cargo xtask test`).
pub const CORE_TARGETS: [&str; 2] = ["wasm32-unknown-unknown", "wasm32-wasip1"];

/// Longest a wasm build may take (the first one builds std from source).
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

/// Builds every artifact into `target/wasm/`, then checks them all; fails on any violation
/// (after copying, so the files are there to inspect). Returns the `target/wasm/` directory.
pub fn build_all(ctx: &Ctx) -> Result<PathBuf> {
    let started = Instant::now();
    let targets: BTreeSet<&str> = ARTIFACTS.iter().map(|a| a.target).collect();
    let toolchain = Toolchain::ensure(&targets.iter().copied().collect::<Vec<_>>())?;
    let mut problems = String::new();
    let mut built = BTreeMap::new();
    for target in &targets {
        let mut cmd = toolchain.build(&ctx.cache, target);
        // One broken crate must not keep the others' artifacts from being built.
        cmd.args(["--keep-going", "--message-format=json-render-diagnostics"]);
        for artifact in ARTIFACTS.iter().filter(|a| a.target == *target) {
            cmd.args(["-p", artifact.package]);
        }
        let finished = proc::exec(&mut cmd, Output::Keep, BUILD_TIMEOUT)
            .with_context(|| format!("wasm build for {target}"))?;
        if !finished.status.success() {
            let _ = writeln!(problems, "  the build for {target} failed (errors above)");
        }
        for (name, path) in wasm_outputs(&finished.stdout) {
            built.insert((*target, name), path);
        }
    }

    let out_dir = ctx.wasm_dir();
    for artifact in &ARTIFACTS {
        let dest = out_dir.join(artifact.output);
        let shown = dest.strip_prefix(&ctx.root).unwrap_or(&dest).display();
        let crate_name = artifact.package.replace('-', "_");
        let Some(path) = built.get(&(artifact.target, crate_name)) else {
            // Never leave an old artifact behind for tests to load.
            let _ = std::fs::remove_file(&dest);
            let _ = writeln!(problems, "  {}: not built", artifact.output);
            println!("xtask: {:>9}        {shown}", "NOT BUILT");
            continue;
        };
        if artifact.abi.is_some() {
            shrink(path, &dest)?;
        } else {
            copy(path, &dest)?;
        }
        let bytes = std::fs::read(&dest).with_context(|| format!("read {}", dest.display()))?;
        println!("xtask: {:>9} bytes  {shown}", bytes.len());
        if let Err(problem) = check(&bytes, artifact.abi) {
            let _ = writeln!(problems, "  {}: {problem:#}", artifact.output);
        }
    }
    traefik_plugin_dir(ctx, &out_dir)?;
    let package_wasm = out_dir.join(npm::PACKAGE_WASM);
    if package_wasm.is_file()
        && let Err(err) = npm::build_package(ctx, &package_wasm)
    {
        let _ = writeln!(problems, "  the npm package: {err:#}");
    }
    println!("xtask: wasm built in {}", proc::secs(started.elapsed()));
    if !problems.is_empty() {
        bail!("wasm artifacts are not right:\n{problems}");
    }
    println!("xtask: wasm ABI checks passed");
    Ok(out_dir)
}

/// The `.wasm` files a cargo build reported (as `--message-format=json` lines), by crate name.
fn wasm_outputs(messages: &str) -> Vec<(String, PathBuf)> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .flat_map(|message| {
            let name = message["target"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let files: Vec<PathBuf> = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|file| file.as_str())
                .filter(|file| file.ends_with(".wasm"))
                .map(PathBuf::from)
                .collect();
            files.into_iter().map(move |file| (name.clone(), file))
        })
        .collect()
}

/// Builds `gatetrace-core` for every target in [`CORE_TARGETS`] (it must stay pure: no I/O
/// that would tie it to one host).
pub fn build_core(ctx: &Ctx) -> Result<()> {
    let toolchain = Toolchain::ensure(&CORE_TARGETS)?;
    for target in CORE_TARGETS {
        proc::run(
            toolchain
                .build(&ctx.cache, target)
                .args(["-p", "gatetrace-core"]),
            BUILD_TIMEOUT,
        )
        .with_context(|| format!("build gatetrace-core for {target}"))?;
    }
    Ok(())
}

/// `target/wasm/plugins-local/src/gatetrace/` with `plugin.wasm` and `.traefik.yml`, the
/// layout Traefik's local plugins need (relative to its working directory).
fn traefik_plugin_dir(ctx: &Ctx, out_dir: &Path) -> Result<()> {
    let dir = out_dir.join("plugins-local/src/gatetrace");
    let plugin = out_dir.join(TRAEFIK_PLUGIN);
    if !plugin.is_file() {
        let _ = std::fs::remove_file(dir.join("plugin.wasm"));
        return Ok(());
    }
    copy(&plugin, &dir.join("plugin.wasm"))?;
    let manifest = ctx.root.join("plugin/http-wasm/.traefik.yml");
    if manifest.is_file() {
        copy(&manifest, &dir.join(".traefik.yml"))?;
    } else {
        let _ = std::fs::remove_file(dir.join(".traefik.yml"));
        println!(
            "xtask: note: {} does not exist yet; the plugin directory has no manifest",
            manifest.display()
        );
    }
    println!(
        "xtask: Traefik local plugin at {}",
        dir.strip_prefix(&ctx.root).unwrap_or(&dir).display()
    );
    Ok(())
}

/// Binaryen's optimiser (Debian package `binaryen`), run on the shipped plugins after rustc.
const WASM_OPT: &str = "wasm-opt";

/// `wasm-opt` flags for the shipped plugins. rustc's module keeps a `name` section (55 KB for
/// Traefik's) and code binaryen still shrinks by ≈ 14 %; `-O3` makes it smaller and faster
/// (`-Oz` saves 5 KB more on proxy-wasm for 0.5 % more instructions: see
/// `plugin/http-wasm/bench/results.md`). The features are those rustc's wasm32-wasip1 output
/// uses, so wasm-opt neither rejects nor adds others.
const WASM_OPT_FLAGS: [&str; 7] = [
    "-O3",
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-multivalue",
    "--enable-reference-types",
];

/// How long `wasm-opt` may take on one plugin.
const WASM_OPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Writes `from`, optimised for size by `wasm-opt` (installed when missing), to `to`.
fn shrink(from: &Path, to: &Path) -> Result<()> {
    apt::ensure(&["binaryen"])?;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    proc::run(
        Command::new(WASM_OPT)
            .args(WASM_OPT_FLAGS)
            .arg(from)
            .arg("-o")
            .arg(to),
        WASM_OPT_TIMEOUT,
    )
    .with_context(|| format!("{WASM_OPT} {}", from.display()))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Validates a module and, when it is held to an ABI, checks its imports and exports.
fn check(bytes: &[u8], abi: Option<Abi>) -> Result<()> {
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(bytes)
        .context("invalid module")?;
    let Some(abi) = abi else {
        return Ok(());
    };
    let mut imports = BTreeSet::new();
    let mut exports = BTreeSet::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    let import = import?;
                    imports.insert((import.module.to_owned(), import.name.to_owned()));
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    exports.insert(export?.name.to_owned());
                }
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    let foreign: Vec<String> = imports
        .iter()
        .filter(|(module, _)| !abi.allowed_imports().contains(&module.as_str()))
        .map(|(module, name)| format!("{module}.{name}"))
        .collect();
    if !foreign.is_empty() {
        problems.push(format!(
            "imports outside {:?}: {}",
            abi.allowed_imports(),
            foreign.join(", ")
        ));
    }
    let missing: Vec<&str> = abi
        .required_exports()
        .iter()
        .copied()
        .filter(|name| !exports.contains(*name))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("missing exports: {}", missing.join(", ")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest binary module with the given function imports and exports (`memory`
    /// exports its one memory; every other name exports its one defined function).
    fn module(imports: &[(&str, &str)], exports: &[&str]) -> Vec<u8> {
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        section(&mut bytes, 1, &[1, 0x60, 0, 0]); // one type: () -> ()
        let mut body = vec![imports.len() as u8];
        for (module, name) in imports {
            name_bytes(&mut body, module);
            name_bytes(&mut body, name);
            body.extend([0x00, 0x00]); // a function of type 0
        }
        section(&mut bytes, 2, &body);
        section(&mut bytes, 3, &[1, 0]); // one defined function
        section(&mut bytes, 5, &[1, 0x00, 1]); // one memory, one page
        let mut body = vec![exports.len() as u8];
        for name in exports {
            name_bytes(&mut body, name);
            if *name == "memory" {
                body.extend([0x02, 0]);
            } else {
                body.extend([0x00, imports.len() as u8]);
            }
        }
        section(&mut bytes, 7, &body);
        section(&mut bytes, 10, &[1, 2, 0, 0x0b]); // its body: no locals, end
        bytes
    }

    fn section(bytes: &mut Vec<u8>, id: u8, body: &[u8]) {
        bytes.push(id);
        let mut len = body.len();
        while len >= 0x80 {
            bytes.push((len & 0x7f) as u8 | 0x80);
            len >>= 7;
        }
        bytes.push(len as u8);
        bytes.extend_from_slice(body);
    }

    fn name_bytes(out: &mut Vec<u8>, name: &str) {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }

    #[test]
    fn accepts_a_module_that_keeps_to_its_abi() {
        let bytes = module(
            &[
                ("http_handler", "get_config"),
                ("wasi_snapshot_preview1", "fd_write"),
            ],
            &["memory", "handle_request", "handle_response"],
        );
        check(&bytes, Some(Abi::HttpWasm)).unwrap();
        let bytes = module(&[("env", "proxy_log")], Abi::ProxyWasm.required_exports());
        check(&bytes, Some(Abi::ProxyWasm)).unwrap();
    }

    #[test]
    fn reports_foreign_imports_and_missing_exports() {
        let bytes = module(&[("env", "proxy_log")], &["handle_request"]);
        let err = check(&bytes, Some(Abi::HttpWasm)).unwrap_err().to_string();
        assert!(err.contains("imports outside"), "{err}");
        assert!(err.contains("env.proxy_log"), "{err}");
        assert!(
            err.contains("missing exports: memory, handle_response"),
            "{err}"
        );
    }

    #[test]
    fn finds_the_wasm_files_cargo_reports() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"gatetrace_core"},"filenames":["/t/libgatetrace_core.rlib"]}
{"reason":"compiler-artifact","target":{"name":"gatetrace_traefik"},"filenames":["/t/libgatetrace_traefik.rlib","/t/gatetrace_traefik.wasm"]}
{"reason":"build-finished","success":false}
not json"#;
        assert_eq!(
            wasm_outputs(messages),
            vec![(
                "gatetrace_traefik".to_owned(),
                PathBuf::from("/t/gatetrace_traefik.wasm")
            )]
        );
    }

    #[test]
    fn fixtures_are_only_validated() {
        let bytes = module(&[("anything", "goes")], &[]);
        check(&bytes, None).unwrap();
        let err = check(b"\0asm\x01\0\0\0\x01", None).unwrap_err();
        assert!(format!("{err:#}").contains("invalid module"), "{err:#}");
    }
}
