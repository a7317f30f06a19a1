//! An OpenAI (or OpenAI-compatible) chat client: `POST {base}/chat/completions`.

use std::time::Duration;

use ai_retry::{Cost, RateLimiter, retry};
use serde_json::{Value, json};

use crate::sse::{Dialect, TokenStream};
use crate::{
    ApiError, Call, Endpoint, OPENAI_LIMITER,
    demo::{log_give_up, log_retry},
};

/// A chat client for `{base_url}/chat/completions`.
#[derive(Debug, Clone)]
pub struct OpenAi {
    endpoint: Endpoint,
    max_tokens: Option<u32>,
}

impl OpenAi {
    /// A client for `base_url` (e.g. `https://api.openai.com/v1`), cutting each
    /// request off after `timeout` so a server that hangs is a `Timeout`, and
    /// taking turns from the process's [`OPENAI_LIMITER`].
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
    ) -> Result<OpenAi, ApiError> {
        OpenAi::with_limiter(base_url, api_key, model, timeout, &OPENAI_LIMITER)
    }

    /// [`new`](OpenAi::new) for the backend an example chose, holding at
    /// most its `max_body` of an answer.
    pub fn for_backend(backend: &crate::demo::Backend) -> Result<OpenAi, ApiError> {
        let client = OpenAi::new(
            &backend.base_url,
            backend.api_key.clone(),
            &backend.model,
            backend.timeout,
        )?;
        Ok(client.max_body(backend.max_body))
    }

    /// Holds at most `bytes` of an answer (16 MiB unless set): past it the
    /// call fails with [`ApiError::TooLarge`], not retried. A stream reads at
    /// most that much in all, so no event is larger either.
    pub fn max_body(mut self, bytes: usize) -> OpenAi {
        self.endpoint.set_max_body(bytes);
        self
    }

    /// [`new`](OpenAi::new), taking turns from `limiter`: one per API key.
    pub fn with_limiter(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
        limiter: &'static RateLimiter,
    ) -> Result<OpenAi, ApiError> {
        Ok(OpenAi {
            endpoint: Endpoint::new(base_url, api_key, model, timeout, limiter)?,
            max_tokens: None,
        })
    }

    /// Asks for answers of at most `tokens` (`max_tokens`), which the API
    /// counts against the key's token limit up front.
    pub fn max_tokens(mut self, tokens: u32) -> OpenAi {
        self.max_tokens = Some(tokens);
        self
    }

    /// What asking `prompt` costs of the key's limits, by OpenAI's rule:
    /// ceil(prompt characters / 4) + `max_tokens`, estimated from the body sent.
    pub fn cost_of(&self, prompt: &str) -> Cost {
        let body = request_body(&self.endpoint.model, prompt, false, self.max_tokens);
        ai_retry::estimate::openai(&body)
    }

    /// The rate limiter this client's calls take turns from.
    pub fn limiter(&self) -> &'static RateLimiter {
        self.endpoint.limiter()
    }

    /// Asks `prompt` and returns the whole answer, retrying rate limits,
    /// timeouts, overload, server errors and dropped connections.
    pub async fn chat(&self, prompt: &str) -> Result<String, ApiError> {
        self.chat_attempts(prompt, &Call::new()).await
    }

    /// One attempt per run of the body; `call` carries what the attempts share.
    /// Each turn from the limiter pays the call's estimated tokens.
    #[retry(max = 4, backoff = "exp_jitter", initial = "250ms", max_delay = "60s", deadline = "3m", on_retry = log_retry, on_give_up = log_give_up, limiter = self.endpoint.limiter, cost = self.cost_of(prompt))]
    pub async fn chat_attempts(&self, prompt: &str, call: &Call) -> Result<String, ApiError> {
        self.attempt(prompt, call).await
    }

    /// A single attempt, not retried: the unit other retry policies (the
    /// benchmarks' peers) wrap.
    pub async fn attempt(&self, prompt: &str, call: &Call) -> Result<String, ApiError> {
        let result = self.send(prompt, call).await;
        crate::load::tally(call, &result);
        result
    }

    async fn send(&self, prompt: &str, call: &Call) -> Result<String, ApiError> {
        let sent = RateLimiter::now();
        let response = self.request(prompt, false, call).send().await?;
        let limiter = self.endpoint.limiter;
        let body = crate::success_body(response, limiter, sent, self.endpoint.max_body()).await?;
        parse_answer(&body)
    }

    /// Streams the answer to `on_token` as it arrives. The request is retried
    /// until the first token arrives, never after: a stream that breaks later is
    /// an error, not a replay that would print the answer twice.
    pub async fn chat_stream(
        &self,
        prompt: &str,
        mut on_token: impl FnMut(&str),
    ) -> Result<String, ApiError> {
        let (mut stream, first) = self.open_stream(prompt, &Call::new()).await?;
        on_token(&first);
        let mut answer = first;
        while let Some(token) = stream.next_token().await? {
            on_token(&token);
            answer.push_str(&token);
        }
        Ok(answer)
    }

    /// Sends the request and waits for the first token: the retried part of a stream.
    #[retry(max = 4, backoff = "exp_jitter", initial = "250ms", max_delay = "60s", deadline = "3m", on_retry = log_retry, on_give_up = log_give_up, limiter = self.endpoint.limiter, cost = self.cost_of(prompt))]
    pub async fn open_stream(
        &self,
        prompt: &str,
        call: &Call,
    ) -> Result<(TokenStream, String), ApiError> {
        let sent = RateLimiter::now();
        let response = self.request(prompt, true, call).send().await?;
        let response = crate::success_response(response, self.endpoint.limiter, sent).await?;
        let mut stream = TokenStream::new(response, Dialect::OpenAi, self.endpoint.max_body());
        match stream.next_token().await? {
            Some(first) => Ok((stream, first)),
            None => Err(stream.incomplete()),
        }
    }

    fn request(&self, prompt: &str, stream: bool, call: &Call) -> reqwest::RequestBuilder {
        let mut request = self
            .endpoint
            .http
            .post(self.endpoint.url("/chat/completions"))
            .header(retry_testkit::ATTEMPT_HEADER, call.next_attempt())
            .header(retry_testkit::IDEMPOTENCY_HEADER, call.idempotency_key())
            .json(&request_body(
                &self.endpoint.model,
                prompt,
                stream,
                self.max_tokens,
            ));
        if let Some(key) = &self.endpoint.api_key {
            request = request.bearer_auth(key);
        }
        request
    }
}

/// The chat completion request; `max_tokens` when given.
pub fn request_body(model: &str, prompt: &str, stream: bool, max_tokens: Option<u32>) -> Value {
    let mut body = json!({
        "model": model,
        "messages": [{ "role": "user", "content": prompt }],
        "stream": stream,
    });
    if let Some(tokens) = max_tokens {
        body["max_tokens"] = json!(tokens);
    }
    body
}

/// The answer in a chat completion body.
pub fn parse_answer(body: &[u8]) -> Result<String, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::Malformed(format!("body is not JSON: {e}")))?;
    value
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::Malformed("no choices[0].message.content in the answer".into()))
}
