//! The requests file of `gatetrace-host run` (YAML or JSON): requests and scripted backend
//! answers. Errors name the file, the line and the field.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

use crate::headers::Headers;
use crate::http_wasm::{BackendResponse, HttpRequest};

/// A header value: one string or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Values {
    One(String),
    Many(Vec<String>),
}

fn headers(map: &BTreeMap<String, Values>) -> Headers {
    let mut h = Headers::default();
    for (name, values) in map {
        match values {
            Values::One(v) => h.add(name, v),
            Values::Many(vs) => vs.iter().for_each(|v| h.add(name, v)),
        }
    }
    h
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileResponse {
    #[serde(default = "ok")]
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, Values>,
    #[serde(default)]
    body: String,
    /// Sizes of the pieces the body arrives in (see [`BackendResponse::body_parts`]).
    #[serde(default)]
    body_parts: Vec<usize>,
    #[serde(default)]
    streamed: bool,
}

fn ok() -> u16 {
    200
}

fn get() -> String {
    "GET".into()
}

fn source() -> String {
    "192.0.2.10:50123".into()
}

fn http11() -> String {
    "HTTP/1.1".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "get")]
    method: String,
    path: String,
    #[serde(default = "http11")]
    protocol: String,
    #[serde(default)]
    headers: BTreeMap<String, Values>,
    #[serde(default)]
    body: String,
    /// Sizes of the pieces the body arrives in (see [`HttpRequest::body_parts`]).
    #[serde(default)]
    body_parts: Vec<usize>,
    #[serde(default = "source")]
    source: String,
    #[serde(default)]
    response: Option<FileResponse>,
    #[serde(default)]
    advance_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    requests: Vec<FileRequest>,
}

/// One scripted exchange.
#[derive(Debug, Clone)]
pub struct Scripted {
    /// A label for the report.
    pub name: String,
    /// The client request.
    pub request: HttpRequest,
    /// What the backend answers.
    pub response: BackendResponse,
    /// Harness-clock time to let pass after it (proxy-wasm: ticks fire).
    pub advance_ms: Option<u64>,
}

/// Reads a requests file.
///
/// # Errors
/// Unreadable file, bad YAML/JSON, unknown or missing fields, an empty list, a path not
/// starting with `/` — each named with the file and, where the parser knows it, the line.
pub fn load(path: &Path) -> anyhow::Result<Vec<Scripted>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read requests file {}", path.display()))?;
    parse(&text).with_context(|| format!("requests file {}", path.display()))
}

/// Parses requests-file text (see [`load`]).
///
/// # Errors
/// As [`load`], without the file name.
pub fn parse(text: &str) -> anyhow::Result<Vec<Scripted>> {
    let file: File = serde_yaml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(
        !file.requests.is_empty(),
        "`requests` is empty: nothing to run"
    );
    file.requests
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            anyhow::ensure!(
                r.path.starts_with('/'),
                "requests[{i}].path {:?} must start with '/'",
                r.path
            );
            let response = r.response.unwrap_or(FileResponse {
                status: 200,
                headers: BTreeMap::new(),
                body: String::new(),
                body_parts: Vec::new(),
                streamed: false,
            });
            Ok(Scripted {
                name: r.name.unwrap_or_else(|| format!("request {}", i + 1)),
                request: HttpRequest {
                    method: r.method,
                    uri: r.path,
                    protocol: r.protocol,
                    headers: headers(&r.headers),
                    body: r.body.into_bytes(),
                    body_parts: r.body_parts,
                    source_addr: r.source,
                },
                response: BackendResponse {
                    status: response.status,
                    headers: headers(&response.headers),
                    body: response.body.into_bytes(),
                    streamed: response.streamed,
                    body_parts: response.body_parts,
                },
                advance_ms: r.advance_ms,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yaml_with_defaults() {
        let reqs = parse(
            "requests:\n  - path: /a\n    headers: {accept: [a, b]}\n    response: {status: 201, streamed: true}\n  - method: POST\n    path: /b\n    body: x\n",
        )
        .unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].request.headers.get_all("accept"), vec!["a", "b"]);
        assert_eq!(
            (reqs[0].response.status, reqs[0].response.streamed),
            (201, true)
        );
        assert_eq!(
            (reqs[1].request.method.as_str(), reqs[1].response.status),
            ("POST", 200)
        );
    }

    #[test]
    fn errors_name_line_and_field() {
        let err = parse("requests:\n  - path: /a\n    heders: {}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("heders") && err.contains("line 3"), "{err}");
        let err = parse("requests:\n  - method: GET\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("path"), "{err}");
        let err = parse("requests:\n  - path: a\n").unwrap_err().to_string();
        assert!(err.contains("requests[0].path"), "{err}");
        assert!(
            parse("requests: []")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
    }
}
