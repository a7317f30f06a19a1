//! Plain reqwest in one line: a failed response becomes a ready error type that
//! `#[retry]` classifies — status, class, the server's hint, the API's own
//! message — with no error enum or `Classify` impl to write (feature `reqwest`).
//!
//! ```no_run
//! use ai_retry::reqwest::{ApiError, ResponseExt};
//! use ai_retry::{RateLimiter, retry};
//!
//! static OPENAI: RateLimiter = RateLimiter::new();
//!
//! #[retry(max = 4, limiter = OPENAI)]
//! async fn chat(client: &reqwest::Client, body: &serde_json::Value) -> Result<String, ApiError> {
//!     let response = client
//!         .post("https://api.openai.com/v1/chat/completions")
//!         .header("content-type", "application/json")
//!         .body(body.to_string())
//!         .send()
//!         .await?
//!         .error_for_api_status_observed(&OPENAI)
//!         .await?;
//!     Ok(response.text().await?)
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::time::Duration;

use retry_runtime::http::{self, HeaderMap};
use retry_runtime::{Classify, ErrorClass, RateLimiter, Throttled, TimedOut};

use ::reqwest as client;

/// A failed call to an HTTP API. `Display` is one line and holds what the API
/// said, never a request header (so never the API key).
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// The API answered with an error status.
    Status {
        /// The HTTP status.
        status: u16,
        /// What [`http::classify`] made of status, headers and body.
        class: ErrorClass,
        /// The server's hint ([`http::server_hint`]), if it gave one.
        retry_after: Option<Duration>,
        /// The API's `error.message`, or the start of the body.
        message: String,
    },
    /// No usable response: connect, timeout, reset, or a body cut off.
    Transport(client::Error),
    /// An attempt cut off by `timeout` or `deadline`.
    TimedOut,
    /// The rate limiter gave no turn in time; no request was sent.
    Throttled(Throttled),
    /// A success whose body is not the API's JSON (`?` on a
    /// `serde_json` parse): class `Server`, retried as a 500 is — a body cut
    /// short or a proxy's error page under a 200 is rarely there on the next
    /// attempt, and a malformed answer is never returned as an answer.
    Malformed(serde_json::Error),
}

impl ApiError {
    /// The error for a failed response, from its status, headers and body.
    pub fn from_parts(status: u16, headers: &HeaderMap, body: &[u8]) -> ApiError {
        ApiError::Status {
            status,
            class: http::classify(status, headers, body),
            retry_after: http::server_hint_in(headers, body),
            message: error_message(body),
        }
    }

    /// [`from_parts`](ApiError::from_parts) with a body read up to a limit
    /// (see [`crate::body`]): the message says when it was cut.
    pub fn from_capped(status: u16, headers: &HeaderMap, body: &Capped) -> ApiError {
        ApiError::Status {
            status,
            class: http::classify(status, headers, &body.bytes),
            retry_after: http::server_hint_in(headers, &body.bytes),
            message: capped_message(body),
        }
    }

    /// The HTTP status, when the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

use crate::body::{Capped, ERROR_BODY_LIMIT};
pub use crate::message::{WithSources, capped_message, error_message, redact_secrets};

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Status {
                status, message, ..
            } => write!(f, "HTTP {status}: {message}"),
            ApiError::Transport(error) => write!(f, "{}", WithSources(error)),
            ApiError::TimedOut => write!(f, "{TimedOut}"),
            ApiError::Throttled(throttled) => write!(f, "{throttled}"),
            ApiError::Malformed(error) => write!(f, "malformed answer: {error}"),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Transport(error) => Some(error),
            ApiError::Malformed(error) => Some(error),
            _ => None,
        }
    }
}

impl From<client::Error> for ApiError {
    fn from(error: client::Error) -> ApiError {
        ApiError::Transport(error)
    }
}

/// `serde_json::from_str(&text)?` inside a `#[retry]` function: the answer
/// did not parse, and is retried.
///
/// ```
/// use ai_retry::reqwest::ApiError;
/// use ai_retry::{Classify, ErrorClass, retry};
///
/// #[retry(max = 3, initial = "1ms")]
/// fn answer(body: &str, attempts: &mut u32) -> Result<String, ApiError> {
///     *attempts += 1;
///     let json: serde_json::Value = serde_json::from_str(body)?;
///     Ok(json["choices"][0]["message"]["content"].to_string())
/// }
///
/// let mut attempts = 0;
/// let error = answer("<html>502 Bad Gateway</html>", &mut attempts).unwrap_err();
/// assert_eq!(error.class(), ErrorClass::Server);
/// assert_eq!(attempts, 3);
/// assert!(error.to_string().starts_with("malformed answer: expected value"), "{error}");
/// ```
impl From<serde_json::Error> for ApiError {
    fn from(error: serde_json::Error) -> ApiError {
        ApiError::Malformed(error)
    }
}

