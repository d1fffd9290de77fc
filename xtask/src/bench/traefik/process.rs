//! The processes a Traefik run starts (backends, Traefik, collectors), each logging to a file
//! and stopped when dropped, and their CPU time read from `/proc/<pid>/stat`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::proc;

/// How long a process may take to open its port or answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A started server, killed when dropped. It stays in the suite's process group, so that the
/// `bench` runner stopping the suite (timeout, Ctrl-C) stops it too.
#[derive(Debug)]
pub struct Service {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Service {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn start(name: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        let file =
            std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("start {name}: {}", proc::show(&cmd)))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User plus system CPU time so far, in clock ticks (all threads).
    pub fn cpu_ticks(&self) -> Result<u64> {
        let path = format!("/proc/{}/stat", self.pid());
        let stat = std::fs::read_to_string(&path)
            .with_context(|| format!("{} is gone (read {path})", self.name))?;
        cpu_ticks(&stat).with_context(|| format!("unexpected {path}: {stat}"))
    }

    /// Waits until `ready` holds, failing early if the process exits, with its log's end.
    pub fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before {what}:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if Instant::now() > deadline || proc::interrupted() {
                bail!(
                    "{} never {what} in {START_TIMEOUT:?}:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `port` accepts connections.
    pub fn wait_for_port(&mut self, port: u16) -> Result<()> {
        self.wait_until(&format!("opened port {port}"), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The clock ticks per second `/proc/<pid>/stat` counts in.
pub fn ticks_per_second() -> Result<u64> {
    let out = proc::capture(
        Command::new("getconf").arg("CLK_TCK"),
        Duration::from_secs(10),
    )?;
    out.trim()
        .parse()
        .with_context(|| format!("getconf CLK_TCK printed {out:?}"))
}

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line; the command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `fields[0]` is field 3 (the state).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_plus_system_ticks_past_an_odd_command_name() {
        let stat = "4242 (tra efik) (x)) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
                    1234 567 0 0 20 0 12 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(cpu_ticks("4242 (x) S 1 2"), None);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_ticks(&own).is_some(), "{own}");
    }
}
