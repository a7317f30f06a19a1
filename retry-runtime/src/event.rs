use std::time::Duration;

use crate::ErrorClass;

/// What `on_retry` sees before each sleep: which call failed, how, and how long
/// the loop will wait.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::RetryEvent;
/// use ai_retry::runtime::{Policy, Retry};
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
    /// Attempts in all, the first included: the policy's `max` (or the test
    /// switch's cap), for "attempt 2/4".
    pub max_attempts: u32,
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
    /// `Some(reason)` when the loop stops here and returns this error (the event
    /// `on_give_up` sees; `delay` is then zero); `None` before a retry.
    pub give_up: Option<GiveUp>,
    /// With a `limiter`: how long a caller arriving now would wait for its turn
    /// (the shared cool-down and the queue), which the next attempt waits too,
    /// after its own `delay` where the two overlap. `None` without a limiter.
    pub limiter_wait: Option<Duration>,
}

/// Why a call stopped retrying and returned its error, as `on_give_up` and the
/// `tracing` event say.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::GiveUp;
/// assert_eq!(GiveUp::HintBeyondMaxDelay.to_string(), "the server asks for a wait above max_delay");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUp {
    /// The error is not one to retry (its class is not in `on`, or `when` said no).
    NotRetryable,
    /// That was the last of `max` attempts.
    MaxAttempts,
    /// The server asked for a wait longer than `max_delay`: retrying sooner would
    /// break its word, waiting would break the caller's.
    HintBeyondMaxDelay,
    /// The next attempt could not start before the `deadline`.
    Deadline,
    /// The shared retry budget is spent.
    Budget,
    /// The rate limiter could give no turn within `max_delay` or the deadline.
    Limiter,
    /// The request cannot be sent again (its body is a stream): one attempt.
    NotReplayable,
}

impl GiveUp {
    /// A short, stable name: `not_retryable`, `max_attempts`, `hint_beyond_max_delay`,
    /// `deadline`, `budget`, `limiter`, `not_replayable`.
    pub const fn name(self) -> &'static str {
        match self {
            GiveUp::NotRetryable => "not_retryable",
            GiveUp::MaxAttempts => "max_attempts",
            GiveUp::HintBeyondMaxDelay => "hint_beyond_max_delay",
            GiveUp::Deadline => "deadline",
            GiveUp::Budget => "budget",
            GiveUp::Limiter => "limiter",
            GiveUp::NotReplayable => "not_replayable",
        }
    }
}

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GiveUp::NotRetryable => "not an error to retry",
            GiveUp::MaxAttempts => "no attempts left",
            GiveUp::HintBeyondMaxDelay => "the server asks for a wait above max_delay",
            GiveUp::Deadline => "the next attempt could not start before the deadline",
            GiveUp::Budget => "the retry budget is spent",
            GiveUp::Limiter => "the rate limiter gives no turn in time",
            GiveUp::NotReplayable => "the request cannot be sent again",
        })
    }
}

/// One call's own hooks, beside the `fn` hooks a [`Retry`](crate::Retry)
/// holds: closures, so they may use the call's arguments. `#[retry]` makes
/// them from `on_retry = |event| …` and `on_give_up = |event| …`.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::RetryEvent;
/// use ai_retry::runtime::{Clock, Hooks, Policy, Retry, Step};
/// use std::cell::Cell;
/// use std::io;
///
/// let request_id = "req-7";
/// let seen = Cell::new(None);
/// let on_retry = |event: &RetryEvent<'_, io::Error>| seen.set(Some((request_id, event.attempt)));
/// let retry = Retry::<io::Error>::new(Policy::new().max_attempts(2));
/// let mut attempts = retry.begin(Clock::Std);
/// let failed: io::Result<()> = Err(io::ErrorKind::ConnectionReset.into());
/// let step = retry.step_with(&mut attempts, failed, None, Hooks::new(Some(&on_retry), None));
/// assert!(matches!(step, Step::Sleep(_)));
/// assert_eq!(seen.get(), Some(("req-7", 1)));
/// ```
pub struct Hooks<'h, E> {
    pub(crate) on_retry: Option<Hook<'h, E>>,
    pub(crate) on_give_up: Option<Hook<'h, E>>,
}

/// A hook of one call: a closure that sees each event.
pub type Hook<'h, E> = &'h dyn Fn(&RetryEvent<'_, E>);

impl<E> Clone for Hooks<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Hooks<'_, E> {}

impl<E> std::fmt::Debug for Hooks<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("on_retry", &self.on_retry.is_some())
            .field("on_give_up", &self.on_give_up.is_some())
            .finish()
    }
}

impl<'h, E> Hooks<'h, E> {
    /// No hooks of the call's own.
    pub const NONE: Hooks<'h, E> = Hooks {
        on_retry: None,
        on_give_up: None,
    };

    /// `on_retry` before each sleep, `on_give_up` when the call stops with an
    /// error, each after the `Retry`'s own.
    pub const fn new(
        on_retry: Option<Hook<'h, E>>,
        on_give_up: Option<Hook<'h, E>>,
    ) -> Hooks<'h, E> {
        Hooks {
            on_retry,
            on_give_up,
        }
    }
}
