//! Collector configuration: flags, `GATETRACE_*` environment variables and an optional TOML
//! file (`--config`), in that order of precedence; every value is checked at start-up.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use gatetrace_core::spool::SpoolLayout;

use crate::metrics::names::{self, DEFAULT_NAMESPACE};
use crate::page::TraceUrlTemplate;
use crate::sinks::access_log::AccessLogDestination;
use crate::sinks::otlp::config::OtlpConfig;

/// Default latency buckets (seconds): HTTP requests from 5 ms to 10 s.
pub const DEFAULT_BUCKETS: &str = "0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10";
/// Default stream-lifetime buckets (seconds): 100 ms to one hour.
pub const DEFAULT_STREAM_BUCKETS: &str = "0.1,0.5,1,5,10,30,60,300,900,1800,3600";

/// Everything the collector can be told. `--help` lists each option with its variable.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "gatetrace-collector",
    version,
    about = "Receives gatetrace records (HTTP and spool), serves Prometheus metrics, exports \
             OTLP spans and writes JSON access lines.",
    after_help = "A TOML file given with --config may set any option by its long name \
                  (`listen = \"0.0.0.0:9464\"`, `histogram-buckets = [0.01, 0.1, 1]`, or a \
                  table such as `[otlp] endpoint = \"...\"` for `--otlp-endpoint`). Flags win \
                  over environment variables, which win over the file."
)]
pub struct Config {
    /// TOML file with options (long names as keys); flags and variables override it.
    #[arg(long, env = "GATETRACE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address the HTTP server (ingest, /metrics, /health, /ready) listens on.
    #[arg(long, env = "GATETRACE_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,

    /// Bearer token required on `POST /v1/records`. Unset: ingest is open. Never logged.
    #[arg(long, env = "GATETRACE_INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<Secret>,

    /// Largest accepted request body in bytes, after gzip decompression.
    #[arg(long, env = "GATETRACE_BODY_LIMIT", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024 * 1024))]
    pub body_limit: u64,

    /// HTTP batches waiting for aggregation at most (memory ≤ this × body limit); a full
    /// queue answers 429 with Retry-After.
    #[arg(long, env = "GATETRACE_QUEUE_CAPACITY", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue_capacity: u32,

    /// Connections served at once at most; more are answered 503 (Retry-After) and closed.
    #[arg(long, env = "GATETRACE_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// A request's headers must arrive within this many milliseconds, or the connection is
    /// closed (also how long an idle keep-alive connection stays open).
    #[arg(long, env = "GATETRACE_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub header_read_timeout_ms: u64,

    /// A `POST /v1/records` body must arrive within this many milliseconds, or it is
    /// answered 408 and the connection closed.
    #[arg(long, env = "GATETRACE_BODY_READ_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub body_read_timeout_ms: u64,

    /// Spool directory the Traefik plugin appends to. Unset: no spool tailing.
    #[arg(long, env = "GATETRACE_SPOOL_DIR", value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,

    /// Spool segment window in seconds (must match the plugin's).
    #[arg(long, env = "GATETRACE_SPOOL_WINDOW_SECS", default_value_t = SpoolLayout::default().window_secs,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub spool_window_secs: u64,

    /// Seconds after a window closes before its fully read segment may be deleted.
    #[arg(long, env = "GATETRACE_SPOOL_GRACE_SECS", default_value_t = SpoolLayout::default().grace_secs)]
    pub spool_grace_secs: u64,

