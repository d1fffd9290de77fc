//! WASI preview1 for guests: wasmtime-wasi's implementation with the clocks and entropy a
//! profile asks for (deterministic by default, Traefik's quirks, or the real ones).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// A clock the harness moves by hand; shared by WASI, `proxy_get_current_time_nanoseconds`
/// and the tick/timeout machinery of one harness. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    /// A clock reading `start` (time since the Unix epoch).
    #[must_use]
    pub fn new(start: Duration) -> Self {
        Self(Arc::new(AtomicU64::new(start.as_nanos() as u64)))
    }

    /// Nanoseconds since the Unix epoch.
    #[must_use]
    pub fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Default for VirtualClock {
    /// 2026-01-01T00:00:00Z.
    fn default() -> Self {
        Self::new(Duration::from_secs(1_767_225_600))
    }
}

/// Which wall clock the guest sees through WASI `clock_time_get(REALTIME)`.
#[derive(Debug, Clone)]
pub enum WallClock {
    /// The host's real clock (Traefik does this).
    Real,
    /// A virtual clock the harness advances.
    Virtual(VirtualClock),
}

/// Which monotonic clock the guest sees through WASI `clock_time_get(MONOTONIC)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonotonicClock {
    /// The host's real monotonic clock.
    Real,
    /// wazero's fake clock as Traefik configures it: starts at 0, +1 ms on every read.
    FakeTraefik,
}

/// Where WASI `random_get` draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entropy {
    /// Real randomness.
    Real,
    /// One fixed stream, the same in every instance and every run (as in Traefik).
    Deterministic,
}

/// A host directory made visible to the guest (`host:guest[:ro]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Directory on the host.
    pub host: PathBuf,
    /// Path the guest opens it by.
    pub guest: String,
    /// Whether the guest may only read.
    pub read_only: bool,
}

impl Mount {
    /// Parses Traefik's `settings.mounts` syntax: `host`, `host:guest`, `host:guest:ro`.
    ///
    /// # Errors
    /// An empty host path or an unknown third field.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (host, guest, read_only) = match parts.as_slice() {
            [host] => (*host, *host, false),
            [host, guest] => (*host, *guest, false),
            [host, guest, "ro"] => (*host, *guest, true),
            [_, _, other] => bail!("mount {spec:?}: third field must be \"ro\", not {other:?}"),
            _ => bail!("mount {spec:?}: expected host, host:guest or host:guest:ro"),
        };
        if host.is_empty() || guest.is_empty() {
            bail!("mount {spec:?}: empty path");
        }
        Ok(Self {
            host: PathBuf::from(host),
            guest: guest.to_owned(),
            read_only,
        })
    }
}

/// How a guest's WASI world is set up.
#[derive(Debug, Clone)]
pub struct WasiOptions {
    /// Wall clock.
    pub wall: WallClock,
    /// Monotonic clock.
    pub monotonic: MonotonicClock,
    /// `random_get` source.
    pub entropy: Entropy,
    /// Preopened directories.
    pub mounts: Vec<Mount>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
}

impl WasiOptions {
    /// Deterministic everything: a virtual wall clock, the fake monotonic clock, fixed entropy.
    #[must_use]
    pub fn deterministic(clock: &VirtualClock) -> Self {
        Self {
            wall: WallClock::Virtual(clock.clone()),
            monotonic: MonotonicClock::FakeTraefik,
            entropy: Entropy::Deterministic,
            mounts: Vec::new(),
            env: Vec::new(),
        }
    }

