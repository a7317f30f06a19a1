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

/// How much of an answer a client holds unless told otherwise: 16 MiB.
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// Where an async client sends: the HTTP client with its request timeout, the
/// API's base URL, the key, the model, the limiter of the key, and the most of
/// an answer it holds.
#[derive(Debug, Clone)]
pub struct Endpoint {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    model: String,
    limiter: &'static RateLimiter,
    max_body: usize,
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
            max_body: DEFAULT_MAX_BODY,
        })
    }

    /// The rate limiter this endpoint's calls take turns from.
    pub fn limiter(&self) -> &'static RateLimiter {
        self.limiter
    }

    /// `path` under the base URL (see [`join_url`]).
    pub fn url(&self, path: &str) -> String {
        join_url(&self.base_url, path)
    }

    /// The most of an answer this endpoint holds ([`DEFAULT_MAX_BODY`] unless set).
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Holds at most `bytes` of an answer: past it the call fails with
    /// [`ApiError::TooLarge`], not retried.
    pub fn set_max_body(&mut self, bytes: usize) {
        self.max_body = bytes;
    }
}

/// `path` under `base_url`, before the base URL's query: gateways that take
/// the key as `?key=…` in the base URL get it on every request, and the API's
/// path stays a path.
///
/// ```
/// use ai_retry_examples::join_url;
/// assert_eq!(join_url("http://gw/v1?key=k", "/chat/completions"), "http://gw/v1/chat/completions?key=k");
/// assert_eq!(join_url("https://api.openai.com/v1", "/chat/completions"), "https://api.openai.com/v1/chat/completions");
/// ```
pub fn join_url(base_url: &str, path: &str) -> String {
    match base_url.split_once('?') {
        Some((base, query)) => format!("{}{path}?{query}", base.trim_end_matches('/')),
        None => format!("{}{path}", base_url.trim_end_matches('/')),
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

/// The response to a request sent at `sent` (from [`RateLimiter::now`]), if
/// its status is a success; else its error, from its body read up to 64 KiB
/// (the rest dropped with the connection). Either way the limiter learns from
/// its rate-limit headers, as of when the request was admitted.
pub async fn success_response(
    response: reqwest::Response,
    limiter: &RateLimiter,
    sent: std::time::Instant,
) -> Result<reqwest::Response, ApiError> {
    limiter.observe_at(response.headers(), sent);
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = ai_retry::body::read_response(response, ai_retry::body::ERROR_BODY_LIMIT).await?;
    Err(ApiError::from_capped(status, &headers, &body))
}

/// The body of a successful response, up to `max_body` bytes; else the
/// response's error.
pub async fn success_body(
    response: reqwest::Response,
    limiter: &RateLimiter,
    sent: std::time::Instant,
    max_body: usize,
) -> Result<bytes::Bytes, ApiError> {
    let response = success_response(response, limiter, sent).await?;
    answer(
        ai_retry::body::read_response(response, max_body).await?,
        max_body,
    )
}

/// An answer read up to `max_body`: its bytes, or [`ApiError::TooLarge`].
pub fn answer(body: ai_retry::body::Capped, max_body: usize) -> Result<bytes::Bytes, ApiError> {
    match body.cut {
        true => Err(ApiError::TooLarge {
            what: "the answer",
            limit: max_body,
        }),
        false => Ok(body.bytes),
    }
}
