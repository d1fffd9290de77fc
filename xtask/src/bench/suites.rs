//! The benchmark suites `cargo xtask bench` runs, one line each. A suite is a command that,
//! given `--json <path> --short` (or `--full`), writes one result file (see `model.rs`).
//! To add a suite, add a line here.

use super::traefik;

/// One suite: its id (as in its JSON), its title and how to run it.
#[derive(Debug)]
pub struct Suite {
    pub id: &'static str,
    pub title: &'static str,
    /// Program and arguments; [`XTASK`] as the program is this xtask binary, a program with a
    /// `/` is relative to the repository root, anything else is looked up on `PATH` (`cargo`
    /// is the cargo running this xtask).
    pub command: &'static [&'static str],
}

/// The program word meaning "this xtask binary".
pub const XTASK: &str = "xtask";

/// Every suite, in the order they run and appear in `BENCHMARKS.md`.
pub const SUITES: &[Suite] = &[
    Suite {
        id: traefik::SUITE,
        title: traefik::TITLE,
        command: &[XTASK, "bench-suite", traefik::SUITE],
    },
    Suite {
        id: "guest",
        title: "Guest figures (harness, deterministic)",
        command: &[
            "cargo",
            "run",
            "-p",
            "gatetrace-host",
            "--",
            "guest-figures",
        ],
    },
    Suite {
        id: "collector",
        title: "Collector",
        command: &[
            "cargo",
            "run",
            "--release",
            "-p",
            "gatetrace-collector",
            "--example",
            "collector_bench",
            "--",
        ],
    },
    Suite {
        id: "npm-package",
        title: "npm package (Node)",
        command: &["node", "plugin/js/bench/bench.mjs"],
    },
];