    /// What Traefik 3.7 gives a plugin: real wall clock, fake monotonic clock, fixed entropy.
    #[must_use]
    pub fn traefik() -> Self {
        Self {
            wall: WallClock::Real,
            monotonic: MonotonicClock::FakeTraefik,
            entropy: Entropy::Deterministic,
            mounts: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Real clocks and real entropy.
    #[must_use]
    pub fn real() -> Self {
        Self {
            wall: WallClock::Real,
            monotonic: MonotonicClock::Real,
            entropy: Entropy::Real,
            mounts: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Builds one instance's WASI context; its stdout and stderr land in the returned pipes.
    pub(crate) fn build(&self) -> anyhow::Result<GuestWasi> {
        let stdout = MemoryOutputPipe::new(1 << 20);
        let stderr = MemoryOutputPipe::new(1 << 20);
        let mut builder = WasiCtxBuilder::new();
        builder.stdout(stdout.clone()).stderr(stderr.clone());
        for (key, value) in &self.env {
            builder.env(key, value);
        }
        for mount in &self.mounts {
            let perms = if mount.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            builder
                .preopened_dir(&mount.host, &mount.guest, perms)
                .map_err(|e| {
                    anyhow::anyhow!("mount {} as {}: {e}", mount.host.display(), mount.guest)
                })?;
        }
        if let WallClock::Virtual(clock) = &self.wall {
            builder.wall_clock(clock.clone());
        }
        if self.monotonic == MonotonicClock::FakeTraefik {
            builder.monotonic_clock(FakeMonotonic::default());
        }
        if self.entropy == Entropy::Deterministic {
            builder.secure_random(wasmtime_wasi::Deterministic::new(deterministic_bytes()));
            builder.insecure_random(wasmtime_wasi::Deterministic::new(deterministic_bytes()));
            builder.insecure_random_seed(0x0067_6174_6574_7261_6365);
        }
        Ok(GuestWasi {
            ctx: builder.build_p1(),
            stdout,
            stderr,
        })
    }
}

/// One guest instance's WASI state and captured output.
pub(crate) struct GuestWasi {
    pub(crate) ctx: WasiP1Ctx,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

impl GuestWasi {
    /// Lines written to stdout and stderr since the last call, with the stream's name.
    pub(crate) fn take_output(&self, seen: &mut (usize, usize)) -> Vec<(&'static str, String)> {
        let mut lines = Vec::new();
        for (name, pipe, offset) in [
            ("stdout", &self.stdout, &mut seen.0),
            ("stderr", &self.stderr, &mut seen.1),
        ] {
            let bytes = pipe.contents();
            if bytes.len() > *offset {
                let text = String::from_utf8_lossy(&bytes[*offset..]);
                lines.extend(
                    text.lines()
                        .filter(|l| !l.is_empty())
                        .map(|l| (name, l.to_owned())),
                );
                *offset = bytes.len();
            }
        }
        lines
    }
}

impl HostWallClock for VirtualClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }
}

/// wazero's `nanotimeFake`: 0 at start, 1 ms more on every read.
#[derive(Debug, Default)]
struct FakeMonotonic(AtomicU64);

impl HostMonotonicClock for FakeMonotonic {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0.fetch_add(1_000_000, Ordering::SeqCst) + 1_000_000
    }
}

/// The fixed entropy stream: 4 KiB of xorshift64* output from a constant seed, cycled.
fn deterministic_bytes() -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut bytes = Vec::with_capacity(4096);
    while bytes.len() < 4096 {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    bytes
}

/// The real wall clock in nanoseconds since the Unix epoch.
#[must_use]
pub fn real_now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_traefik_syntax() {
        let m = Mount::parse("/var/spool:/spool:ro").unwrap();
        assert_eq!((m.guest.as_str(), m.read_only), ("/spool", true));
        let m = Mount::parse("/var/spool").unwrap();
        assert_eq!((m.guest.as_str(), m.read_only), ("/var/spool", false));
        assert!(Mount::parse("/a:/b:rw").is_err());
        assert!(Mount::parse(":/b").is_err());
    }

    #[test]
    fn fake_monotonic_advances_one_ms_per_read() {
        let clock = FakeMonotonic::default();
        assert_eq!(clock.now(), 1_000_000);
        assert_eq!(clock.now(), 2_000_000);
    }

    #[test]
    fn entropy_stream_is_fixed() {
        assert_eq!(deterministic_bytes(), deterministic_bytes());
        assert_ne!(deterministic_bytes()[..8], deterministic_bytes()[8..16]);
    }
}
