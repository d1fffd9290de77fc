//! The checkpoint file: the whole [`State`] (metrics, spool offsets, dedup memory) as JSON,
//! replaced atomically (temp file, fsync, rename, fsync of the directory).

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::state::State;

/// Format version of the checkpoint file.
const VERSION: u32 = 1;

#[derive(Serialize)]
struct Out<'a> {
    version: u32,
    state: &'a State,
}

#[derive(Deserialize)]
struct In {
    version: u32,
    state: State,
}

/// Serialises `state` for [`write()`] (done under the state lock, so it is consistent).
///
/// # Errors
/// Never in practice (serde_json into a Vec).
pub fn encode(state: &State) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&Out {
        version: VERSION,
        state,
    })?)
}

/// Loads the checkpoint at `path`; `None` when there is none yet.
///
/// # Errors
/// An unreadable or corrupt checkpoint: the collector refuses to start rather than silently
/// resetting counters (delete the file to start from zero).
pub fn load(path: &Path) -> anyhow::Result<Option<State>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading checkpoint {}", path.display())),
    };
    let parsed: In = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "checkpoint {} is corrupt (delete it to start from zero)",
            path.display()
        )
    })?;
    anyhow::ensure!(
        parsed.version == VERSION,
        "checkpoint {} has version {}, this build reads {VERSION}",
        path.display(),
        parsed.version
    );
    Ok(Some(parsed.state))
}

/// Atomically replaces `path` with `bytes`.
///
/// # Errors
/// Any I/O failure; the previous checkpoint then stays in place.
pub fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
    })();
    result.with_context(|| format!("writing checkpoint {}", path.display()))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_load_round_trips_and_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        assert!(load(&path).unwrap().is_none());
        let mut state = State::default();
        state.offsets.insert(10, 4096);
        state.registrations = 7;
        write(&path, &encode(&state).unwrap()).unwrap();
        write(&path, &encode(&state).unwrap()).unwrap();
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.offsets.get(&10), Some(&4096));
        assert_eq!(back.registrations, 7);
        assert!(!temp_path(&path).exists());
        fs::write(&path, b"{\"version\":1,\"sta").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("corrupt"));
    }
}
