//! `cargo xtask test`, the one test command: fmt, clippy, the layout rules, the core for wasm,
//! the plugins, the tools the end-to-end tests drive, then every test (e2e included) under
//! cargo-nextest and the doc tests, each step timed; one summary line; fails if any step did.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::proc::{self, Output};
use crate::{Ctx, layout, tools, wasm};

/// How long `cargo install cargo-nextest` may take on a fresh machine.
const NEXTEST_INSTALL_TIMEOUT: Duration = Duration::from_secs(1200);

/// How one step went.
#[derive(Debug)]
struct Step {
    name: String,
    took: Duration,
    outcome: Result<()>,
}

/// Test counts: nextest's summary plus libtest's `test result:` lines (doc tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

pub fn run(ctx: &Ctx) -> Result<()> {
    let mut steps = Vec::new();
    let mut step = |name: &str, body: &mut dyn FnMut() -> Result<()>| -> Result<bool> {
        println!("\n==== xtask test: {name}");
        let started = Instant::now();
        let outcome = body();
        if proc::interrupted() {
            bail!("interrupted");
        }
        let ok = outcome.is_ok();
        if let Err(err) = &outcome {
            eprintln!("xtask test: step `{name}` failed: {err:#}");
        }
        steps.push(Step {
            name: name.to_owned(),
            took: started.elapsed(),
            outcome,
        });
        Ok(ok)
    };

    step("cargo fmt --check", &mut || {
        proc::run(
            crate::cargo().args(["fmt", "--all", "--", "--check"]),
            Duration::from_secs(300),
        )
    })?;
    step("cargo clippy -D warnings", &mut || {
        proc::run(
            crate::cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--keep-going",
                "--",
                "-D",
                "warnings",
            ]),
            Duration::from_secs(2400),
        )
    })?;
    step(
        "layout: no import circle, no unexplained file over 700 lines",
        &mut || layout::check(&ctx.root),
    )?;
    step("gatetrace-core for wasm targets", &mut || {
        wasm::build_core(ctx)
    })?;
    step("cargo xtask wasm", &mut || wasm::build_all(ctx).map(drop))?;

    let mut env = vec![("GATETRACE_WASM_DIR", ctx.wasm_dir())];
    for install in &tools::INSTALLS {
        step(&format!("install {}", install.name), &mut || {
            env.extend((install.run)(ctx)?);
            Ok(())
        })?;
    }

    let mut counts = Counts::default();
    step("cargo-nextest present", &mut ensure_nextest)?;
    step("cargo nextest run (all, e2e included)", &mut || {
        let mut cmd = crate::cargo();
        // Test groups, threads and timeouts: `.config/nextest.toml`.
        cmd.args([
            "nextest",
            "run",
            "--workspace",
            "--run-ignored",
            "all",
            "--no-fail-fast",
        ])
        .envs(env.iter().map(|(name, path)| (*name, path)));
        let finished = proc::exec(&mut cmd, Output::TeeBoth, Duration::from_secs(3600))?;
        counts.add(parse_nextest_summary(&finished.stderr));
        if !finished.status.success() {
            bail!("{} failed: {}", proc::show(&cmd), finished.status);
        }
        Ok(())
    })?;
    step("cargo test --doc (nextest runs no doc tests)", &mut || {
        let mut cmd = crate::cargo();
        cmd.args(["test", "--doc", "--workspace", "--no-fail-fast"]);
        let finished = proc::exec(&mut cmd, Output::Tee, Duration::from_secs(1200))?;
        counts.add(parse_counts(&finished.stdout));
        if !finished.status.success() {
            bail!("{} failed: {}", proc::show(&cmd), finished.status);
        }
        Ok(())
    })?;

    println!("\n==== xtask test: steps");
    let mut failed_steps = Vec::new();
    for step in &steps {
        let mark = if step.outcome.is_ok() { "ok  " } else { "FAIL" };
        println!("  {mark} {:>8}  {}", proc::secs(step.took), step.name);
        if step.outcome.is_err() {
            failed_steps.push(step.name.as_str());
        }
    }
    let total: Duration = steps.iter().map(|step| step.took).sum();
    println!("  total {:>8}", proc::secs(total));
    if !failed_steps.is_empty() {
        println!("  failed steps: {}", failed_steps.join(", "));
    }
    // The closing line in the plain form CI readers expect: `word: N passed, N failed[, N skipped]`.
    let skipped = if counts.ignored > 0 {
        format!(", {} skipped", counts.ignored)
    } else {
        String::new()
    };
    println!(
        "tests: {} passed, {} failed{skipped}",
        counts.passed, counts.failed
    );
    if failed_steps.is_empty() && counts.failed == 0 {
        Ok(())
    } else {
        bail!("{} step(s) failed", failed_steps.len().max(1))
    }
}

impl Counts {
    fn add(&mut self, more: Self) {
        self.passed += more.passed;
        self.failed += more.failed;
        self.ignored += more.ignored;
    }
}

/// Installs cargo-nextest when this machine lacks it (the project's machines have it).
fn ensure_nextest() -> Result<()> {
    let present = proc::exec(
        crate::cargo().args(["nextest", "--version"]),
        Output::Capture,
        Duration::from_secs(60),
    )
    .is_ok_and(|finished| finished.status.success());
    if present {
        return Ok(());
    }
    println!("cargo-nextest is missing: installing it with `cargo install cargo-nextest --locked`");
    proc::run(
        crate::cargo().args(["install", "cargo-nextest", "--locked"]),
        NEXTEST_INSTALL_TIMEOUT,
    )
}

/// Reads nextest's closing `Summary [ 1.2s] 9 tests run: 7 passed (1 slow), 1 failed,
/// 1 timed out, 2 skipped` line; timed-out tests count as failed.
fn parse_nextest_summary(stderr: &str) -> Counts {
    let mut counts = Counts::default();
    let Some(line) = stderr
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with("Summary") && line.contains(" run: "))
    else {
        return counts;
    };
    let Some((_, tally)) = line.split_once(" run: ") else {
        return counts;
    };
    for part in tally.split(',') {
        let mut words = part.split_whitespace();
        let (Some(number), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            continue;
        };
        match what {
            "passed" => counts.passed += number,
            "failed" | "timed" => counts.failed += number,
            "skipped" => counts.ignored += number,
            _ => {}
        }
    }
    counts
}

/// Sums libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; ...` lines.
fn parse_counts(stdout: &str) -> Counts {
    let mut counts = Counts::default();
    for line in stdout.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            let (Some(number), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => counts.passed += number,
                "failed" => counts.failed += number,
                "ignored" => counts.ignored += number,
                _ => {}
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nextest_summary_with_slow_timed_out_and_skipped() {
        let err = "\
    Starting 9 tests across 3 binaries
        PASS [   0.010s] testkit::http get
------------
     Summary [  12.345s] 9 tests run: 6 passed (1 slow), 1 failed, 1 timed out, 2 skipped
        FAIL [   0.100s] gatetrace-e2e::parity both_abis_agree
";
        assert_eq!(
            parse_nextest_summary(err),
            Counts {
                passed: 6,
                failed: 2,
                ignored: 2
            }
        );
        assert_eq!(parse_nextest_summary("no summary here"), Counts::default());
    }

    #[test]
    fn sums_result_lines_and_ignores_everything_else() {
        let out = "\
running 3 tests
test a ... ok
test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 2 filtered out; finished in 0.01s

test result: FAILED. 4 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.50s
the result: 9 passed
";
        assert_eq!(
            parse_counts(out),
            Counts {
                passed: 7,
                failed: 2,
                ignored: 1
            }
        );
    }
}