impl From<TimedOut> for ApiError {
    fn from(_: TimedOut) -> ApiError {
        ApiError::TimedOut
    }
}

impl From<Throttled> for ApiError {
    fn from(throttled: Throttled) -> ApiError {
        ApiError::Throttled(throttled)
    }
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        match self {
            ApiError::Status { class, .. } => *class,
            ApiError::Transport(error) => error.class(),
            ApiError::TimedOut => ErrorClass::Timeout,
            ApiError::Throttled(throttled) => throttled.class(),
            ApiError::Malformed(_) => ErrorClass::Server,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// One call on a `reqwest::Response`: the response when its status is a
/// success, else its body read into an [`ApiError`].
pub trait ResponseExt: Sized {
    /// The response if its status is a success; else an [`ApiError`] from its
    /// status, headers and body — read up to 64 KiB
    /// ([`ERROR_BODY_LIMIT`]), enough to classify
    /// and quote it; the rest is dropped with the connection, and the message
    /// says it was cut. A body that cannot be read is a `Transport` error.
    fn error_for_api_status(self) -> impl Future<Output = Result<Self, ApiError>> + Send;

    /// [`error_for_api_status`](ResponseExt::error_for_api_status), after
    /// `limiter` has learned from the response's rate-limit headers.
    fn error_for_api_status_observed(
        self,
        limiter: &RateLimiter,
    ) -> impl Future<Output = Result<Self, ApiError>> + Send;
}

impl ResponseExt for client::Response {
    async fn error_for_api_status(self) -> Result<client::Response, ApiError> {
        if self.status().is_success() {
            return Ok(self);
        }
        let status = self.status().as_u16();
        let headers = self.headers().clone();
        let body = crate::body::read_response(self, ERROR_BODY_LIMIT).await?;
        Err(ApiError::from_capped(status, &headers, &body))
    }

    async fn error_for_api_status_observed(
        self,
        limiter: &RateLimiter,
    ) -> Result<client::Response, ApiError> {
        limiter.observe(self.headers());
        self.error_for_api_status().await
    }
}

/// The same one call on a `reqwest::blocking::Response`, for blocking
/// functions (feature `reqwest-blocking`).
///
/// ```no_run
/// use ai_retry::reqwest::ApiError;
/// use ai_retry::reqwest::blocking::ResponseExt;
/// use ai_retry::retry;
///
/// #[retry(max = 4)]
/// fn models(client: &reqwest::blocking::Client) -> Result<String, ApiError> {
///     let response = client
///         .get("https://api.openai.com/v1/models")
///         .send()?
///         .error_for_api_status()?;
///     Ok(response.text()?)
/// }
/// ```
#[cfg(feature = "reqwest-blocking")]
pub mod blocking {
    use retry_runtime::RateLimiter;

    use super::{ApiError, ERROR_BODY_LIMIT, client};

    /// [`ResponseExt`](super::ResponseExt), blocking.
    pub trait ResponseExt: Sized {
        /// The response if its status is a success; else an [`ApiError`] from
        /// its status, headers and body.
        fn error_for_api_status(self) -> Result<Self, ApiError>;

        /// [`error_for_api_status`](ResponseExt::error_for_api_status), after
        /// `limiter` has learned from the response's rate-limit headers.
        fn error_for_api_status_observed(self, limiter: &RateLimiter) -> Result<Self, ApiError>;
    }

    impl ResponseExt for client::blocking::Response {
        fn error_for_api_status(self) -> Result<client::blocking::Response, ApiError> {
            if self.status().is_success() {
                return Ok(self);
            }
            let status = self.status().as_u16();
            let headers = self.headers().clone();
            let body = crate::body::read_blocking(self, ERROR_BODY_LIMIT)?;
            Err(ApiError::from_capped(status, &headers, &body))
        }

        fn error_for_api_status_observed(
            self,
            limiter: &RateLimiter,
        ) -> Result<client::blocking::Response, ApiError> {
            limiter.observe(self.headers());
            self.error_for_api_status()
        }
    }
}
