//! The demo's running programs: each started in its own process group with its output in a log
//! file, waited for until it answers, and stopped — all of them, by PID, newest first — when
//! the demo ends, fails, is interrupted or unwinds.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::proc;

/// How long a program may take to answer after it was started.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Time each program gets to stop on SIGTERM before its group is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One started program.
#[derive(Debug)]
struct Service {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// Every program the demo started, in start order.
#[derive(Debug)]
pub struct Stack {
    logs: PathBuf,
    services: Vec<Service>,
    started: Instant,
}

impl Stack {
    /// An empty stack writing each program's output to `<logs>/<name>.log`.
    pub fn new(logs: &Path, started: Instant) -> Self {
        Self {
            logs: logs.to_path_buf(),
            services: Vec::new(),
            started,
        }
    }

    /// Starts `cmd` as `name` (stdout and stderr to its log), then waits until `ready` says
    /// it answers; fails with the log's tail if it exits first or takes longer than
    /// [`START_TIMEOUT`].
    pub fn start(
        &mut self,
        name: &'static str,
        cmd: &mut Command,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let log = self.logs.join(format!("{name}.log"));
        let file = File::create(&log).with_context(|| format!("create {}", log.display()))?;
        cmd.stdout(file.try_clone()?).stderr(file);
        let child = proc::spawn(cmd)?;
        self.services.push(Service {
            name,
            child,
            log: log.clone(),
        });
        let deadline = Instant::now() + START_TIMEOUT;
        while !ready() {
            let service = self.services.last_mut().context("just pushed")?;
            if let Some(status) = service.child.try_wait()? {
                bail!(
                    "{name} exited before it answered ({status}):\n{}",
                    tail(&log)
                );
            }
            if proc::interrupted() {
                bail!("interrupted while starting {name}");
            }
            if Instant::now() >= deadline {
                bail!(
                    "{name} did not answer within {}:\n{}",
                    proc::secs(START_TIMEOUT),
                    tail(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.say(&format!(
            "{name} up (pid {})",
            self.services.last().map_or(0, |s| s.child.id())
        ));
        Ok(())
    }

    /// Adds a program started elsewhere (with its own output handling) so it is stopped too.
    pub fn adopt(&mut self, name: &'static str, child: Child, log: PathBuf) {
        self.services.push(Service { name, child, log });
    }

    /// The process ids of every running program, in start order.
    pub fn pids(&self) -> Vec<u32> {
        self.services.iter().map(|s| s.child.id()).collect()
    }

    /// Fails naming the first program that has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        for service in &mut self.services {
            if let Some(status) = service.child.try_wait()? {
                bail!(
                    "{} exited ({status}):\n{}",
                    service.name,
                    tail(&service.log)
                );
            }
        }
        Ok(())
    }

    /// Asks `name` to stop (SIGTERM to its group) and waits up to `grace` for it to exit;
    /// returns whether it exited successfully by itself.
    pub fn stop_one(&mut self, name: &str, grace: Duration) -> bool {
        let Some(at) = self.services.iter().position(|s| s.name == name) else {
            return false;
        };
        let mut service = self.services.remove(at);
        proc::stop_group(&mut service.child, grace);
        service
            .child
            .try_wait()
            .ok()
            .flatten()
            .is_some_and(|status| status.success())
    }

    /// Stops every program, newest first, and says so.
    pub fn stop_all(&mut self) {
        if self.services.is_empty() {
            return;
        }
        self.say(&format!("stopping {} programs", self.services.len()));
        while let Some(mut service) = self.services.pop() {
            proc::stop_group(&mut service.child, STOP_GRACE);
        }
        self.say("everything it started is stopped");
    }

    /// A progress line with the time since the demo started.
    pub fn say(&self, text: &str) {
        say(self.started, text);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Prints `xtask demo [ 12.3s] text`.
pub fn say(started: Instant, text: &str) {
    println!("xtask demo [{:>6}] {text}", proc::secs(started.elapsed()));
}

/// The last lines of a log file, indented, for error messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(20);
    lines[from..]
        .iter()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
