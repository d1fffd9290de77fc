//! The one blocking HTTP test client (over `ureq`) for tests' polling loops against a real
//! server on loopback: any status is an answer, JSON bodies are parsed, timeouts are bounded.

use std::time::Duration;

use serde_json::Value;

/// How long one call may take before it counts as no answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking HTTP client; statuses are returned, never turned into errors.
#[derive(Debug)]
pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    #[must_use]
    pub fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(CALL_TIMEOUT))
            .http_status_as_error(false)
            .build();
        Self {
            agent: config.into(),
        }
    }

    /// A GET's outcome: whether it answered 2xx, and its body as JSON (`Null` when it is not
    /// JSON). `None` when no answer came.
    #[must_use]
    pub fn get(&self, url: &str) -> Option<(bool, Value)> {
        let mut response = self.agent.get(url).call().ok()?;
        let ok = response.status().is_success();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        Some((ok, serde_json::from_str(&body).unwrap_or(Value::Null)))
    }

    /// POSTs NDJSON lines; panics unless the answer is 2xx; returns its JSON body.
    pub fn post_ndjson(&self, url: &str, body: String) -> Value {
        let mut response = self
            .agent
            .post(url)
            .header("content-type", "application/x-ndjson")
            .send(body)
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("POST {url}: reading the answer: {e}"));
        assert!(status.is_success(), "POST {url}: {status}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: not JSON ({e}): {text}"))
    }
}
