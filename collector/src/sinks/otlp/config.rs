//! OTLP export options (`--otlp-*`, the standard `OTEL_EXPORTER_OTLP_*` variables, or the
//! `[otlp]` table of the TOML file through the same flags), each default defined once here,
//! and the checks clap cannot make (endpoint scheme, header syntax).

use std::collections::HashMap;
use std::fmt;

use anyhow::{Context as _, bail, ensure};
use percent_encoding::percent_decode_str;

/// Time budget of one batch export in milliseconds, retries included.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Spans held for export at most (waiting or in an export request).
const DEFAULT_QUEUE_CAPACITY: u32 = 4096;
/// Spans per export request at most.
const DEFAULT_BATCH_SIZE: u32 = 512;
/// Longest wait before a partial batch is sent, in milliseconds.
const DEFAULT_BATCH_DELAY_MS: u64 = 1000;
/// Retries of a failed export.
const DEFAULT_MAX_RETRIES: u32 = 3;
/// Export requests in flight at once at most.
const DEFAULT_MAX_CONCURRENT_EXPORTS: u32 = 4;

/// Wire protocol of the OTLP exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (default port 4317).
    #[default]
    #[value(name = "grpc")]
    Grpc,
    /// OTLP over HTTP with a protobuf body (default port 4318, path `/v1/traces`).
    #[value(name = "http/protobuf", alias = "http-protobuf")]
    HttpProtobuf,
}

/// Compression of export request bodies (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OtlpCompression {
    /// Bodies sent as they are (the OTLP default).
    #[default]
    #[value(name = "none")]
    None,
    /// gzip: `Content-Encoding: gzip` over HTTP, `grpc-encoding: gzip` over gRPC.
    #[value(name = "gzip")]
    Gzip,
}

/// OTLP span export options. Without an endpoint, spans are disabled.
#[derive(Clone, PartialEq, Eq, clap::Args)]
pub struct OtlpConfig {
    /// Base OTLP endpoint, e.g. `http://127.0.0.1:4317` (gRPC) or `http://127.0.0.1:4318`
    /// (HTTP, `/v1/traces` is appended). Unset (and no traces endpoint): spans are disabled.
    #[arg(
        id = "otlp_endpoint",
        long = "otlp-endpoint",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        value_name = "URL"
    )]
    pub endpoint: Option<String>,

    /// Full traces endpoint, used as given (takes precedence over `--otlp-endpoint`).
    #[arg(
        id = "otlp_traces_endpoint",
        long = "otlp-traces-endpoint",
        env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        value_name = "URL"
    )]
    pub traces_endpoint: Option<String>,

    /// OTLP protocol: `grpc` or `http/protobuf` (`http-protobuf` is accepted too).
    #[arg(
        id = "otlp_protocol",
        value_name = "PROTOCOL",
        long = "otlp-protocol",
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        value_enum,
        default_value_t = OtlpProtocol::default()
    )]
    pub protocol: OtlpProtocol,

    /// Extra request headers as `key1=value1,key2=value2` (URL-encoded values), e.g. an API
    /// key for the backend. Never logged.
    #[arg(
        id = "otlp_headers",
        long = "otlp-headers",
        env = "OTEL_EXPORTER_OTLP_HEADERS",
        value_name = "LIST",
        hide_env_values = true
    )]
    pub headers: Option<String>,

    /// Body compression: `none` or `gzip`.
    #[arg(
        id = "otlp_compression",
        value_name = "COMPRESSION",
        long = "otlp-compression",
        env = "OTEL_EXPORTER_OTLP_COMPRESSION",
        value_enum,
        default_value_t = OtlpCompression::default()
    )]
    pub compression: OtlpCompression,

    /// Time budget of one batch export in milliseconds, retries included.
    #[arg(
        id = "otlp_timeout_ms", value_name = "MS", long = "otlp-timeout-ms",
        env = "OTEL_EXPORTER_OTLP_TIMEOUT",
        default_value_t = DEFAULT_TIMEOUT_MS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub timeout_ms: u64,

    /// Spans held for export at most, waiting or in an export request; when full, new spans
    /// are dropped and counted.
    #[arg(
        id = "otlp_queue_capacity", value_name = "N", long = "otlp-queue-capacity",
        env = "GATETRACE_OTLP_QUEUE_CAPACITY",
        default_value_t = DEFAULT_QUEUE_CAPACITY,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub queue_capacity: u32,

    /// Spans sent in one export request at most.
    #[arg(
        id = "otlp_batch_size", value_name = "N", long = "otlp-batch-size",
        env = "GATETRACE_OTLP_BATCH_SIZE",
        default_value_t = DEFAULT_BATCH_SIZE,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub batch_size: u32,

    /// Longest wait in milliseconds before a partial batch is sent.
    #[arg(
        id = "otlp_batch_delay_ms", value_name = "MS", long = "otlp-batch-delay-ms",
        env = "GATETRACE_OTLP_BATCH_DELAY_MS",
        default_value_t = DEFAULT_BATCH_DELAY_MS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub batch_delay_ms: u64,

    /// Retries of a failed export (exponential backoff, within the timeout); then the batch
    /// is counted as failed.
    #[arg(
        id = "otlp_max_retries",
        value_name = "N",
        long = "otlp-max-retries",
        env = "GATETRACE_OTLP_MAX_RETRIES",
        default_value_t = DEFAULT_MAX_RETRIES
    )]
    pub max_retries: u32,

    /// Export requests in flight at once at most (each up to one batch).
    #[arg(
        id = "otlp_max_concurrent_exports", value_name = "N", long = "otlp-max-concurrent-exports",
        env = "GATETRACE_OTLP_MAX_CONCURRENT_EXPORTS",
        default_value_t = DEFAULT_MAX_CONCURRENT_EXPORTS,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_concurrent_exports: u32,

    /// `service.name` of every span's resource. Unset: the record's own `service`.
    #[arg(
        id = "otlp_service_name",
        long = "otlp-service-name",
        env = "OTEL_SERVICE_NAME",
        value_name = "NAME"
    )]
    pub service_name: Option<String>,
}

