//! Which compiler builds the wasm targets: rustup's, when every needed wasm std is installed,
//! otherwise Debian's `rustc-web` with `-Zbuild-std` (installed here when missing; see
//! `shared/reference/TOOLCHAIN.md`). `rustup target add` is never called: offline it hangs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::{apt, proc};

/// Debian packages of the offline recipe: rustc 1.96 at `/usr/bin/rustc`, std's sources for
/// `-Zbuild-std`, the `rust-lld` linker, and the libc that wasip1 std links against.
const DEBIAN_PACKAGES: [&str; 4] = ["rustc-web", "rust-web-src", "lld-22", "wasi-libc"];

/// The wasm linker of Debian's `lld-22`.
const WASM_LD: &str = "/usr/bin/wasm-ld-22";

/// A wasm-capable toolchain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toolchain {
    /// rustup's toolchain with prebuilt wasm std (`rustup target add` was run by the user).
    Rustup,
    /// Debian's `rustc-web`, building std from source.
    Debian,
}

impl Toolchain {
    /// Picks rustup's toolchain when it has std for all `targets`, else makes sure Debian's
    /// recipe is installed.
    pub fn ensure(targets: &[&str]) -> Result<Self> {
        if rustup_has(targets) {
            println!("xtask: using rustup's wasm std for {}", targets.join(", "));
            return Ok(Self::Rustup);
        }
        apt::ensure(&DEBIAN_PACKAGES).context("install Debian's wasm toolchain")?;
        println!(
            "xtask: using Debian rustc-web with -Zbuild-std for {}",
            targets.join(", ")
        );
        Ok(Self::Debian)
    }

    /// `cargo build --profile wasm-release --target <target>` for this toolchain, with its own
    /// target directory under the cache (so the std build is kept across clones and the native
    /// build is never disturbed). Add `-p` arguments.
    pub fn build(self, cache: &Path, target: &str) -> Command {
        let mut cmd = crate::cargo();
        cmd.env("CARGO_TARGET_DIR", self.target_dir(cache))
            // Flags live here and nowhere else: any change would rebuild std.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .args(["build", "--profile", "wasm-release", "--target", target]);
        if self == Self::Debian {
            cmd.env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1")
                .env(
                    "CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS",
                    "-L native=/usr/lib/wasm32-wasi",
                )
                // `rust-lld` would come with `rust-web-llvm` and all of LLVM; lld-22's own
                // wasm linker does the same job.
                .env("CARGO_TARGET_WASM32_WASIP1_LINKER", WASM_LD)
                .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", WASM_LD)
                .arg("-Zbuild-std=std,panic_abort");
        }
        cmd
    }

    /// Where this toolchain's wasm builds go.
    pub fn target_dir(self, cache: &Path) -> PathBuf {
        cache.join(match self {
            Self::Rustup => "wasm-target-rustup",
            Self::Debian => "wasm-target-debian",
        })
    }
}

/// Whether the active `rustc` has prebuilt std for every target (a quick look at its sysroot).
fn rustup_has(targets: &[&str]) -> bool {
    let Ok(sysroot) = proc::capture(
        Command::new("rustc").args(["--print", "sysroot"]),
        Duration::from_secs(30),
    ) else {
        return false;
    };
    let rustlib = Path::new(sysroot.trim()).join("lib/rustlib");
    targets
        .iter()
        .all(|target| has_std(&rustlib.join(target).join("lib")))
}

/// Whether `dir` holds a prebuilt `libstd-*.rlib`.
fn has_std(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libstd-") && name.ends_with(".rlib")
        })
    })
}
