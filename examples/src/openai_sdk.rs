//! async-openai 0.43, the most used Rust OpenAI client, with ai-retry
//! underneath: its own retries replaced by [`HttpRetry`] as a tower layer
//! through `Client::with_http_service`, with the policy and the limiter of
//! [`OpenAi`](crate::openai::OpenAi).

use std::time::Duration;

use ai_retry::runtime::{Backoff, Policy};
use ai_retry::{HttpRetry, RateLimiter};
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use tower::Layer;

use crate::ApiError;
use crate::demo::{log_give_up, log_retry};

/// `openai_chat`'s `#[retry(max = 4, backoff = "exp_jitter", initial = "250ms",
/// max_delay = "30s", deadline = "3m")]`, as a value.
pub const POLICY: Policy = Policy::new()
    .max_attempts(4)
    .backoff(Backoff::ExpJitter)
    .initial(Duration::from_millis(250))
    .max_delay(Duration::from_secs(30))
    .deadline(Duration::from_secs(180));

/// async-openai's client.
pub type Client = async_openai::Client<OpenAIConfig>;

/// An async-openai client for `base_url` whose requests retry as `openai_chat`'s
/// do, taking turns from `limiter`; each request is cut off after `timeout`.
pub fn client(
    base_url: &str,
    api_key: Option<&str>,
    timeout: Duration,
    limiter: &'static RateLimiter,
) -> Result<Client, ApiError> {
    let http = crate::http_client(reqwest::Client::builder().timeout(timeout))?;
    let retry = HttpRetry::new(POLICY)
        .limiter(limiter)
        .named("async_openai_chat")
        .on_retry(log_retry)
        .on_give_up(log_give_up);
    let config = OpenAIConfig::new()
        .with_api_base(base_url)
        .with_api_key(api_key.unwrap_or_default());
    Ok(Client::with_config(config).with_http_service(retry.layer(ReqwestService::new(http))))
}

/// The client for the backend an example chose, on the process's
/// [`OPENAI_LIMITER`](crate::OPENAI_LIMITER).
pub fn for_backend(backend: &crate::demo::Backend) -> Result<Client, ApiError> {
    client(
        &backend.base_url,
        backend.api_key.as_deref(),
        backend.timeout,
        &crate::OPENAI_LIMITER,
    )
}

/// Asks `prompt` of `model` and returns the answer's text.
pub async fn ask(client: &Client, model: &str, prompt: &str) -> Result<String, OpenAIError> {
    let request = CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([ChatCompletionRequestUserMessage::from(prompt).into()])
        .build()?;
    let response = client.chat().create(request).await?;
    Ok(response
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.message.content)
        .unwrap_or_default())
}