/// The flags' defaults, for configs built in code (no endpoint: spans disabled).
impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            traces_endpoint: None,
            protocol: OtlpProtocol::default(),
            headers: None,
            compression: OtlpCompression::default(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            batch_size: DEFAULT_BATCH_SIZE,
            batch_delay_ms: DEFAULT_BATCH_DELAY_MS,
            max_retries: DEFAULT_MAX_RETRIES,
            max_concurrent_exports: DEFAULT_MAX_CONCURRENT_EXPORTS,
            service_name: None,
        }
    }
}

// Hand-written so the headers (API keys) never reach a log line.
impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("traces_endpoint", &self.traces_endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &self.headers.as_ref().map(|_| "<redacted>"))
            .field("compression", &self.compression)
            .field("timeout_ms", &self.timeout_ms)
            .field("queue_capacity", &self.queue_capacity)
            .field("batch_size", &self.batch_size)
            .field("batch_delay_ms", &self.batch_delay_ms)
            .field("max_retries", &self.max_retries)
            .field("max_concurrent_exports", &self.max_concurrent_exports)
            .field("service_name", &self.service_name)
            .finish()
    }
}

impl OtlpConfig {
    /// The traces URL the exporter posts to, or `None` when spans are disabled.
    #[must_use]
    pub fn traces_url(&self) -> Option<String> {
        fn non_empty(s: &Option<String>) -> Option<&str> {
            s.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        if let Some(url) = non_empty(&self.traces_endpoint) {
            return Some(url.to_owned());
        }
        let base = non_empty(&self.endpoint)?;
        Some(match self.protocol {
            OtlpProtocol::Grpc => base.to_owned(),
            OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
        })
    }

    /// Checks what clap cannot (the endpoint scheme, the header syntax), and the non-zero
    /// sizes clap checks on flags for configs built in code.
    ///
    /// # Errors
    /// Names the offending option.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("otlp timeout_ms", self.timeout_ms),
            ("otlp queue_capacity", u64::from(self.queue_capacity)),
            ("otlp batch_size", u64::from(self.batch_size)),
            ("otlp batch_delay_ms", self.batch_delay_ms),
            (
                "otlp max_concurrent_exports",
                u64::from(self.max_concurrent_exports),
            ),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if let Some(url) = self.traces_url()
            && !url.starts_with("http://")
        {
            bail!(
                "OTLP endpoint {url:?} must start with http:// (TLS is not built in: send to a \
                 local OpenTelemetry Collector or agent that forwards with TLS)"
            );
        }
        self.parsed_headers()?;
        Ok(())
    }

    /// The headers as a map, lowercase names (the `OTEL_EXPORTER_OTLP_HEADERS` syntax).
    ///
    /// # Errors
    /// A malformed entry (named by its key, never its value).
    pub fn parsed_headers(&self) -> anyhow::Result<HashMap<String, String>> {
        parse_headers(self.headers.as_deref().unwrap_or(""))
    }
}

