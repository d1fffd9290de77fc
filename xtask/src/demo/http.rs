//! Plain-HTTP GETs on loopback for the demo: readiness checks and Prometheus's HTTP API.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

/// Longest a single request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// The status and body of `GET url` with `query` parameters (encoded here).
pub fn get(url: &str, query: &[(&str, &str)]) -> Result<(u16, String)> {
    let mut request = agent().get(url);
    for (name, value) in query {
        request = request.query(*name, *value);
    }
    let mut response = request.call().with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("read the answer of GET {url}"))?;
    Ok((status, body))
}

/// Whether `GET url` answers 200 now.
pub fn answers(url: &str) -> bool {
    get(url, &[]).is_ok_and(|(status, _)| status == 200)
}

/// `GET url` as JSON; fails unless it answers 200.
pub fn get_json(url: &str, query: &[(&str, &str)]) -> Result<Value> {
    let (status, body) = get(url, query)?;
    if status != 200 {
        bail!("GET {url} answered {status}: {}", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("GET {url}: not JSON"))
}
