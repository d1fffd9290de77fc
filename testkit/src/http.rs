//! The one blocking HTTP test client (over `ureq`) for tests' polling loops against a real
//! server on loopback: any status is an answer, JSON bodies are parsed, timeouts are bounded.

use std::time::Duration;

use serde_json::Value;

/// The `Content-Type` of record lines.
const NDJSON: &str = "application/x-ndjson";
/// How long one call may take before it counts as no answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Any answer: its status, headers and body text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    headers: Vec<(String, String)>,
}

impl Answer {
    /// The first value of header `name` (any case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn read(mut response: ureq::http::Response<ureq::Body>) -> Option<Self> {
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        Some(Self {
            status: response.status().as_u16(),
            body: response.body_mut().read_to_string().ok()?,
            headers,
        })
    }
}

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

    /// A GET's whole answer, body as text; `None` when no answer came.
    #[must_use]
    pub fn get_text(&self, url: &str) -> Option<Answer> {
        Answer::read(self.agent.get(url).call().ok()?)
    }

    /// POSTs NDJSON lines and returns the answer whatever its status; `None` when no answer
    /// came.
    #[must_use]
    pub fn post_ndjson_answer(&self, url: &str, body: String) -> Option<Answer> {
        let response = self
            .agent
            .post(url)
            .header("content-type", NDJSON)
            .send(body)
            .ok()?;
        Answer::read(response)
    }

    /// POSTs NDJSON lines; panics unless the answer is 2xx; returns its JSON body.
    pub fn post_ndjson(&self, url: &str, body: String) -> Value {
        let mut response = self
            .agent
            .post(url)
            .header("content-type", NDJSON)
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
