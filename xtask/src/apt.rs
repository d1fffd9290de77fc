//! Debian packages: install what is missing with `apt-get` (via `sudo -n` when not root),
//! non-interactively and with timeouts; packages already installed are never touched.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::proc;

static UPDATED: AtomicBool = AtomicBool::new(false);

/// Whether the Debian package `name` is installed.
pub fn installed(name: &str) -> bool {
    proc::capture(
        Command::new("dpkg-query").args(["-W", "-f=${Status}", name]),
        Duration::from_secs(30),
    )
    .is_ok_and(|status| status.trim() == "install ok installed")
}

/// Installs those of `packages` that are missing (running `apt-get update` first, once).
pub fn ensure(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|name| !installed(name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    println!("xtask: installing Debian packages: {}", missing.join(" "));
    if !UPDATED.swap(true, Ordering::SeqCst) {
        proc::run(apt_get().arg("update").arg("-q"), Duration::from_secs(300))
            .context("apt-get update")?;
    }
    proc::run(
        apt_get()
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
        Duration::from_secs(1200),
    )
    .with_context(|| format!("apt-get install {}", missing.join(" ")))?;
    println!(
        "xtask: installed {} in {}",
        missing.join(" "),
        proc::secs(started.elapsed())
    );
    Ok(())
}

/// `apt-get`, non-interactive, waiting a while for a lock another apt holds.
fn apt_get() -> Command {
    let mut cmd = if is_root() {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", "--preserve-env=DEBIAN_FRONTEND", "apt-get"]);
        sudo
    };
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .args(["-o", "DPkg::Lock::Timeout=300"]);
    cmd
}

fn is_root() -> bool {
    proc::capture(Command::new("id").arg("-u"), Duration::from_secs(10))
        .is_ok_and(|uid| uid.trim() == "0")
}
