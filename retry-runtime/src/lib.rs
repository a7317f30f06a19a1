//! The runtime behind [`ai-retry`](https://docs.rs/ai-retry): everything the
//! `#[retry]` attribute expands to, usable without it.
//!
//! - [`Policy`] and [`backoff::delay`]: how many attempts, how long between them;
//! - [`ErrorClass`], [`Classify`], [`http`]: what failed, and what the server asked for;
//! - [`RetryBudget`]: a retry budget shared across calls;
//! - [`RateLimiter`]: one upstream rate limit shared by every caller: turns,
//!   a shared cool-down, a learned rate;
//! - [`Retry`]: the loops, blocking ([`Retry::run`]) and async ([`Retry::run_async`]).
//!
//! ```
//! use retry_runtime::{Policy, Retry};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let answer: Result<String, std::io::Error> = Retry::classified(Policy::new().max_attempts(5))
//!     .named("fetch")
//!     .run_async(|| async { Ok("hello".to_string()) })
//!     .await;
//! assert_eq!(answer.unwrap(), "hello");
//! # }
//! ```
//!
//! Features: `tokio` (default) for the async loop and `Classify` for tokio's
//! `Elapsed`; `reqwest` for `Classify` on `reqwest::Error`; `anyhow` for `Classify`
//! on `anyhow::Error`; `tracing` for one event per retry; `redis` for
//! `RateLimiter::share_redis` and `RetryBudget::share_redis`, the state shared
//! by a fleet of processes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "tokio")]
mod asynchronous;
pub mod backoff;
mod blocking;
mod budget;
mod class;
mod duration;
mod event;
mod foreign;
pub mod http;
mod jitter;
mod limiter;
#[cfg(feature = "metrics")]
mod metrics;
mod paced;
mod policy;
#[cfg(feature = "redis")]
mod redis_hub;
mod retry;
pub mod testing;
mod throttled;
mod timed_out;

#[cfg(feature = "tokio")]
pub use asynchronous::{CutOff, settle_timeout, with_timeout};
pub use budget::RetryBudget;
pub use class::{ClassSet, Classify, ErrorClass};
pub use duration::{DURATION_UNITS, parse_duration};
pub use event::{GiveUp, Hook, Hooks, RetryEvent};
pub use foreign::class_of_chain;
pub use limiter::{Cost, LimiterSnapshot, Limits, RateLimiter, Store, Turn};
pub use paced::Paced;
pub use policy::{Backoff, Policy};
pub use retry::{Attempts, Clock, Cut, Retry, Step};
pub use throttled::Throttled;
pub use timed_out::TimedOut;
