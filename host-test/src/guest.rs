//! Shared pieces of both hosts: guest memory access from host functions, host-call counting,
//! captured log lines and the wasmtime engine setup (fuel metering on).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, OnceLock};

use wasmtime::{
    AsContext, AsContextMut, Caller, Config, Engine, Memory, Module, Result, format_err,
};

/// One log line a guest produced (through the ABI's log call or WASI stdout/stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `debug`, `info`, `warn`, `error`, `critical`, `trace`, `stdout` or `stderr`.
    pub level: &'static str,
    /// The message.
    pub message: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.level, self.message)
    }
}

/// The tally name of WASI calls: wasmtime-wasi runs every WASI function through the context
/// getter a host links it with, so the harness counts them there, all under this one name.
pub const WASI_CALLS: &str = "wasi_snapshot_preview1.*";

/// How many times each host function was called (by import name; WASI calls together under
/// [`WASI_CALLS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCalls(BTreeMap<&'static str, u64>);

impl HostCalls {
    pub(crate) fn hit(&mut self, name: &'static str) {
        *self.0.entry(name).or_insert(0) += 1;
    }

    /// Calls of one function.
    #[must_use]
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// All calls added up.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Function names and counts, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().map(|(k, v)| (*k, *v))
    }

    /// Adds another tally into this one.
    pub fn merge(&mut self, other: &Self) {
        for (name, count) in other.iter() {
            *self.0.entry(name).or_insert(0) += count;
        }
    }

    pub(crate) fn take(&mut self) -> Self {
        std::mem::take(self)
    }
}

/// Set (to anything) to write a perf map of the guests' compiled code, so `perf record` on the
/// harness attributes samples to guest functions (build the guest unstripped to get names).
const PERFMAP_ENV: &str = "GATETRACE_HOST_PERFMAP";

/// The engine every host shares: fuel metering on, so every call reports instructions spent.
/// Sharing it lets compiled modules be reused (all harness state lives in each `Store`).
pub(crate) fn engine() -> anyhow::Result<Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine.clone());
    }
    let mut config = Config::new();
    config.consume_fuel(true);
    if std::env::var_os(PERFMAP_ENV).is_some() {
        // Names the guest's compiled functions for `perf` (in /tmp/perf-<pid>.map).
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("wasmtime engine: {e}"))?;
    Ok(ENGINE.get_or_init(|| engine).clone())
}

/// Compiles `wasm` (binary or WAT) once per process: compiled code is immutable, and
/// compiling the same guest for every harness in a test binary is what takes the time.
pub(crate) fn compile(wasm: &[u8]) -> anyhow::Result<Module> {
    static MODULES: OnceLock<Mutex<HashMap<(u64, usize), Module>>> = OnceLock::new();
    let mut hasher = DefaultHasher::new();
    wasm.hash(&mut hasher);
    let key = (hasher.finish(), wasm.len());
    let cache = MODULES.get_or_init(Mutex::default);
    if let Some(module) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(module);
    }
    let module =
        Module::new(&engine()?, wasm).map_err(|e| anyhow::anyhow!("compile: {}", describe(&e)))?;
    if let Ok(mut c) = cache.lock() {
        c.insert(key, module.clone());
    }
    Ok(module)
}

/// Fuel given before each guest call; what is left afterwards tells what it spent.
pub(crate) const FUEL: u64 = u64::MAX / 2;

/// The guest's exported `memory`.
pub(crate) fn memory<T>(caller: &mut Caller<'_, T>) -> Result<Memory> {
    caller
        .get_export("memory")
        .and_then(wasmtime::Extern::into_memory)
        .ok_or_else(|| format_err!("guest exports no memory"))
}

/// Copies `len` bytes at `ptr` out of guest memory; out of bounds traps.
pub(crate) fn read<T>(caller: &mut Caller<'_, T>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let mem = memory(caller)?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    let data = mem.data(caller.as_context());
    ptr.checked_add(len)
        .and_then(|end| data.get(ptr..end))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| format_err!("guest passed out-of-bounds memory {ptr}+{len}"))
}

/// [`read`] as UTF-8 (lossy).
pub(crate) fn read_str<T>(caller: &mut Caller<'_, T>, ptr: i32, len: i32) -> Result<String> {
    Ok(String::from_utf8_lossy(&read(caller, ptr, len)?).into_owned())
}

/// Writes `bytes` at `ptr` in guest memory; out of bounds traps.
pub(crate) fn write<T>(caller: &mut Caller<'_, T>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let mem = memory(caller)?;
    mem.write(caller.as_context_mut(), ptr as u32 as usize, bytes)
        .map_err(|_| format_err!("guest passed out-of-bounds memory {ptr}+{}", bytes.len()))
}

/// Writes a little-endian u32 at `ptr`.
pub(crate) fn write_u32<T>(caller: &mut Caller<'_, T>, ptr: i32, value: u32) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Writes a little-endian u64 at `ptr`.
pub(crate) fn write_u64<T>(caller: &mut Caller<'_, T>, ptr: i32, value: u64) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Renders a wasmtime error (a trap and its cause chain) on one line.
/// wasmtime puts the wasm backtrace in front ("… <wasm function 103>: cause"); keep the cause.
pub(crate) fn describe(error: &wasmtime::Error) -> String {
    let full = format!("{error:#}");
    let cause = full
        .rfind(">: ")
        .map_or(full.as_str(), |at| &full[at + 3..]);
    cause.replace('\n', " ")
}
