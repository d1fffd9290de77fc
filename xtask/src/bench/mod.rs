//! `cargo xtask bench [--full]`: runs every benchmark suite, prints one line per figure,
//! writes `BENCHMARKS.md` at the repository root and one SVG per curve into `bench/curves/`,
//! and fails at the end if any suite failed (after writing what the others measured).

mod machine;
mod markdown;
mod model;
mod stats;
mod suites;
mod svg;
mod traefik;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::Ctx;
use crate::proc::{self, Output};
use markdown::{CURVES_DIR, RunInfo, SuiteOutcome};
use model::SuiteResult;
use stats::{Summary, format_value};
use suites::{SUITES, Suite, XTASK};

/// The results file, at the repository root.
const BENCHMARKS_MD: &str = "BENCHMARKS.md";
/// Longest one suite may run, short and full.
const SHORT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const FULL_TIMEOUT: Duration = Duration::from_secs(150 * 60);
/// Lines of a failed suite's output kept for `BENCHMARKS.md`.
const FAILURE_TAIL_LINES: usize = 25;

/// `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The published numbers: more and longer rounds (the default is short; each suite states
    /// its rounds in its notes).
    #[arg(long)]
    full: bool,
    /// Run only these suites (by id; repeatable). `BENCHMARKS.md` then holds only them.
    #[arg(long = "suite", value_name = "ID")]
    only: Vec<String>,
}

/// `cargo xtask bench-suite`: a suite built into the xtask, run as the suite table says.
#[derive(Debug, clap::Args)]
pub struct SuiteArgs {
    /// Which built-in suite.
    suite: BuiltIn,
    /// Where to write the result.
    #[arg(long, value_name = "PATH")]
    json: PathBuf,
    /// Few short rounds.
    #[arg(long, conflicts_with = "full", required_unless_present = "full")]
    short: bool,
    /// The published rounds.
    #[arg(long)]
    full: bool,
}

/// The suites written inside the xtask.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BuiltIn {
    /// Real Traefik 3.7: bare, wasm guests, gatetrace, Traefik's own observability.
    Traefik,
}

/// Runs a built-in suite and writes its JSON.
pub fn run_suite(ctx: &Ctx, args: &SuiteArgs) -> Result<()> {
    let result = match args.suite {
        BuiltIn::Traefik => traefik::run(ctx, args.full)?,
    };
    result.check()?;
    std::fs::write(&args.json, result.to_json()?)
        .with_context(|| format!("write {}", args.json.display()))
}

/// Runs the suites, prints and writes the results; fails if any suite failed.
pub fn run(ctx: &Ctx, args: &BenchArgs) -> Result<()> {
    for id in &args.only {
        if !SUITES.iter().any(|suite| suite.id == id) {
            let known: Vec<&str> = SUITES.iter().map(|suite| suite.id).collect();
            bail!("no suite {id:?}; the suites are {}", known.join(", "));
        }
    }
    let run = RunInfo {
        date: machine::now_utc(),
        command: command_line(args),
        mode: if args.full {
            "full: the published rounds, stated per suite".to_owned()
        } else {
            "short: few rounds, stated per suite; `--full` for the published numbers".to_owned()
        },
        machine: machine::this_machine(),
    };
    // The guest, Traefik and npm suites read the plugins and the package from `target/wasm`.
    if std::env::var_os("GATETRACE_WASM_DIR").is_none() {
        crate::wasm::build_all(ctx)?;
    }
    let results_dir = ctx.root.join("target/bench");
    std::fs::create_dir_all(&results_dir)
        .with_context(|| format!("create {}", results_dir.display()))?;
    let mut outcomes = Vec::new();
    for suite in SUITES
        .iter()
        .filter(|suite| args.only.is_empty() || args.only.iter().any(|id| id == suite.id))
    {
        println!("\n==== xtask bench: {} ({})", suite.title, suite.id);
        let started = Instant::now();
        let result = run_one(ctx, suite, &results_dir, args.full);
        if proc::interrupted() {
            bail!("interrupted");
        }
        if let Err(err) = &result {
            eprintln!("xtask bench: suite {} failed: {err}", suite.id);
        }
        outcomes.push(SuiteOutcome {
            id: suite.id.to_owned(),
            title: suite.title.to_owned(),
            seconds: started.elapsed().as_secs_f64(),
            result,
        });
    }

    println!("\n==== xtask bench: figures (median, min, max over rounds)");
    for line in outcomes.iter().flat_map(summary_lines) {
        println!("{line}");
    }
    write_outputs(&ctx.root, &run, &outcomes)?;
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|outcome| outcome.result.is_err())
        .map(|outcome| outcome.id.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("suite(s) failed: {}", failed.join(", "))
    }
}

