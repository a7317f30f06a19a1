//! AI chat clients built on reqwest + serde_json, each around one `#[retry]`
//! function: the project's demo, and what its integration tests drive against
//! `retry-testkit`.
//!
//! - [`openai::OpenAi`]: `async fn` chat and streaming (`openai_chat`, `stream_chat`);
//! - [`anthropic::Anthropic`]: `async fn` chat with 529 overload (`anthropic_chat`);
//! - [`blocking::BlockingOpenAi`]: a plain `fn` with `reqwest::blocking` (`blocking_chat`);
//! - [`openai_sdk`]: async-openai with ai-retry's tower layer (`async_openai_chat`);
//! - [`load`]: many `openai_chat` calls from one process sharing one limiter (`load`).

#![forbid(unsafe_code)]

pub mod anthropic;
pub mod blocking;
mod call;
pub mod chaos;
pub mod demo;
mod error;
pub mod load;
pub mod openai;
pub mod openai_sdk;
pub mod sse;

use std::time::Duration;

use ai_retry::RateLimiter;

pub use call::Call;
pub use error::ApiError;

/// The limiter of every OpenAI (or OpenAI-compatible) client in this process,
/// unless one is given its own: the limit belongs to the key, not to the call.
pub static OPENAI_LIMITER: RateLimiter = RateLimiter::new();
/// The limiter of every Anthropic client in this process, unless given its own.
pub static ANTHROPIC_LIMITER: RateLimiter = RateLimiter::new();

/// A limiter of its own, for a client that must not share the process's: a
/// second API key, or a test. Leaked, as a `static` would be: make one per key,
/// not one per call.
pub fn own_limiter() -> &'static RateLimiter {
    Box::leak(Box::new(RateLimiter::new()))
}

/// Where an async client sends: the HTTP client with its request timeout, the
/// API's base URL, the key, the model, and the limiter of the key.
#[derive(Debug, Clone)]
pub struct Endpoint {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    model: String,
    limiter: &'static RateLimiter,
}

impl Endpoint {
    /// An endpoint at `base_url` whose requests are cut off after `timeout`, so a
    /// server that hangs is a `Timeout`.
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
        limiter: &'static RateLimiter,
    ) -> Result<Endpoint, ApiError> {
        Ok(Endpoint {
            http: http_client(reqwest::Client::builder().timeout(timeout))?,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            model: model.to_string(),
            limiter,
        })
    }

    /// The rate limiter this endpoint's calls take turns from.
    pub fn limiter(&self) -> &'static RateLimiter {
        self.limiter
    }
}

/// Builds an async HTTP client; TLS by rustls with the ring provider.
pub fn http_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, ApiError> {
    install_tls_provider();
    builder.build().map_err(|e| ApiError::Setup(e.to_string()))
}

/// Builds a blocking HTTP client with a request timeout.
pub fn http_client_blocking(timeout: Duration) -> Result<reqwest::blocking::Client, ApiError> {
    install_tls_provider();
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| ApiError::Setup(e.to_string()))
}

/// reqwest is built without a default TLS provider (ring builds faster than
/// aws-lc); it must be installed before the first client, once per process.
fn install_tls_provider() {
    // An `Err` means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The response, if its status is a success; else its error. Either way the
/// limiter learns from its rate-limit headers.
pub async fn success_response(
    response: reqwest::Response,
    limiter: &RateLimiter,
) -> Result<reqwest::Response, ApiError> {
    limiter.observe(response.headers());
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    Err(ApiError::from_response(status, &headers, &body))
}

/// The body of a successful response; else the response's error.
pub async fn success_body(
    response: reqwest::Response,
    limiter: &RateLimiter,
) -> Result<bytes::Bytes, ApiError> {
    Ok(success_response(response, limiter).await?.bytes().await?)
}
