// The crate's docs are written for docs.rs, whatever the features: the front
// page, the attribute's keys (shared with `#[retry]`'s page), the rest. The
// README is the repository's guide; its code blocks are doctested below.
#![doc = concat!(
    include_str!("../docs/front.md"),
    "\n",
    include_str!("../docs/keys.md"),
    "\n",
    include_str!("../docs/front_after_keys.md")
)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Makes a function retry its failures.
///
/// ```
/// use ai_retry::retry;
/// use std::io;
///
/// #[retry(max = 3, initial = "1ms", on = Connection)]
/// fn fetch(calls: &mut u32) -> io::Result<&'static str> {
///     *calls += 1;
///     if *calls < 3 {
///         return Err(io::ErrorKind::ConnectionReset.into());
///     }
///     Ok("answer")
/// }
///
/// let mut calls = 0;
/// assert_eq!(fetch(&mut calls).unwrap(), "answer");
/// assert_eq!(calls, 3);
/// ```
///
/// It expands to about this hand-written loop, with the policy a constant and
/// each attempt in its own closure (`async` block for an `async fn`), so `?` and
/// `return` end the attempt:
///
/// ```
/// # use std::io;
/// use ai_retry::runtime::{Backoff, ClassSet, Clock, ErrorClass, Policy, Retry, Step};
/// use std::time::Duration;
///
/// fn fetch(calls: &mut u32) -> io::Result<&'static str> {
///     const POLICY: Policy = Policy::new().max_attempts(3).initial(Duration::from_millis(1));
///     let retry = Retry::classified(POLICY).on(ClassSet::EMPTY.with(ErrorClass::Connection));
///     let mut attempts = retry.begin(Clock::Std);
///     loop {
///         let result = (|| -> io::Result<&'static str> {
///             *calls += 1;
///             if *calls < 3 {
///                 return Err(io::ErrorKind::ConnectionReset.into());
///             }
///             Ok("answer")
///         })();
///         match retry.step(&mut attempts, result, None) {
///             Step::Return(result) => return result,
///             Step::Sleep(delay) => std::thread::sleep(delay),
///         }
///     }
/// }
/// # let mut calls = 0;
/// # assert_eq!(fetch(&mut calls).unwrap(), "answer");
/// ```
///
/// Mistakes in the attribute are compile errors on the offending token:
///
/// ```compile_fail
/// use ai_retry::retry;
///
/// #[retry(backoff = "expo")] // unknown backoff `expo` (did you mean `exp`?); expected one of …
/// fn fetch() -> std::io::Result<()> {
///     Ok(())
/// }
/// ```
///
/// # Keys
///
#[doc = include_str!("../docs/keys.md")]
pub use retry_macro::retry;

/// The README's code blocks, compiled and run as doctests with the features
/// they need (CI builds with all of them). Not part of the API.
#[cfg(all(doctest, feature = "reqwest", feature = "tokio"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use retry_runtime::{
    Classify, Cost, ErrorClass, GiveUp, LimiterSnapshot, Limits, RateLimiter, RetryBudget,
    RetryEvent, Store, Throttled, TimedOut, http,
};

/// The runtime the attribute expands to, for retry loops written by hand:
/// [`Retry`](runtime::Retry), [`Policy`](runtime::Policy), the
/// [`backoff`](runtime::backoff) formulas.
pub mod runtime {
    pub use retry_runtime::*;
}

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[cfg(any(feature = "reqwest", feature = "tower"))]
pub mod body;
#[cfg(any(feature = "reqwest", feature = "tower"))]
pub mod estimate;
#[cfg(any(feature = "reqwest", feature = "tower"))]
mod message;
#[cfg(feature = "reqwest")]
pub mod reqwest;

#[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
pub mod http_retry;
#[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
pub use http_retry::{HttpFailure, HttpRetry};

#[cfg(feature = "tower")]
pub mod tower;

#[cfg(feature = "reqwest-middleware")]
mod reqwest_middleware;

/// The test switch: `ai_retry::testing::no_delays()` makes every retry on this
/// thread sleep zero while its guard lives. See [`runtime::testing`].
pub mod testing {
    pub use retry_runtime::testing::*;
}
