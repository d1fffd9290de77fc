//! Running external commands so that nothing hangs: every command gets a timeout, runs in its
//! own process group, and that whole group is killed on timeout or on Ctrl-C.

use std::io::{BufRead as _, BufReader, Read, Write};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Makes Ctrl-C stop the running child's whole process group before xtask exits.
pub fn install_interrupt_handler() -> Result<()> {
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst))
        .context("install the Ctrl-C handler")
}

/// What happens to a child's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Straight to the terminal.
    Inherit,
    /// stdout is printed line by line and also kept; stderr goes to the terminal.
    Tee,
    /// stdout and stderr are each printed line by line and also kept.
    TeeBoth,
    /// stdout is kept, not printed; stderr goes to the terminal.
    Keep,
    /// Both kept, nothing printed.
    Capture,
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, failing if it runs longer than `timeout` (or on Ctrl-C).
/// A non-zero exit is not an error here: see [`run`] and [`capture`].
pub fn exec(cmd: &mut Command, output: Output, timeout: Duration) -> Result<Finished> {
    let shown = show(cmd);
    let (out, err) = match output {
        Output::Inherit => (Stdio::inherit(), Stdio::inherit()),
        Output::Tee | Output::Keep => (Stdio::piped(), Stdio::inherit()),
        Output::Capture | Output::TeeBoth => (Stdio::piped(), Stdio::piped()),
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("start {shown}"))?;
    let stdout = child.stdout.take().map(|pipe| {
        let shown = matches!(output, Output::Tee | Output::TeeBoth);
        reader(move |kept| keep_lines(pipe, shown.then(std::io::stdout), &kept))
    });
    let stderr = child.stderr.take().map(|pipe| {
        let shown = output == Output::TeeBoth;
        reader(move |kept| keep_lines(pipe, shown.then(std::io::stderr), &kept))
    });
    let status = wait(&mut child, timeout, &shown)?;
    Ok(Finished {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

/// Keeps every line read from `pipe`, printing it to `terminal` too when there is one.
fn keep_lines(pipe: impl Read, mut terminal: Option<impl Write>, kept: &Mutex<String>) {
    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
        if let Some(terminal) = &mut terminal {
            let _ = writeln!(terminal, "{line}");
        }
        let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.push_str(&line);
        kept.push('\n');
    }
}

/// Runs `cmd` with its output on the terminal; fails unless it exits 0 within `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<()> {
    let finished = exec(cmd, Output::Inherit, timeout)?;
    if !finished.status.success() {
        bail!("{} failed: {}", show(cmd), finished.status);
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout; fails (quoting stderr) unless it exits 0.
pub fn capture(cmd: &mut Command, timeout: Duration) -> Result<String> {
    let finished = exec(cmd, Output::Capture, timeout)?;
    if !finished.status.success() {
        bail!(
            "{} failed: {}\n{}",
            show(cmd),
            finished.status,
            finished.stderr.trim_end()
        );
    }
    Ok(finished.stdout)
}

/// Starts a long-running child (a server) in its own process group with stdin closed.
pub fn spawn(cmd: &mut Command) -> Result<Child> {
    cmd.stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("start {}", show(cmd)))
}

/// Whether Ctrl-C was pressed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Kills `child`'s whole process group and reaps the child.
pub fn kill_group(child: &mut Child) {
    signal_group(child, "KILL");
    let _ = child.kill();
    let _ = child.wait();
}

/// Asks `child`'s process group to stop (SIGTERM), and kills it if it is still there after
/// `grace`.
pub fn stop_group(child: &mut Child, grace: Duration) {
    signal_group(child, "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_group(child);
}

fn signal_group(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
}

fn wait(child: &mut Child, timeout: Duration, shown: &str) -> Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("wait for a child")? {
            return Ok(status);
        }
        if interrupted() {
            kill_group(child);
            bail!("interrupted while running {shown}");
        }
        if Instant::now() >= deadline {
            kill_group(child);
            bail!("timed out after {timeout:?}: {shown}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

type Kept = Arc<Mutex<String>>;

/// Reads a pipe on a thread into a shared string.
fn reader(read: impl FnOnce(Kept) + Send + 'static) -> (JoinHandle<()>, Kept) {
    let kept = Kept::default();
    let shared = Arc::clone(&kept);
    (std::thread::spawn(move || read(shared)), kept)
}

/// What a reader kept, waiting at most a few seconds for the pipe to close (a grandchild that
/// outlived the child may hold it open; its output is then cut, never waited for).
fn collect(reader: Option<(JoinHandle<()>, Kept)>) -> String {
    let Some((handle, kept)) = reader else {
        return String::new();
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !handle.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::mem::take(&mut *kept.lock().unwrap_or_else(PoisonError::into_inner))
}

/// A command as a shell line, without the environment.
pub fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Formats a duration as seconds with one decimal.
pub fn secs(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}
