//! The machine a run measured on, read from `/proc`: CPU model, cores, kernel, load average,
//! and the date, for the head of `BENCHMARKS.md`.

use super::markdown::Machine;

/// What `/proc` says about this machine (`unknown` for what it does not say).
pub fn this_machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    Machine {
        cpu: cpu_model(&read("/proc/cpuinfo")),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        kernel: non_empty(read("/proc/sys/kernel/osrelease").trim()),
        load: non_empty(
            &read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        ),
    }
}

/// The current time, UTC, to the minute.
pub fn now_utc() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// The first `model name` of `/proc/cpuinfo` (x86), else its `Model` or `CPU part` (Arm).
fn cpu_model(cpuinfo: &str) -> String {
    ["model name", "Model", "CPU part"]
        .iter()
        .find_map(|key| {
            cpuinfo.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                (name.trim() == *key).then(|| value.trim().to_owned())
            })
        })
        .map_or_else(|| non_empty(""), |model| non_empty(&model))
}

fn non_empty(text: &str) -> String {
    if text.is_empty() {
        "unknown".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cpu_model() {
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(cpu_model(x86), "Intel(R) Xeon(R) CPU @ 2.20GHz");
        assert_eq!(cpu_model("processor : 0\nCPU part : 0xd0c\n"), "0xd0c");
        assert_eq!(cpu_model(""), "unknown");
    }
}
