//! This process and its children as the suite measures them: CPU time and memory from
//! `/proc`, and measurement processes pinned to one core with `taskset`.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The core measurements run on; receivers run on the other one.
pub const MEASURED_CORE: &str = "0";
pub const RECEIVER_CORE: &str = "1";

/// CPU time (user + system) of a whole process so far (`self` or a pid), from `/proc`.
pub fn process_cpu(process: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with the last ')'): the state is the first,
    // utime the 12th, stime the 13th, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// CPU time of this process's live threads so far, at nanosecond resolution: the sum of
/// their `/proc/self/task/*/schedstat` run times (a thread that has ended no longer counts,
/// so take differences around work done by threads that stay: tokio's workers and blocking
/// pool, which keeps idle threads for 10 s).
pub fn threads_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// Resident and peak resident memory of this process in KiB, from `/proc/self/status`.
pub fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The 1-minute load average.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// Whether `taskset` can pin processes here.
pub fn can_pin() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// This binary with `args`, on `core` when `taskset` is there.
pub fn this_binary_on(core: &str, args: &[String]) -> Command {
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut command = if can_pin() {
        let mut c = Command::new("taskset");
        c.args(["-c", core]).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    command.args(args);
    command
}

/// Runs this binary with `args` on the measured core; its stdout is one JSON document,
/// its stderr (progress) goes to ours.
pub fn measure(args: &[String]) -> serde_json::Value {
    eprintln!("collector bench: {}", args.join(" "));
    let output = this_binary_on(MEASURED_CORE, args)
        .stderr(Stdio::inherit())
        .output()
        .expect("starting a measurement process");
    assert!(
        output.status.success(),
        "measurement {args:?} failed: {}",
        output.status
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "measurement {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Starts this binary with `args` on the receiver core; returns it and the first line it
/// prints (a receiver's URL).
pub fn start_on_receiver_core(args: &[String]) -> (Child, String) {
    let mut child = this_binary_on(RECEIVER_CORE, args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting a receiver");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the receiver's URL");
    (child, line.trim().to_owned())
}