/// Runs one suite's command and reads its JSON; the error is the text `BENCHMARKS.md` shows.
fn run_one(
    ctx: &Ctx,
    suite: &Suite,
    results_dir: &Path,
    full: bool,
) -> Result<SuiteResult, String> {
    let json = results_dir.join(format!("{}.json", suite.id));
    let _ = std::fs::remove_file(&json);
    let mut cmd = suite_command(ctx, suite).map_err(|err| format!("{err:#}"))?;
    cmd.current_dir(&ctx.root)
        .arg("--json")
        .arg(&json)
        .arg(if full { "--full" } else { "--short" });
    let timeout = if full { FULL_TIMEOUT } else { SHORT_TIMEOUT };
    let finished =
        proc::exec(&mut cmd, Output::TeeBoth, timeout).map_err(|err| format!("{err:#}"))?;
    if !finished.status.success() {
        return Err(format!(
            "{} exited with {}\n{}",
            proc::show(&cmd),
            finished.status,
            tail(&finished.stderr, FAILURE_TAIL_LINES)
        ));
    }
    let text = std::fs::read_to_string(&json)
        .map_err(|err| format!("the suite wrote no {}: {err}", json.display()))?;
    let result = SuiteResult::parse(&text).map_err(|err| format!("{}: {err:#}", json.display()))?;
    if result.suite != suite.id {
        return Err(format!(
            "{} is the result of suite {:?}, not {:?}",
            json.display(),
            result.suite,
            suite.id
        ));
    }
    Ok(result)
}

/// The command the suite table names, resolved.
fn suite_command(ctx: &Ctx, suite: &Suite) -> Result<Command> {
    let (program, args) = suite
        .command
        .split_first()
        .with_context(|| format!("suite {} has an empty command", suite.id))?;
    let mut cmd = match *program {
        XTASK => Command::new(std::env::current_exe().context("find the xtask binary")?),
        "cargo" => crate::cargo(),
        path if path.contains('/') => Command::new(ctx.root.join(path)),
        name => Command::new(name),
    };
    cmd.args(args.iter());
    Ok(cmd)
}

/// One line per figure: `suite | group | name: median (min … max, n rounds) goal`.
fn summary_lines(outcome: &SuiteOutcome) -> Vec<String> {
    let Ok(result) = &outcome.result else {
        return vec![format!("{}: FAILED", outcome.id)];
    };
    result
        .figures
        .iter()
        .filter_map(|figure| {
            let summary = Summary::of(&figure.samples)?;
            let unit = if figure.unit == "ratio" {
                String::new()
            } else {
                format!(" {}", figure.unit)
            };
            let goal = figure
                .goal
                .as_ref()
                .map(|goal| format!(" [goal {goal}]"))
                .unwrap_or_default();
            Some(format!(
                "{} | {} | {}: {}{unit} (min {}, max {}, {} rounds){goal}",
                result.suite,
                figure.group,
                figure.name,
                format_value(summary.median),
                format_value(summary.min),
                format_value(summary.max),
                summary.rounds
            ))
        })
        .collect()
}

/// Writes `BENCHMARKS.md` and the plots.
fn write_outputs(root: &Path, run: &RunInfo, outcomes: &[SuiteOutcome]) -> Result<()> {
    let curves_dir = root.join(CURVES_DIR);
    std::fs::create_dir_all(&curves_dir)
        .with_context(|| format!("create {}", curves_dir.display()))?;
    for result in outcomes.iter().filter_map(|o| o.result.as_ref().ok()) {
        for curve in &result.curves {
            let file = curves_dir.join(format!("{}.svg", curve.name));
            std::fs::write(&file, svg::plot(curve))
                .with_context(|| format!("write {}", file.display()))?;
            println!("xtask bench: wrote {}", file.display());
        }
    }
    let file = root.join(BENCHMARKS_MD);
    std::fs::write(&file, markdown::document(run, outcomes))
        .with_context(|| format!("write {}", file.display()))?;
    println!("xtask bench: wrote {}", file.display());
    Ok(())
}