    /// Windows back at which a leftover segment tells the plugin the spool is full (≥ 2).
    #[arg(long, env = "GATETRACE_SPOOL_MAX_WINDOWS", default_value_t = SpoolLayout::default().max_windows,
          value_parser = clap::value_parser!(u64).range(2..))]
    pub spool_max_windows: u64,

    /// How often the spool directory is scanned for new data, in milliseconds.
    #[arg(long, env = "GATETRACE_SPOOL_POLL_MS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub spool_poll_ms: u64,

    /// Checkpoint file (metric state + spool offsets + batch dedup state). Unset: state is
    /// kept in memory only and a restart starts from zero.
    #[arg(long, env = "GATETRACE_CHECKPOINT", value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,

    /// How often the checkpoint is replaced, in milliseconds.
    #[arg(long, env = "GATETRACE_CHECKPOINT_INTERVAL_MS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub checkpoint_interval_ms: u64,

    /// Prefix of the request metrics (`<namespace>_requests_total`, ...).
    #[arg(long, env = "GATETRACE_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,

    /// Request-latency histogram buckets in seconds, increasing, comma separated.
    #[arg(long, env = "GATETRACE_HISTOGRAM_BUCKETS", default_value = DEFAULT_BUCKETS)]
    pub histogram_buckets: Buckets,

    /// Stream-lifetime histogram buckets in seconds, increasing, comma separated.
    #[arg(long, env = "GATETRACE_STREAM_BUCKETS", default_value = DEFAULT_STREAM_BUCKETS)]
    pub stream_buckets: Buckets,

    /// A session with no request for this many seconds no longer counts as active.
    #[arg(long, env = "GATETRACE_SESSION_IDLE_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub session_idle_secs: u64,

    /// Sessions tracked at most; beyond it new sessions are not tracked (and counted). Also the
    /// most ended session ids remembered (so a late stream record does not revive its session).
    #[arg(long, env = "GATETRACE_MAX_SESSIONS", default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions: u32,

    /// Label sets per metric at most; new ones past it go to one series labelled `other`.
    #[arg(long, env = "GATETRACE_SERIES_CAP", default_value_t = 2000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub series_cap: u32,

    /// MCP tool names per service with their own `gen_ai_tool_name` value; a service's further
    /// tools are labelled `_OTHER` (counted in `gatetrace_collector_mcp_names_overflow_total`;
    /// 0: every tool is `_OTHER`).
    #[arg(long, env = "GATETRACE_MAX_TOOLS_PER_SERVICE", default_value_t = 100)]
    pub max_tools_per_service: u32,

    /// As `--max-tools-per-service`, for `gen_ai_prompt_name`.
    #[arg(long, env = "GATETRACE_MAX_PROMPTS_PER_SERVICE", default_value_t = 100)]
    pub max_prompts_per_service: u32,

    /// A metric series without an update for this many seconds is removed (and comes back
    /// with a fresh `_created` if it is seen again), making room under `--series-cap`.
    #[arg(long, env = "GATETRACE_SERIES_IDLE_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub series_idle_secs: u64,

    /// Services whose `<namespace>_active_sessions` is always served (0 when none), besides
    /// those seen in records; comma separated.
    #[arg(long, env = "GATETRACE_SERVICES", value_delimiter = ',')]
    pub services: Vec<String>,

    /// Batch sources remembered for duplicate detection at most (least recent forgotten).
    #[arg(long, env = "GATETRACE_DEDUP_SOURCES", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub dedup_sources: u32,

    /// Business counter names records may carry (`<namespace>_<name>_total`, registered
    /// at 0), comma separated; other names are rejected and counted.
    #[arg(long, env = "GATETRACE_BUSINESS_COUNTERS", value_delimiter = ',')]
    pub business_counters: Vec<String>,

    /// Route template whose 2xx `POST` counts in `<namespace>_client_registrations_total`
    /// (as does a record whose `counters` hold `client_registrations`; once per record).
    #[arg(
        long,
        env = "GATETRACE_REGISTRATION_ENDPOINT",
        default_value = "/register"
    )]
    pub registration_endpoint: String,

    /// Access log destination: `stdout`, `off`, or a file path (appended to).
    #[arg(long, env = "GATETRACE_ACCESS_LOG", default_value = "stdout")]
    pub access_log: AccessLogDestination,

    /// Link to a trace in the trace backend, for the overview page's sampled traces:
    /// `{trace_id}` is replaced, e.g. `http://jaeger:16686/trace/{trace_id}`. Unset: ids only.
    #[arg(long, env = "GATETRACE_TRACE_URL_TEMPLATE", value_name = "URL")]
    pub trace_url_template: Option<TraceUrlTemplate>,

    /// Filter for the collector's own JSON logs on stderr (tracing `EnvFilter` syntax).
    #[arg(long, env = "GATETRACE_LOG", default_value = "info")]
    pub log: String,

    /// OTLP span export (options owned by the sink, `sinks/otlp/config.rs`).
    #[command(flatten)]
    pub otlp: OtlpConfig,
}

/// A value that must never reach a log line (the ingest token).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
            return Err("the token must be non-empty visible ASCII without spaces".into());
        }
        Ok(Self(s.to_owned()))
    }
}

/// Histogram upper bounds (without `+Inf`), strictly increasing, positive and finite.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets(pub Vec<f64>);

