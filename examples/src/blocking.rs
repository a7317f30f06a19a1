//! The OpenAI client again, blocking: `#[retry]` on a plain `fn` sleeps the thread.

use std::time::Duration;

use ai_retry::{RateLimiter, retry};

use crate::demo::{log_give_up, log_retry};
use crate::openai::{parse_answer, request_body};
use crate::{ApiError, Call, OPENAI_LIMITER, http_client_blocking};

/// A blocking chat client for `{base_url}/chat/completions`.
#[derive(Debug, Clone)]
pub struct BlockingOpenAi {
    http: reqwest::blocking::Client,
    base_url: String,
    api_key: Option<String>,
    model: String,
    limiter: &'static RateLimiter,
    max_body: usize,
}

impl BlockingOpenAi {
    /// A client for `base_url`, cutting each request off after `timeout`.
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
    ) -> Result<BlockingOpenAi, ApiError> {
        BlockingOpenAi::with_limiter(base_url, api_key, model, timeout, &OPENAI_LIMITER)
    }

    /// [`new`](BlockingOpenAi::new), taking turns from `limiter`: one per API key.
    pub fn with_limiter(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
        limiter: &'static RateLimiter,
    ) -> Result<BlockingOpenAi, ApiError> {
        Ok(BlockingOpenAi {
            http: http_client_blocking(timeout)?,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            model: model.to_string(),
            limiter,
            max_body: crate::DEFAULT_MAX_BODY,
        })
    }

    /// Holds at most `bytes` of an answer (16 MiB unless set): past it the
    /// call fails with [`ApiError::TooLarge`], not retried.
    pub fn max_body(mut self, bytes: usize) -> BlockingOpenAi {
        self.max_body = bytes;
        self
    }

    /// Asks `prompt` and returns the answer.
    pub fn chat(&self, prompt: &str) -> Result<String, ApiError> {
        self.chat_attempts(prompt, &Call::new())
    }

    /// One attempt per run of the body; each turn pays the call's estimated tokens.
    #[retry(max = 4, backoff = "exp_jitter", initial = "250ms", max_delay = "60s", deadline = "3m", on_retry = log_retry, on_give_up = log_give_up, limiter = self.limiter, cost = ai_retry::estimate::openai(&request_body(&self.model, prompt, false, None)))]
    pub fn chat_attempts(&self, prompt: &str, call: &Call) -> Result<String, ApiError> {
        let mut request = self
            .http
            .post(crate::join_url(&self.base_url, "/chat/completions"))
            .header(retry_testkit::ATTEMPT_HEADER, call.next_attempt())
            .header(retry_testkit::IDEMPOTENCY_HEADER, call.idempotency_key())
            .json(&request_body(&self.model, prompt, false, None));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let sent = RateLimiter::now();
        let response = request.send()?;
        self.limiter.observe_at(response.headers(), sent);
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let headers = response.headers().clone();
            let limit = ai_retry::body::ERROR_BODY_LIMIT;
            let body = ai_retry::body::read_blocking(response, limit)?;
            return Err(ApiError::from_capped(status, &headers, &body));
        }
        let body = ai_retry::body::read_blocking(response, self.max_body)?;
        parse_answer(&crate::answer(body, self.max_body)?)
    }
}
