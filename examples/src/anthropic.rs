//! An Anthropic Messages API client: `POST {base}/v1/messages`, where overload
//! is a 529.

use std::time::Duration;

use ai_retry::{Cost, RateLimiter, retry};
use serde_json::{Value, json};

use crate::{
    ANTHROPIC_LIMITER, ApiError, Call, Endpoint,
    demo::{log_give_up, log_retry},
};

/// The API version this client speaks.
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The most an answer may be: Anthropic requires it, and counts it against
/// the key's output-token limit up front.
const MAX_TOKENS: u32 = 1024;

/// A chat client for `{base_url}/v1/messages`.
#[derive(Debug, Clone)]
pub struct Anthropic {
    endpoint: Endpoint,
}

impl Anthropic {
    /// A client for `base_url` (e.g. `https://api.anthropic.com`), cutting each
    /// request off after `timeout`.
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
    ) -> Result<Anthropic, ApiError> {
        Anthropic::with_limiter(base_url, api_key, model, timeout, &ANTHROPIC_LIMITER)
    }

    /// [`new`](Anthropic::new), taking turns from `limiter`: one per API key.
    pub fn with_limiter(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
        limiter: &'static RateLimiter,
    ) -> Result<Anthropic, ApiError> {
        Ok(Anthropic {
            endpoint: Endpoint::new(base_url, api_key, model, timeout, limiter)?,
        })
    }

    /// A client for a demo's backend: its URL, key, model, timeout and answer limit.
    pub fn for_backend(backend: &crate::demo::Backend) -> Result<Anthropic, ApiError> {
        let client = Anthropic::new(
            &backend.base_url,
            backend.api_key.clone(),
            &backend.model,
            backend.timeout,
        )?;
        Ok(client.max_body(backend.max_body))
    }

    /// Holds at most `bytes` of an answer (16 MiB unless set): past it the
    /// call fails with [`ApiError::TooLarge`], not retried.
    pub fn max_body(mut self, bytes: usize) -> Anthropic {
        self.endpoint.set_max_body(bytes);
        self
    }

    /// Asks `prompt` and returns the answer, retrying 529 overload, rate limits,
    /// timeouts and dropped connections.
    pub async fn chat(&self, prompt: &str) -> Result<String, ApiError> {
        self.chat_attempts(prompt, &Call::new()).await
    }

    /// What asking `prompt` costs of the key's limits, by Anthropic's rule:
    /// input ceil(characters / 4), output `max_tokens`.
    pub fn cost_of(&self, prompt: &str) -> Cost {
        ai_retry::estimate::anthropic(&self.body(prompt))
    }

    fn body(&self, prompt: &str) -> Value {
        json!({
            "model": self.endpoint.model,
            "max_tokens": MAX_TOKENS,
            "messages": [{ "role": "user", "content": prompt }],
        })
    }

    /// The rate limiter this client's calls take turns from.
    pub fn limiter(&self) -> &'static RateLimiter {
        self.endpoint.limiter()
    }

    /// One attempt per run of the body; each turn pays the call's input and
    /// output tokens.
    #[retry(max = 4, backoff = "exp_jitter", initial = "250ms", max_delay = "60s", deadline = "3m", on_retry = log_retry, on_give_up = log_give_up, limiter = self.endpoint.limiter, cost = self.cost_of(prompt))]
    pub async fn chat_attempts(&self, prompt: &str, call: &Call) -> Result<String, ApiError> {
        self.attempt(prompt, call).await
    }

    /// A single attempt, not retried: the unit other retry policies wrap.
    pub async fn attempt(&self, prompt: &str, call: &Call) -> Result<String, ApiError> {
        let result = self.send(prompt, call).await;
        crate::load::tally(call, &result);
        result
    }

    async fn send(&self, prompt: &str, call: &Call) -> Result<String, ApiError> {
        let mut request = self
            .endpoint
            .http
            .post(self.endpoint.url("/v1/messages"))
            .header("anthropic-version", ANTHROPIC_VERSION)
            .header(retry_testkit::ATTEMPT_HEADER, call.next_attempt())
            .header(retry_testkit::IDEMPOTENCY_HEADER, call.idempotency_key())
            .json(&self.body(prompt));
        if let Some(key) = &self.endpoint.api_key {
            request = request.header("x-api-key", key);
        }
        let sent = RateLimiter::now();
        let response = request.send().await?;
        let limiter = self.endpoint.limiter;
        let body = crate::success_body(response, limiter, sent, self.endpoint.max_body()).await?;
        parse_answer(&body)
    }
}

/// The text of a Messages API answer.
pub fn parse_answer(body: &[u8]) -> Result<String, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::Malformed(format!("body is not JSON: {e}")))?;
    let blocks = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::Malformed("no content in the answer".into()))?;
    Ok(blocks
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect())
}
