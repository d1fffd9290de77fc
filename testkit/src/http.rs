//! The one blocking HTTP test client (over `ureq`) for tests' polling loops against a real
//! server on loopback: any status is an answer, JSON bodies are parsed, timeouts are bounded.

use std::time::Duration;

use serde_json::Value;

/// The `Content-Type` of record lines.
const NDJSON: &str = "application/x-ndjson";

/// How long one call may take before it counts as no answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A response read whole: status, headers (names lowercase, in order of arrival), body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (lowercase), as lossy text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// Reads a response whole (the connection goes back to the agent's pool).
    fn read(mut response: ureq::http::Response<ureq::Body>) -> Option<Self> {
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        Some(Self {
            status: response.status().as_u16(),
            headers,
            body: response.body_mut().read_to_vec().ok()?,
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

    /// A GET's status and body as text (lossy); `None` when no answer came. Reads the whole
    /// body, so the connection goes back to the agent's pool for the next call.
    #[must_use]
    pub fn get_text(&self, url: &str) -> Option<(u16, String)> {
        let mut response = self.agent.get(url).call().ok()?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_vec().ok()?;
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Sends a body-less `method` request to `url` with `headers` and reads the whole answer
    /// (the connection goes back to the agent's pool). `None` when no answer came.
    #[must_use]
    pub fn call(&self, method: &str, url: &str, headers: &[(&str, &str)]) -> Option<Answer> {
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Answer::read(self.agent.run(request.body(()).ok()?).ok()?)
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