impl FromStr for Buckets {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bounds = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let v: f64 = part
                .parse()
                .map_err(|_| format!("bucket bound {part:?} is not a number"))?;
            if !v.is_finite() || v <= 0.0 {
                return Err(format!("bucket bound {part} must be positive and finite"));
            }
            if bounds.last().is_some_and(|last| *last >= v) {
                return Err(format!(
                    "bucket bounds must increase ({part} is out of order)"
                ));
            }
            bounds.push(v);
        }
        if bounds.is_empty() || bounds.len() > 64 {
            return Err("between 1 and 64 bucket bounds are needed".into());
        }
        Ok(Self(bounds))
    }
}

impl Config {
    /// Parses the command line (`args` includes the program name), the environment and the
    /// `--config` file, then validates. `--help` and `--version` come back as errors too:
    /// `clap::Error::exit` prints them and exits with the right code.
    ///
    /// # Errors
    /// A clear message naming the offending option.
    pub fn load<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let mut command = Self::command();
        let matches = command.try_get_matches_from_mut(&args)?;
        let matches = match matches.get_one::<PathBuf>("config") {
            None => matches,
            Some(path) => {
                let extra = file_args(&command, &matches, path)?;
                let mut merged = Vec::with_capacity(args.len() + extra.len());
                merged.extend(args.first().cloned());
                merged.extend(extra);
                merged.extend(args.iter().skip(1).cloned());
                command.try_get_matches_from_mut(merged)?
            }
        };
        let config = Self::from_arg_matches(&matches)?;
        config
            .validate()
            .map_err(|message| command.error(ErrorKind::ValueValidation, message))?;
        Ok(config)
    }

    /// Checks what clap's parsers cannot.
    fn validate(&self) -> Result<(), String> {
        if !is_metric_name(&self.namespace) {
            return Err(format!(
                "--namespace {:?} must match [a-zA-Z_][a-zA-Z0-9_]*",
                self.namespace
            ));
        }
        for name in &self.business_counters {
            if !is_metric_name(name) || name.ends_with("_total") {
                return Err(format!(
                    "--business-counters: {name:?} must match [a-zA-Z_][a-zA-Z0-9_]* without `_total`"
                ));
            }
            if names::REQUEST_METRICS
                .iter()
                .any(|metric| names::family_name(metric) == name)
            {
                return Err(format!(
                    "--business-counters: {name:?} is a built-in metric (`{}_{name}`); pick another name",
                    self.namespace
                ));
            }
        }
        if let Some(bad) = self.services.iter().find(|service| {
            service.is_empty() || service.len() > 128 || service.chars().any(char::is_control)
        }) {
            return Err(format!(
                "--services: {bad:?} must be 1-128 characters without control characters"
            ));
        }
        if !self.registration_endpoint.starts_with('/') {
            return Err("--registration-endpoint must start with '/'".into());
        }
        tracing_subscriber::EnvFilter::try_new(&self.log)
            .map_err(|e| format!("--log {:?}: {e}", self.log))?;
        self.otlp.validate().map_err(|e| format!("{e:#}"))?;
        Ok(())
    }

    /// The spool layout these options describe.
    #[must_use]
    pub fn spool_layout(&self) -> SpoolLayout {
        SpoolLayout {
            window_secs: self.spool_window_secs,
            grace_secs: self.spool_grace_secs,
            max_windows: self.spool_max_windows,
        }
    }

    /// Connection limits of the HTTP server.
    #[must_use]
    pub(crate) fn connection_limits(&self) -> crate::connections::ConnectionLimits {
        crate::connections::ConnectionLimits {
            max_connections: self.max_connections as usize,
            header_timeout: Duration::from_millis(self.header_read_timeout_ms),
        }
    }

    /// Checkpoint interval as a duration.
    #[must_use]
    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.checkpoint_interval_ms)
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Turns the TOML file into `--name=value` arguments for options not already given on the
/// command line or in the environment.
fn file_args(
    command: &clap::Command,
    matches: &clap::ArgMatches,
    path: &PathBuf,
) -> Result<Vec<OsString>, clap::Error> {
    let fail = |message: String| clap::Error::raw(ErrorKind::ValueValidation, message + "\n");
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(format!("cannot read config file {}: {e}", path.display())))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| fail(format!("config file {}: {e}", path.display())))?;
    let mut flat = Vec::new();
    flatten("", table, &mut flat);
    let mut out = Vec::new();
    for (key, value) in flat {
        let long = key.replace('_', "-");
        let Some(arg) = command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(long.as_str()) && long != "config")
        else {
            return Err(fail(format!(
                "config file {}: unknown option `{key}`",
                path.display()
            )));
        };
        let id = arg.get_id().as_str();
        if matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            toml::Value::Boolean(flag) if !arg.get_action().takes_values() => {
                if flag {
                    out.push(OsString::from(format!("--{long}")));
                }
                continue;
            }
            other => other.to_string(),
        };
        out.push(OsString::from(format!("--{long}={text}")));
    }
    Ok(out)
}

