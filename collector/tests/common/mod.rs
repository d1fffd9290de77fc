//! What the collector's end-to-end tests share: a small blocking HTTP client for their polling
//! loops. `otlp_receiver.rs` beside it holds the mock OTLP receivers; the tests that need them
//! include it on its own (`mod common { pub mod otlp_receiver; }`).

use std::time::Duration;

use serde_json::Value;

/// A blocking HTTP client over reqwest.
pub struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> Self {
        Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    /// A GET's outcome: whether it answered 2xx, and its body as JSON (`Null` when it is not
    /// JSON). `None` when no answer came.
    pub fn get(&self, url: &str) -> Option<(bool, Value)> {
        self.runtime.block_on(async {
            let response = self.client.get(url).send().await.ok()?;
            let ok = response.status().is_success();
            Some((ok, response.json().await.unwrap_or(Value::Null)))
        })
    }

    /// POSTs NDJSON lines; panics unless the answer is 2xx; returns its JSON body.
    pub fn post_ndjson(&self, url: &str, body: String) -> Value {
        self.runtime.block_on(async {
            let response = self
                .client
                .post(url)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            response.json().await.unwrap()
        })
    }
}
