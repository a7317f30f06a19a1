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
/// max_delay = "60s", deadline = "3m")]`, as a value.
pub const POLICY: Policy = Policy::new()
    .max_attempts(4)
    .backoff(Backoff::ExpJitter)
    .initial(Duration::from_millis(250))
    .max_delay(Duration::from_secs(30))
    .deadline(Duration::from_secs(180));

/// async-openai's client.
pub type Client = async_openai::Client<GatewayConfig>;

/// `OpenAIConfig` with the base URL's query (a gateway's `?key=…`) moved to
/// where async-openai puts a query: after each request's path.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    inner: OpenAIConfig,
    query: Vec<(String, String)>,
}

impl GatewayConfig {
    /// The config for `base_url` (query and all) and `api_key`.
    pub fn new(base_url: &str, api_key: &str) -> GatewayConfig {
        let (base, query) = base_url.split_once('?').unwrap_or((base_url, ""));
        let query = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (name.to_string(), value.to_string())
            })
            .collect();
        GatewayConfig {
            inner: OpenAIConfig::new()
                .with_api_base(base.trim_end_matches('/'))
                .with_api_key(api_key),
            query,
        }
    }
}

impl async_openai::config::Config for GatewayConfig {
    fn headers(&self) -> reqwest::header::HeaderMap {
        self.inner.headers()
    }

    fn url(&self, path: &str) -> String {
        self.inner.url(path)
    }

    fn query(&self) -> Vec<(&str, &str)> {
        self.query
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect()
    }

    fn api_base(&self) -> &str {
        self.inner.api_base()
    }

    fn api_key(&self) -> &secrecy::SecretString {
        self.inner.api_key()
    }
}

/// An async-openai client for `base_url` whose requests retry as `openai_chat`'s
/// do, taking turns from `limiter`; each request is cut off after `timeout`,
/// and at most `max_body` of an answer is read (see [`explain`]).
pub fn client(
    base_url: &str,
    api_key: Option<&str>,
    timeout: Duration,
    limiter: &'static RateLimiter,
    max_body: usize,
) -> Result<Client, ApiError> {
    let http = crate::http_client(reqwest::Client::builder().timeout(timeout))?;
    let retry = HttpRetry::new(POLICY)
        .limiter(limiter)
        .named("async_openai_chat")
        .on_retry(log_retry)
        .on_give_up(log_give_up)
        .max_body(max_body);
    let config = GatewayConfig::new(base_url, api_key.unwrap_or_default());
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
        backend.max_body,
    )
}

/// async-openai's error, said as the examples say theirs: an answer cut at
/// `max_body` (the layer's limit, somewhere in reqwest's error chain) is
/// [`ApiError::TooLarge`]; anything else stays as it was.
pub fn explain(error: OpenAIError, max_body: usize) -> Box<dyn std::error::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            return Box::new(ApiError::TooLarge {
                what: "the answer",
                limit: max_body,
            });
        }
        cause = error.source();
    }
    Box::new(error)
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
