//! `cargo xtask test`, the one test command: fmt, clippy, the core for wasm, the plugins, the
//! tools the end-to-end tests drive, then every test (e2e included), each step timed; it ends
//! with one summary line and fails if any step did.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::proc::{self, Output};
use crate::{Ctx, tools, wasm};

/// Tests whose name contains this run after all others, one at a time.
const ALONE: &str = "_alone";

/// How one step went.
#[derive(Debug)]
struct Step {
    name: String,
    took: Duration,
    outcome: Result<()>,
}

/// Test counts summed over cargo's `test result:` lines.
#[derive(Debug, Default, PartialEq, Eq)]
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
    let test = |args: &[&str], counts: &mut Counts| -> Result<()> {
        let mut cmd = crate::cargo();
        cmd.args(["test", "--workspace", "--no-fail-fast"])
            .args(args)
            .envs(env.iter().map(|(name, path)| (*name, path)));
        let finished = proc::exec(&mut cmd, Output::Tee, Duration::from_secs(2700))?;
        let found = parse_counts(&finished.stdout);
        counts.passed += found.passed;
        counts.failed += found.failed;
        counts.ignored += found.ignored;
        if !finished.status.success() {
            bail!("{} failed: {}", proc::show(&cmd), finished.status);
        }
        Ok(())
    };
    step("cargo test (all, e2e included)", &mut || {
        test(&["--", "--include-ignored", "--skip", ALONE], &mut counts)
    })?;
    step(
        &format!("cargo test (*{ALONE}, one at a time)"),
        &mut || {
            test(
                &[
                    "--lib",
                    "--bins",
                    "--tests",
                    "--",
                    "--include-ignored",
                    "--test-threads=1",
                    ALONE,
                ],
                &mut counts,
            )
        },
    )?;

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
