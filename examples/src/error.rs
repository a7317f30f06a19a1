//! The examples' one error type: what went wrong with an API call, classified
//! for the retry loop from what the client saw.

use std::fmt;
use std::time::Duration;

use ai_retry::http::{self, HeaderMap};
use ai_retry::reqwest::WithSources;
use ai_retry::{Classify, ErrorClass, Throttled, TimedOut};

/// A failed chat call. `Display` is one line and never holds the API key.
#[derive(Debug)]
pub enum ApiError {
    /// The API answered with an error status.
    Status {
        /// The HTTP status.
        status: u16,
        /// What [`http::classify`] made of status, headers and body.
        class: ErrorClass,
        /// The server's hint, if it gave one.
        retry_after: Option<Duration>,
        /// The API's error message, or the start of the body.
        message: String,
    },
    /// No usable response: connect, timeout, reset, or a body cut off.
    Transport(reqwest::Error),
    /// An attempt cut off by the attribute's `timeout`.
    TimedOut,
    /// The rate limiter gave no turn in time; no request was sent.
    Throttled(Throttled),
    /// A success status whose body is not the API's JSON.
    Malformed(String),
    /// A stream that ended before its terminator (`[DONE]`, `message_stop`).
    Incomplete {
        /// Tokens received before it ended.
        tokens: usize,
        /// The terminator that never came.
        terminator: &'static str,
    },
    /// The answer (or one event of a stream) is larger than the client
    /// holds (`--max-body`): not read on, not retried.
    TooLarge {
        /// What was too large: "the answer", "a stream event".
        what: &'static str,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The client could not be set up (bad base URL, TLS).
    Setup(String),
}

impl ApiError {
    /// The error for a failed response, from its status, headers and body.
    pub fn from_response(status: u16, headers: &HeaderMap, body: &[u8]) -> ApiError {
        ApiError::Status {
            status,
            class: http::classify(status, headers, body),
            retry_after: http::server_hint_in(headers, body),
            message: ai_retry::reqwest::error_message(body),
        }
    }

    /// [`from_response`](ApiError::from_response) for a body read up to a
    /// limit: the message says when it was cut.
    pub fn from_capped(
        status: u16,
        headers: &HeaderMap,
        body: &ai_retry::body::Capped,
    ) -> ApiError {
        ApiError::Status {
            status,
            class: http::classify(status, headers, &body.bytes),
            retry_after: http::server_hint_in(headers, &body.bytes),
            message: ai_retry::reqwest::capped_message(body),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Status {
                status, message, ..
            } => write!(f, "HTTP {status}: {message}"),
            // reqwest's own text, with its source chain on the same line.
            ApiError::Transport(error) => write!(f, "{}", WithSources(error)),
            ApiError::TimedOut => write!(f, "the attempt timed out"),
            ApiError::Throttled(throttled) => write!(f, "{throttled}"),
            ApiError::Malformed(why) => write!(f, "malformed response: {why}"),
            ApiError::Incomplete { tokens, terminator } => {
                let plural = if *tokens == 1 { "" } else { "s" };
                write!(
                    f,
                    "the connection closed after {tokens} token{plural}, before {terminator}"
                )
            }
            ApiError::TooLarge { what, limit } => write!(
                f,
                "{what} is larger than {} (--max-body)",
                ai_retry::body::size(*limit)
            ),
            ApiError::Setup(why) => write!(f, "cannot set up the client: {why}"),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<reqwest::Error> for ApiError {
    fn from(error: reqwest::Error) -> ApiError {
        ApiError::Transport(error)
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
            ApiError::Incomplete { .. } => ErrorClass::Connection,
            ApiError::Malformed(_) | ApiError::TooLarge { .. } | ApiError::Setup(_) => {
                ErrorClass::Permanent
            }
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