/// `[otlp] endpoint = ...` becomes `otlp-endpoint`.
fn flatten(prefix: &str, table: toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}-{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&name, inner, out),
            other => out.push((name, other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_core_layout() {
        let config = Config::load(["gatetrace-collector"]).unwrap();
        assert_eq!(config.spool_layout(), SpoolLayout::default());
        assert_eq!(config.namespace, DEFAULT_NAMESPACE);
        assert_eq!(config.histogram_buckets.0.first(), Some(&0.005));
        assert_eq!(config.histogram_buckets.0.last(), Some(&10.0));
        assert_eq!(config.access_log, AccessLogDestination::Stdout);
    }

    #[test]
    fn invalid_options_are_clear_errors() {
        for (args, needle) in [
            (vec!["--histogram-buckets", "0.1,0.05"], "increase"),
            (vec!["--namespace", "bad-name"], "namespace"),
            (
                vec!["--business-counters", "ok,bad name"],
                "business-counters",
            ),
            (
                vec!["--business-counters", "client_registrations"],
                "built-in",
            ),
            (vec!["--queue-capacity", "0"], "queue-capacity"),
            (vec!["--services", "billing,a\u{7}b"], "--services"),
            (vec!["--max-connections", "0"], "max-connections"),
            (vec!["--body-read-timeout-ms", "5"], "body-read-timeout-ms"),
            (vec!["--listen", "nowhere"], "listen"),
        ] {
            let err = Config::load(std::iter::once("c").chain(args.iter().copied()))
                .expect_err("must fail");
            let text = err.to_string();
            assert!(text.contains(needle), "{args:?}: {text}");
        }
    }

    #[test]
    fn toml_file_fills_what_flags_do_not_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1234\"\nnamespace = \"shop\"\nbusiness_counters = [\"orders\", \"refunds\"]\n\
             histogram-buckets = [0.1, 1]\n[otlp]\nbatch_size = 7\n",
        )
        .unwrap();
        let path_arg = path.to_str().unwrap();
        let config = Config::load(["c", "--config", path_arg, "--namespace", "flagwins"]).unwrap();
        assert_eq!(config.listen.port(), 1234);
        assert_eq!(config.namespace, "flagwins");
        assert_eq!(config.business_counters, ["orders", "refunds"]);
        assert_eq!(config.histogram_buckets.0, [0.1, 1.0]);
        assert_eq!(config.otlp.batch_size, 7);

        std::fs::write(&path, "no_such_option = 1\n").unwrap();
        let err = Config::load(["c", "--config", path_arg]).unwrap_err();
        assert!(err.to_string().contains("no_such_option"), "{err}");
    }

    #[test]
    fn the_otlp_table_of_the_toml_file_is_read_and_checked() {
        use crate::sinks::otlp::config::OtlpProtocol;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let path_arg = path.to_str().unwrap();
        std::fs::write(
            &path,
            "[otlp]\nendpoint = \"http://127.0.0.1:4317\"\nprotocol = \"http/protobuf\"\nbatch_size = 64\n",
        )
        .unwrap();
        let otlp = Config::load(["c", "--config", path_arg]).unwrap().otlp;
        assert_eq!(otlp.endpoint.as_deref(), Some("http://127.0.0.1:4317"));
        assert_eq!(otlp.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(otlp.batch_size, 64);
        assert_eq!(otlp.queue_capacity, 4096, "unset keys keep their defaults");
        for (toml, needle) in [
            ("[otlp]\nbatchsize = 1\n", "batchsize"),
            ("[otlp]\nbatch_size = 0\n", "otlp-batch-size"),
            ("[otlp]\nendpoint = \"https://otel:4317\"\n", "TLS"),
            ("[otlp]\nendpoint = \"127.0.0.1:4317\"\n", "http://"),
        ] {
            std::fs::write(&path, toml).unwrap();
            let err = Config::load(["c", "--config", path_arg]).unwrap_err();
            assert!(err.to_string().contains(needle), "{toml}: {err}");
        }
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let config = Config::load(["c", "--ingest-token", "s3cr3t-value"]).unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert_eq!(config.ingest_token.unwrap().0, "s3cr3t-value");
    }
}
