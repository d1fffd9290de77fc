//! Real Traefik on loopback with gatetrace as a local plugin: a temp working dir holding
//! `plugins-local/src/gatetrace/`, a spool dir mounted into the plugin, static + dynamic config,
//! and on request Traefik's own JSON access log.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::ChildGuard;

/// The plugin's module name (its directory under `plugins-local/src/`).
pub const MODULE: &str = "gatetrace";

/// A running Traefik; killed on drop, its temp dir removed.
pub struct Traefik {
    pub port: u16,
    pub spool: PathBuf,
    /// Traefik's JSON access log (written only when started with [`Traefik::start_logging_access`]).
    pub access_log: PathBuf,
    pub child: ChildGuard,
    /// Kept for its drop: the working dir lives as long as Traefik.
    _dir: tempfile::TempDir,
}

/// The manifest committed next to the crate.
fn manifest() -> PathBuf {
    testkit::workspace_root().join("plugin/http-wasm/.traefik.yml")
}

/// Copies the built plugin into `<work>/plugins-local/src/gatetrace/`.
fn install_plugin(work: &Path) {
    let dest = work.join("plugins-local/src").join(MODULE);
    std::fs::create_dir_all(&dest).unwrap();
    let wasm = testkit::wasm_artifact("gatetrace-traefik.wasm");
    std::fs::copy(&wasm, dest.join("plugin.wasm")).unwrap();
    std::fs::copy(manifest(), dest.join(".traefik.yml")).unwrap();
}

impl Traefik {
    /// Starts Traefik with `dynamic` (YAML; `{spool}` and `{backend}` are replaced by the
    /// spool dir and `http://127.0.0.1:<backend_port>`). Does not wait for routes.
    pub fn start(dynamic: &str, backend_port: u16) -> Self {
        Self::start_with(dynamic, backend_port, |traefik, _| traefik)
    }

    /// As [`Traefik::start`], with Traefik's JSON access log on (one line per request, written
    /// as each request ends) in [`Traefik::access_log`].
    pub fn start_logging_access(dynamic: &str, backend_port: u16) -> Self {
        Self::launch(dynamic, backend_port, true, |traefik, _| traefik)
    }

    /// As [`Traefik::start`], with the command changed by `launch` before it runs (given the
    /// Traefik command and the working dir), e.g. to run it in a mount namespace.
    pub fn start_with(
        dynamic: &str,
        backend_port: u16,
        launch: impl FnOnce(Command, &Path) -> Command,
    ) -> Self {
        Self::launch(dynamic, backend_port, false, launch)
    }

    fn launch(
        dynamic: &str,
        backend_port: u16,
        log_access: bool,
        launch: impl FnOnce(Command, &Path) -> Command,
    ) -> Self {
        let bin = testkit::tool("GATETRACE_TRAEFIK");
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path();
        install_plugin(work);
        let spool = work.join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let port = testkit::free_port();
        let access_log = work.join("access.log");
        let access_cfg = if log_access {
            format!(
                "accessLog:\n  filePath: \"{}\"\n  format: json\n",
                access_log.display()
            )
        } else {
            String::new()
        };
        let static_cfg = format!(
            r#"entryPoints:
  web:
    address: "127.0.0.1:{port}"
providers:
  file:
    filename: "{dynamic_path}"
log:
  level: DEBUG
experimental:
  localPlugins:
    {MODULE}:
      moduleName: {MODULE}
      settings:
        envs: ["HOSTNAME"]
        mounts: ["{spool}"]
{access_cfg}"#,
            dynamic_path = work.join("dynamic.yml").display(),
            spool = spool.display(),
        );
        let dynamic = dynamic
            .replace("{spool}", &spool.display().to_string())
            .replace("{backend}", &format!("http://127.0.0.1:{backend_port}"));
        std::fs::write(work.join("dynamic.yml"), dynamic).unwrap();
        std::fs::write(work.join("traefik.yml"), static_cfg).unwrap();
        let mut traefik = Command::new(bin);
        traefik
            .arg(format!(
                "--configFile={}",
                work.join("traefik.yml").display()
            ))
            .current_dir(work)
            .env("HOSTNAME", "e2e-node");
        let child = ChildGuard::spawn(&mut launch(traefik, work), work.join("traefik.log"));
        testkit::wait_for_port("traefik entrypoint", port, Duration::from_secs(20));
        Self {
            port,
            spool,
            access_log,
            child,
            _dir: dir,
        }
    }

    /// Polls `target` until the backend answers through Traefik (status ≠ 404 from Traefik's
    /// own "no route" answer, recognised by its body).
    pub fn wait_route(&self, target: &str) {
        let http = testkit::http::Http::new();
        let url = format!("http://127.0.0.1:{}{target}", self.port);
        testkit::wait_until(
            &format!("route {target} through traefik\n{}", self.child.log()),
            Duration::from_secs(20),
            || {
                http.get_text(&url)
                    .is_some_and(|(_, body)| !body.starts_with("404 page not found"))
            },
        );
    }

    /// All spool lines so far, across segments (in segment order), without their newlines.
    pub fn spool_lines(&self) -> Vec<String> {
        testkit::spool_lines(&self.spool)
            .into_iter()
            .map(|line| {
                let text = String::from_utf8(line).expect("a UTF-8 spool line");
                text.trim_end_matches('\n')
                    .trim_end_matches('\r')
                    .to_owned()
            })
            .collect()
    }

    /// Every complete line of Traefik's JSON access log so far, parsed.
    pub fn access_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .split_inclusive('\n')
            .filter(|line| line.ends_with('\n'))
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("malformed access log line ({e}): {line}"))
            })
            .collect()
    }

    pub fn log(&self) -> String {
        self.child.log()
    }
}
