use std::time::Duration;

use crate::ErrorClass;

/// What `on_retry` sees before each sleep: which call failed, how, and how long
/// the loop will wait.
///
/// ```
/// use retry_runtime::{Policy, Retry, RetryEvent};
///
/// fn log(event: &RetryEvent<'_, std::io::Error>) {
///     eprintln!(
///         "{}: attempt {} failed ({}), retrying in {:?}",
///         event.function, event.attempt, event.error, event.delay
///     );
/// }
///
/// let retry = Retry::classified(Policy::new()).on_retry(log);
/// # let _ = retry;
/// ```
#[non_exhaustive]
#[derive(Debug)]
pub struct RetryEvent<'a, E> {
    /// The retried function's name.
    pub function: &'static str,
    /// The attempt that just failed, 1-based.
    pub attempt: u32,
    /// Its error.
    pub error: &'a E,
    /// The error's class, when the loop classifies (`on = …`, not `any` or `when`).
    pub class: Option<ErrorClass>,
    /// The sleep before the next attempt.
    pub delay: Duration,
    /// The wait the server asked for, when it did.
    pub server_hint: Option<Duration>,
    /// The time since the first call began.
    pub elapsed: Duration,
    /// With a `limiter`: how long a caller arriving now would wait for its turn
    /// (the shared cool-down and the queue), which the next attempt waits too,
    /// after its own `delay` where the two overlap. `None` without a limiter.
    pub limiter_wait: Option<Duration>,
}