/// Parses `key1=value1,key2=value2` (values percent-decoded), the `OTEL_EXPORTER_OTLP_HEADERS`
/// syntax. Error messages name the key, never the value.
fn parse_headers(list: &str) -> anyhow::Result<HashMap<String, String>> {
    let mut headers = HashMap::new();
    for item in list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let Some((key, value)) = item.split_once('=') else {
            bail!("OTLP header entry without '=' (expected key=value)");
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            bail!("OTLP header name {key:?} is not a valid header name");
        }
        let value = percent_decode(value.trim())
            .with_context(|| format!("OTLP header {key:?}: bad percent-encoding"))?;
        if value.bytes().any(|b| b.is_ascii_control()) {
            bail!("OTLP header {key:?}: value contains control characters");
        }
        headers.insert(key, value);
    }
    Ok(headers)
}

/// Percent-decodes `s` as UTF-8. `percent-encoding` passes a malformed escape (`%zz`, `%4`)
/// through as text; like the OpenTelemetry SDKs, this refuses it.
fn percent_decode(s: &str) -> anyhow::Result<String> {
    let malformed = s.split('%').skip(1).any(|after| {
        !after
            .as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    ensure!(!malformed, "bad %-escape");
    Ok(percent_decode_str(s).decode_utf8()?.into_owned())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn traces_url_follows_the_otlp_endpoint_rules() {
        let grpc = OtlpConfig {
            endpoint: Some("http://otel:4317".into()),
            ..OtlpConfig::default()
        };
        assert_eq!(grpc.traces_url().as_deref(), Some("http://otel:4317"));
        let http = OtlpConfig {
            endpoint: Some("http://otel:4318/".into()),
            protocol: OtlpProtocol::HttpProtobuf,
            ..OtlpConfig::default()
        };
        assert_eq!(
            http.traces_url().as_deref(),
            Some("http://otel:4318/v1/traces")
        );
        let exact = OtlpConfig {
            traces_endpoint: Some("http://otel:4318/custom".into()),
            ..http
        };
        assert_eq!(
            exact.traces_url().as_deref(),
            Some("http://otel:4318/custom")
        );
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        otlp: OtlpConfig,
    }

    #[test]
    fn flags_parse_and_bad_values_are_clear_errors() {
        let cli = Cli::try_parse_from([
            "c",
            "--otlp-endpoint=http://127.0.0.1:4318",
            "--otlp-protocol=http-protobuf",
            "--otlp-queue-capacity=10",
            "--otlp-batch-size=5",
            "--otlp-max-retries=0",
            "--otlp-service-name=gw",
            "--otlp-compression=gzip",
            "--otlp-max-concurrent-exports=2",
        ])
        .unwrap();
        assert_eq!(cli.otlp.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(
            (
                cli.otlp.queue_capacity,
                cli.otlp.batch_size,
                cli.otlp.max_retries
            ),
            (10, 5, 0)
        );
        assert_eq!(cli.otlp.service_name.as_deref(), Some("gw"));
        assert_eq!(cli.otlp.compression, OtlpCompression::Gzip);
        assert_eq!(cli.otlp.max_concurrent_exports, 2);
        let standard = Cli::try_parse_from(["c", "--otlp-protocol=http/protobuf"]).unwrap();
        assert_eq!(standard.otlp.protocol, OtlpProtocol::HttpProtobuf);
        for bad in [
            "--otlp-protocol=http/json",
            "--otlp-queue-capacity=0",
            "--otlp-timeout-ms=0",
            "--otlp-compression=zstd",
            "--otlp-max-concurrent-exports=0",
        ] {
            assert!(Cli::try_parse_from(["c", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_refuses_zero_sizes_tls_and_endpoints_without_scheme() {
        let zero = OtlpConfig {
            batch_size: 0,
            ..OtlpConfig::default()
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .contains("batch_size")
        );
        let tls = OtlpConfig {
            endpoint: Some("https://otel:4317".into()),
            ..OtlpConfig::default()
        };
        assert!(tls.validate().unwrap_err().to_string().contains("TLS"));
        let scheme = OtlpConfig {
            endpoint: Some("127.0.0.1:4317".into()),
            ..OtlpConfig::default()
        };
        assert!(scheme.validate().is_err());
    }

    #[test]
    fn headers_parse_percent_decoded_and_never_show_in_debug() {
        let parsed = parse_headers("Authorization=Bearer%20abc , x-tenant=t1,").unwrap();
        assert_eq!(parsed["authorization"], "Bearer abc");
        assert_eq!(parsed["x-tenant"], "t1");
        for bad in [
            "novalue",
            "=v",
            "bad name=v",
            "k=%zz",
            "k=%4",
            "k=%+1",
            "k=%0a",
        ] {
            assert!(parse_headers(bad).is_err(), "{bad}");
        }
        let err = parse_headers("k=%zzsecret").unwrap_err();
        assert!(!format!("{err:#}").contains("secret"));
        let cfg = OtlpConfig {
            headers: Some("authorization=topsecret".into()),
            ..OtlpConfig::default()
        };
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("topsecret") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
