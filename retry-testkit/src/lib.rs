//! A scriptable, fault-injecting OpenAI- and Anthropic-compatible HTTP server on
//! 127.0.0.1, for testing retries against the failures real AI APIs produce.
//!
//! - `POST /v1/chat/completions` speaks OpenAI (with `"stream": true` as SSE);
//! - `POST /v1/messages` speaks Anthropic (with `"stream": true` as SSE).
//!
//! Each request takes the next [`Fault`] of the script; when the script is empty
//! the server answers, or, in rate-limit mode, applies a token bucket per API key
//! that answers as real servers do (see [`RateLimit`]).
//! Every request is logged as a [`RequestRecord`] for tests to assert on.
//!
//! ```
//! use retry_testkit::{Config, Fault, Hint, TestServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = TestServer::start(Config::script([Fault::RateLimit(Hint::RetryAfterMs(10.0))]))
//!     .await
//!     .unwrap();
//! assert!(server.openai_base_url().starts_with("http://127.0.0.1:"));
//! assert!(server.requests().is_empty());
//! # }
//! ```

#![forbid(unsafe_code)]

mod api;
mod fault;
mod limiter;
mod server;

pub use api::{Api, answer_for};
pub use fault::{Chaos, Fault, Hint, parse_script};
pub use limiter::{RateLimit, TokenLimit};
pub use server::{Config, RequestRecord, TestServer};

/// The header a client sets to the attempt number (1-based), logged per request.
pub const ATTEMPT_HEADER: &str = "x-retry-attempt";
/// The header that names one call across its attempts (OpenAI's idempotency key).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