fn command_line(args: &BenchArgs) -> String {
    let mut line = "cargo xtask bench".to_owned();
    if args.full {
        line.push_str(" --full");
    }
    for id in &args.only {
        line.push_str(&format!(" --suite {id}"));
    }
    line
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn every_suite_id_is_unique_and_file_safe() {
        for (i, suite) in SUITES.iter().enumerate() {
            assert!(
                suite
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{}",
                suite.id
            );
            assert!(!suite.command.is_empty(), "{}", suite.id);
            assert!(SUITES[..i].iter().all(|other| other.id != suite.id));
            // A built-in suite's command is one the xtask accepts.
            if let [XTASK, args @ ..] = suite.command {
                let argv = ["cargo xtask"]
                    .iter()
                    .chain(args)
                    .chain(&["--json", "x", "--short"]);
                let parsed = crate::Cli::try_parse_from(argv);
                assert!(parsed.is_ok(), "{}: {parsed:?}", suite.id);
            }
        }
    }

    #[test]
    fn the_command_line_parses_and_says_what_it_runs() {
        let cli = crate::Cli::try_parse_from(["cargo xtask", "bench", "--full"]).unwrap();
        let crate::Command::Bench(args) = cli.command else {
            panic!("not the bench command");
        };
        assert!(args.full);
        assert_eq!(command_line(&args), "cargo xtask bench --full");
        let suite = crate::Cli::try_parse_from([
            "cargo xtask",
            "bench-suite",
            "traefik",
            "--json",
            "/tmp/t.json",
            "--short",
        ]);
        assert!(suite.is_ok(), "{suite:?}");
        let neither =
            crate::Cli::try_parse_from(["cargo xtask", "bench-suite", "traefik", "--json", "x"]);
        assert!(neither.is_err());
        let help = crate::Cli::try_parse_from(["cargo xtask", "bench", "--help"]).unwrap_err();
        assert!(help.to_string().contains("--full"), "{help}");
    }

    #[test]
    fn prints_one_line_per_figure_and_failures() {
        let result = SuiteResult::parse(
            r#"{"suite": "traefik", "title": "Traefik", "figures": [
                {"group": "Ratios", "name": "plugin ÷ bare", "unit": "ratio",
                 "samples": [0.9, 0.8, 0.85], "goal": ">= 0.90"},
                {"group": "Speed", "name": "bare", "unit": "req/s", "samples": [30000]}]}"#,
        )
        .unwrap();
        let ok = SuiteOutcome {
            id: "traefik".into(),
            title: "Traefik".into(),
            seconds: 1.0,
            result: Ok(result),
        };
        assert_eq!(
            summary_lines(&ok),
            [
                "traefik | Ratios | plugin ÷ bare: 0.850 (min 0.800, max 0.900, 3 rounds) [goal >= 0.90]",
                "traefik | Speed | bare: 30000 req/s (min 30000, max 30000, 1 rounds)",
            ]
        );
        let failed = SuiteOutcome {
            result: Err("boom".into()),
            ..ok
        };
        assert_eq!(summary_lines(&failed), ["traefik: FAILED"]);
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
    }

    #[test]
    fn a_suite_that_fails_or_writes_nothing_is_reported() {
        let ctx = Ctx {
            root: PathBuf::from("/"),
            cache: std::env::temp_dir(),
        };
        let dir = tempfile_dir();
        let failing = Suite {
            id: "failing",
            title: "Failing",
            command: &["sh", "-c", "echo broken >&2; exit 3", "sh"],
        };
        let err = run_one(&ctx, &failing, &dir, false).unwrap_err();
        assert!(
            err.contains("exit status: 3") && err.contains("broken"),
            "{err}"
        );
        let silent = Suite {
            id: "silent",
            title: "Silent",
            command: &["true"],
        };
        let err = run_one(&ctx, &silent, &dir, false).unwrap_err();
        assert!(err.contains("wrote no"), "{err}");
        // A suite gets `--json <path> --short` appended and its file is read back.
        let writing = Suite {
            id: "writing",
            title: "Writing",
            command: &[
                "sh",
                "-c",
                r#"[ "$3" = --short ] && echo '{"suite": "writing", "title": "W"}' > "$2""#,
                "sh",
            ],
        };
        assert_eq!(run_one(&ctx, &writing, &dir, false).unwrap().title, "W");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
