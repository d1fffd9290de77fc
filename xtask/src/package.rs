//! `cargo xtask package`: `target/gatetrace-<version>.zip` as the Traefik plugin catalog expects
//! a wasm plugin: the repository root's `.traefik.yml` and the built `plugin.wasm`, both at the
//! top level of the archive.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use crate::{Ctx, wasm};

/// The manifest the catalog reads, at the repository root.
const MANIFEST: &str = ".traefik.yml";

/// The name the manifest's `wasmPath` gives the module.
const MODULE: &str = "plugin.wasm";

/// Builds the plugin and writes the zip; returns its path.
pub fn write_zip(ctx: &Ctx) -> Result<PathBuf> {
    let wasm_dir = wasm::build_all(ctx)?;
    let manifest_path = ctx.root.join(MANIFEST);
    let manifest = std::fs::read(&manifest_path)
        .with_context(|| format!("read {}", manifest_path.display()))?;
    let module_path = wasm_dir.join(wasm::TRAEFIK_PLUGIN);
    let module =
        std::fs::read(&module_path).with_context(|| format!("read {}", module_path.display()))?;
    let out = ctx.root.join(format!(
        "target/gatetrace-{}.zip",
        env!("CARGO_PKG_VERSION")
    ));
    let file = std::fs::File::create(&out).with_context(|| format!("create {}", out.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    // Stored, not deflated: the module is small and this keeps a compressor out of xtask.
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .unix_permissions(0o644);
    for (name, bytes) in [(MANIFEST, &manifest), (MODULE, &module)] {
        zip.start_file(name, options)
            .with_context(|| format!("add {name} to {}", out.display()))?;
        zip.write_all(bytes)?;
    }
    zip.finish()
        .with_context(|| format!("finish {}", out.display()))?;
    println!(
        "xtask: wrote {} ({MANIFEST}, {MODULE} of {} bytes)",
        out.display(),
        module.len()
    );
    Ok(out)
}
