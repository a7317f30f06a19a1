//! `Retry`: what a loop retries and how, and the one decision both loops share.

use std::time::{Duration, Instant};

use crate::{
    ClassSet, Classify, Cost, ErrorClass, GiveUp, Hooks, Policy, RetryBudget, RetryEvent, backoff,
};

/// A retry loop's configuration: the [`Policy`] plus which errors to retry, where
/// to find the server's hint, what to call before each sleep, and a shared budget.
///
/// `Copy` and `const`-constructible; [`run`](Retry::run) and
/// [`run_async`](Retry::run_async) drive an attempt closure with it. `#[retry]`
/// expands to exactly this, and it is just as usable by hand:
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::ErrorClass;
/// use ai_retry::runtime::{Policy, Retry};
/// use std::{cell::Cell, io, time::Duration};
///
/// let calls = Cell::new(0);
/// let result: Result<&str, io::Error> = Retry::classified(Policy::new().initial(Duration::ZERO))
///     .on(ErrorClass::Connection | ErrorClass::Timeout)
///     .run(|| {
///         calls.set(calls.get() + 1);
///         match calls.get() {
///             1 => Err(io::ErrorKind::ConnectionReset.into()),
///             _ => Ok("answer"),
///         }
///     });
/// assert_eq!(result.unwrap(), "answer");
/// assert_eq!(calls.get(), 2);
/// ```
pub struct Retry<E> {
    pub(crate) policy: Policy,
    pub(crate) function: &'static str,
    pub(crate) classes: ClassSet,
    pub(crate) class_of: Option<fn(&E) -> ErrorClass>,
    pub(crate) when: Option<fn(&E) -> bool>,
    pub(crate) server_hint: Option<fn(&E) -> Option<Duration>>,
    pub(crate) on_retry: Option<fn(&RetryEvent<'_, E>)>,
    pub(crate) on_give_up: Option<fn(&RetryEvent<'_, E>)>,
    pub(crate) budget: Option<&'static RetryBudget>,
    /// `false` when the call cannot be sent twice (a request whose body is a
    /// stream): its first failure ends it, with [`GiveUp::NotReplayable`].
    pub(crate) replayable: bool,
    /// What each attempt spends of a limiter's limits.
    pub(crate) cost: Cost,
}

impl<E> Clone for Retry<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Retry<E> {}

impl<E> std::fmt::Debug for Retry<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry")
            .field("policy", &self.policy)
            .field("function", &self.function)
            .field("classes", &self.classes)
            .field("classified", &self.class_of.is_some())
            .field("when", &self.when.is_some())
            .field("on_retry", &self.on_retry.is_some())
            .field("on_give_up", &self.on_give_up.is_some())
            .field("budget", &self.budget)
            .finish()
    }
}

impl<E> Retry<E> {
    /// Retries every error (`on = any`), with no server hints: the error type
    /// needs no [`Classify`] impl.
    pub const fn new(policy: Policy) -> Retry<E> {
        Retry {
            policy,
            function: "",
            classes: ClassSet::ALL,
            class_of: None,
            when: None,
            server_hint: None,
            on_retry: None,
            on_give_up: None,
            budget: None,
            replayable: true,
            cost: Cost::NONE,
        }
    }

    /// Retries the transient classes (`on = transient`) by `E`'s [`Classify`]
    /// impl, and honours its [`retry_after`](Classify::retry_after) hints.
    pub const fn classified(policy: Policy) -> Retry<E>
    where
        E: Classify,
    {
        let mut retry = Retry::new(policy);
        retry.classes = ClassSet::TRANSIENT;
        retry.class_of = Some(<E as Classify>::class);
        retry.server_hint = Some(<E as Classify>::retry_after);
        retry
    }

    /// Retries only these classes (meaningful after [`classified`](Retry::classified)).
    pub const fn on(mut self, classes: ClassSet) -> Retry<E> {
        self.classes = classes;
        self
    }

    /// Retries exactly the errors for which `predicate` is true, instead of by class.
    pub const fn when(mut self, predicate: fn(&E) -> bool) -> Retry<E> {
        self.when = Some(predicate);
        self
    }

    /// Reads the server's hint with `hint` (set by [`classified`](Retry::classified)).
    pub const fn server_hint(mut self, hint: fn(&E) -> Option<Duration>) -> Retry<E> {
        self.server_hint = Some(hint);
        self
    }

    /// Reads the server's hint with `hint`, if there is one to read: how
    /// `#[retry]` keeps hints under `when` and `on = any` for a `Classify` error.
    pub const fn server_hint_if(mut self, hint: Option<fn(&E) -> Option<Duration>>) -> Retry<E> {
        self.server_hint = hint;
        self
    }

    /// Calls `on_retry` before each sleep.
    pub const fn on_retry(mut self, on_retry: fn(&RetryEvent<'_, E>)) -> Retry<E> {
        self.on_retry = Some(on_retry);
        self
    }

    /// Calls `on_give_up` once when the loop stops retrying and returns an error,
    /// with the reason in [`RetryEvent::give_up`].
    pub const fn on_give_up(mut self, on_give_up: fn(&RetryEvent<'_, E>)) -> Retry<E> {
        self.on_give_up = Some(on_give_up);
        self
    }

    /// Draws every retry from a shared [`RetryBudget`].
    pub const fn budget(mut self, budget: &'static RetryBudget) -> Retry<E> {
        self.budget = Some(budget);
        self
    }

    /// What each attempt spends of a limiter's limits (see [`Cost`]): its turn
    /// comes when every limit can pay it, and a refused attempt's tokens are
    /// given back. [`Cost::NONE`] (one request) unless set.
    pub const fn cost(mut self, cost: Cost) -> Retry<E> {
        self.cost = cost;
        self
    }

    /// Whether the call can be sent again. A call that cannot (a request whose
    /// body is a stream) makes one attempt: its failure ends it, and
    /// `on_give_up` hears [`GiveUp::NotReplayable`] unless an earlier reason
    /// (not retryable, no attempts left) applies.
    pub const fn replayable(mut self, replayable: bool) -> Retry<E> {
        self.replayable = replayable;
        self
    }

    /// Names the function in [`RetryEvent`]s and `tracing` events.
    pub const fn named(mut self, function: &'static str) -> Retry<E> {
        self.function = function;
        self
    }

    /// The policy.
    pub const fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Begins a call: records it with the budget, if any, and starts `clock`
    /// when something will read the elapsed time (a deadline, `on_retry`,
    /// `tracing`), so the success path reads no clock at all.
    ///
    /// This and [`step`](Retry::step) are the loop's two halves; `#[retry]` writes
    /// the loop around them inline, so each attempt is a block of the user's own
    /// function rather than a closure.
    #[inline]
    pub fn begin(&self, clock: Clock) -> Attempts {
        let observed = self.on_retry.is_some() || self.on_give_up.is_some();
        Attempts::begin(&self.policy, self.budget, observed, clock)
    }

    /// [`begin`](Retry::begin) for an async loop that cuts its attempts and
    /// makes no wait before the first: see `Attempts::begin_cut`.
    #[doc(hidden)]
    #[inline]
    pub fn begin_cut(&self) -> Attempts {
        let observed = self.on_retry.is_some() || self.on_give_up.is_some();
        Attempts::begin_cut(&self.policy, self.budget, observed)
    }

    /// Decides what follows an attempt's `result`: return it (success, an error
    /// not to retry, or the policy says stop), or sleep and try again. `forced`
    /// overrides the error's class (an attempt cut off by `timeout` is a
    /// `Timeout`, whatever `E` says).
    #[inline]
    pub fn step<T>(
        &self,
        attempts: &mut Attempts,
        result: Result<T, E>,
        forced: Option<ErrorClass>,
    ) -> Step<T, E> {
        self.step_with(attempts, result, forced, Hooks::NONE)
    }

    /// [`step`](Retry::step), telling the call's own `hooks` too.
    #[inline]
    pub fn step_with<T>(
        &self,
        attempts: &mut Attempts,
        result: Result<T, E>,
        forced: Option<ErrorClass>,
        hooks: Hooks<'_, E>,
    ) -> Step<T, E> {
        match result {
            Ok(value) => Step::Return(Ok(value)),
            Err(error) => match self.next_delay(attempts, &error, forced, None, hooks) {
                Some(delay) => Step::Sleep(delay),
                None => Step::Return(Err(error)),
            },
        }
    }

    /// Steps 2–5 of the loop after the current attempt failed with `error`: the
    /// sleep before the next attempt, or `None` to return the error now.
    /// Inlined into the error branch, where the loop's policy is a constant
    /// and most of this folds away (the blocking failure path: 15 ns out of
    /// line, 7 ns inlined); the success path never runs it. Not `#[cold]`: in a
    /// cold function LLVM inlines almost nothing.
    #[inline]
    pub(crate) fn next_delay(
        &self,
        attempts: &mut Attempts,
        error: &E,
        forced: Option<ErrorClass>,
        limiter_wait: Option<Duration>,
        hooks: Hooks<'_, E>,
    ) -> Option<Duration> {
        if self.policy.deadline.is_some() && attempts.start.is_none() {
            // A failure at the first poll, its clock not started: it starts now.
            attempts.start = Some(attempts.clock.now());
        }
        let attempt = attempts.number;
        let class = self.class(error, forced);
        #[cfg(feature = "metrics")]
        crate::metrics::failed_attempt(self.function, class);
        let hint = self.server_hint.and_then(|hint| hint(error));
        let stop = |reason| self.give_up(attempts, error, class, hint, reason, hooks);
        let retryable = match (self.when, class) {
            (Some(when), _) => when(error),
            (None, Some(class)) => self.classes.contains(class),
            (None, None) => true,
        };
        if !retryable {
            return stop(GiveUp::NotRetryable);
        }
        let testing = crate::testing::switch();
        let max_attempts = self.max_attempts(testing);
        if attempt >= max_attempts {
            return stop(GiveUp::MaxAttempts);
        }
        if !self.replayable {
            return stop(GiveUp::NotReplayable);
        }
        // In whole nanoseconds until the end: a `Duration` is made once, and
        // not at all under the test switch.
        let computed = backoff::delay_ns(
            &self.policy,
            attempt,
            attempts.previous_ns,
            crate::jitter::draw(),
        );
        let delay = match hint {
            // Never retry before the server allows, never sleep past max_delay.
            Some(hint) if hint > self.policy.max_delay => return stop(GiveUp::HintBeyondMaxDelay),
            // Spread clients told the same time, but never below the hint.
            Some(hint) => backoff::nanos(hint)
                .saturating_add(backoff::scale_ns(computed, crate::jitter::draw()))
                .min(backoff::nanos(self.policy.max_delay)),
            None => computed,
        };
        // A hint past what nanoseconds hold (centuries) still holds.
        let exact = || {
            let delay = Duration::from_nanos(delay);
            hint.map_or(delay, |hint| delay.max(hint))
        };
        let elapsed = attempts.elapsed();
        if let Some(deadline) = self.policy.deadline
            && elapsed.saturating_add(exact()) >= deadline
        {
            return stop(GiveUp::Deadline);
        }
        if let Some(budget) = self.budget
            && !budget.try_withdraw()
        {
            return stop(GiveUp::Budget);
        }
        attempts.previous_ns = computed;
        // Under the test switch the loop decides as always and sleeps nothing.
        let delay = if testing.is_some() {
            Duration::ZERO
        } else {
            exact()
        };
        let event = RetryEvent {
            function: self.function,
            attempt,
            max_attempts,
            error,
            class,
            delay,
            server_hint: hint,
            elapsed,
            give_up: None,
            limiter_wait,
        };
        if let Some(on_retry) = self.on_retry {
            on_retry(&event);
        }
        if let Some(on_retry) = hooks.on_retry {
            on_retry(&event);
        }
        #[cfg(feature = "metrics")]
        crate::metrics::retry(self.function, class, delay);
        #[cfg(feature = "tracing")]
        tracing::info!(
            function = event.function,
            attempt = event.attempt,
            class = event.class.map(ErrorClass::name),
            delay_ms = event.delay.as_millis() as u64,
            // The limiter's hold, which a test switch's zero delay does not lift.
            limiter_wait_ms = event.limiter_wait.map(|w| w.as_millis() as u64),
            server_hint_ms = event.server_hint.map(|h| h.as_millis() as u64),
            elapsed_ms = event.elapsed.as_millis() as u64,
            "retrying after a failed attempt"
        );
        attempts.number += 1;
        Some(delay)
    }
}

impl<E> Retry<E> {
    /// The call ends because the rate limiter gave no turn in time: tells
    /// `on_give_up`, `tracing` and metrics (reason [`GiveUp::Limiter`]) and
    /// returns `error`, the one the call returns. For loops that wait with
    /// [`Paced`](crate::Paced).
    #[cold]
    #[inline(never)]
    pub fn gave_up_waiting(&self, attempts: &Attempts, error: E) -> E {
        self.gave_up_waiting_with(attempts, error, Hooks::NONE)
    }

    /// [`gave_up_waiting`](Retry::gave_up_waiting), telling the call's own
    /// `hooks` too.
    #[cold]
    #[inline(never)]
    pub fn gave_up_waiting_with(&self, attempts: &Attempts, error: E, hooks: Hooks<'_, E>) -> E {
        let class = self.class(&error, None);
        let hint = self.server_hint.and_then(|hint| hint(&error));
        self.give_up(attempts, &error, class, hint, GiveUp::Limiter, hooks);
        error
    }

    /// Attempts in all: the policy's, or fewer under the test switch.
    fn max_attempts(&self, testing: Option<crate::testing::Switch>) -> u32 {
        match testing.and_then(|t| t.max_attempts) {
            Some(cap) => cap.min(self.policy.max_attempts),
            None => self.policy.max_attempts,
        }
    }

    /// The loop stops with `error`: tell `on_give_up` and `tracing` why.
    #[cold]
    fn give_up(
        &self,
        attempts: &Attempts,
        error: &E,
        class: Option<ErrorClass>,
        hint: Option<Duration>,
        reason: GiveUp,
        hooks: Hooks<'_, E>,
    ) -> Option<Duration> {
        let event = RetryEvent {
            function: self.function,
            attempt: attempts.number,
            max_attempts: self.max_attempts(crate::testing::switch()),
            error,
            class,
            delay: Duration::ZERO,
            server_hint: hint,
            elapsed: attempts.elapsed(),
            give_up: Some(reason),
            limiter_wait: None,
        };
        if let Some(on_give_up) = self.on_give_up {
            on_give_up(&event);
        }
        if let Some(on_give_up) = hooks.on_give_up {
            on_give_up(&event);
        }
        #[cfg(feature = "metrics")]
        crate::metrics::give_up(self.function, reason);
        #[cfg(feature = "tracing")]
        tracing::info!(
            function = event.function,
            attempt = event.attempt,
            class = event.class.map(ErrorClass::name),
            reason = reason.name(),
            server_hint_ms = event.server_hint.map(|h| h.as_millis() as u64),
            elapsed_ms = event.elapsed.as_millis() as u64,
            "giving up: {reason}"
        );
        None
    }

    /// The error's class: `forced` if given, else by `Classify` when the loop
    /// classifies (`None` under `on = any` and `when`).
    pub(crate) fn class(&self, error: &E, forced: Option<ErrorClass>) -> Option<ErrorClass> {
        forced.or_else(|| self.class_of.map(|class_of| class_of(error)))
    }
}

/// What follows an attempt: see [`Retry::step`].
#[derive(Debug)]
pub enum Step<T, E> {
    /// The call is over: return this.
    Return(Result<T, E>),
    /// Sleep this long, then make the next attempt.
    Sleep(Duration),
}

/// Where a call is: the current attempt (1-based), the last computed backoff,
/// and when the call began, on the loop's own clock. Made by [`Retry::begin`].
#[derive(Debug)]
pub struct Attempts {
    number: u32,
    previous_ns: u64,
    start: Option<Instant>,
    clock: Clock,
}

/// The clock a loop reads: std's for blocking loops, tokio's (which tests can
/// pause and advance) for async ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// `std::time::Instant::now`.
    Std,
    /// `tokio::time::Instant::now` (std's without the `tokio` feature).
    Tokio,
}

impl Clock {
    /// The current instant on this clock.
    pub fn now(self) -> Instant {
        match self {
            #[cfg(feature = "tokio")]
            Clock::Tokio => tokio::time::Instant::now().into_std(),
            _ => Instant::now(),
        }
    }
}

/// When an attempt must end, from [`Attempts::cut_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// At this instant.
    At(Instant),
    /// This long after the attempt first waits (is not ready at its first
    /// poll): no clock is read for an attempt that never waits.
    Within(Duration),
    /// The deadline passed before the attempt began: it is not started.
    Passed,
}

impl Attempts {
    /// [`Retry::begin`] from its parts, so generated code need not keep a
    /// `Retry` alive across awaits: `observed` says an `on_retry` will read the
    /// elapsed time.
    #[inline]
    pub fn begin(
        policy: &Policy,
        budget: Option<&RetryBudget>,
        observed: bool,
        clock: Clock,
    ) -> Attempts {
        Attempts::start(policy, budget, policy.deadline.is_some() || observed, clock)
    }

    /// [`begin`](Attempts::begin) for an async loop that cuts every attempt
    /// with [`with_timeout`](crate::with_timeout) and hands what it reports to
    /// [`settle_timeout`](crate::settle_timeout), and makes no wait before its
    /// first attempt (no limiter): its deadline's clock starts when the call
    /// first waits (see [`cut_at`](Attempts::cut_at)), so a call that
    /// succeeds at once reads no clock. `#[retry]`, `run_async_timeout` and
    /// `HttpRetry` begin so. Hidden: a loop that awaits an attempt without
    /// the cut-off, or waits for a limiter first, would leave that time out
    /// of its deadline.
    #[doc(hidden)]
    #[inline]
    pub fn begin_cut(policy: &Policy, budget: Option<&RetryBudget>, observed: bool) -> Attempts {
        Attempts::start(policy, budget, observed, Clock::Tokio)
    }

    #[inline]
    fn start(
        policy: &Policy,
        budget: Option<&RetryBudget>,
        clock_now: bool,
        clock: Clock,
    ) -> Attempts {
        if let Some(budget) = budget {
            budget.deposit();
        }
        let needs_clock = clock_now || cfg!(feature = "tracing");
        Attempts {
            number: 1,
            previous_ns: crate::backoff::nanos(policy.initial),
            start: if needs_clock { Some(clock.now()) } else { None },
            clock,
        }
    }

    /// The attempt under way, 1-based.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// When the attempt about to start must be cut: at the policy's `deadline`,
    /// and no later than `timeout` after it begins (`None` with neither).
    ///
    /// A call begun for a loop that cuts every attempt (`#[retry]` on an
    /// async fn without a limiter, hooks or `tracing`; `run_async_timeout`;
    /// `HttpRetry` without a limiter) starts its clock when it first waits:
    /// its first attempt not ready at its first poll, or its first failure,
    /// whichever comes first. Until then a cut is
    /// [`Cut::Within`] — the deadline, or the timeout if shorter, from the
    /// attempt's first wait — so a call that succeeds at once reads no clock;
    /// what runs before that first wait is one poll's synchronous work. Once
    /// the clock runs, a later attempt, which follows a sleep that may have
    /// ended late, checks whether the deadline has already passed — such an
    /// attempt is not started at all ([`Cut::Passed`]), so no request is sent
    /// whose answer would be thrown away.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::runtime::{Attempts, Clock, Cut, Policy};
    /// use std::time::{Duration, Instant};
    ///
    /// let policy = Policy::new().timeout(Duration::from_secs(10)).deadline(Duration::from_secs(3));
    /// let attempts = Attempts::begin(&policy, None, false, Clock::Std);
    /// let Some(Cut::At(at)) = attempts.cut_at(&policy) else { panic!("a cut at an instant") };
    /// assert!(at <= Instant::now() + Duration::from_secs(3));
    /// ```
    pub fn cut_at(&self, policy: &Policy) -> Option<Cut> {
        let Some(start) = self.start.filter(|_| policy.deadline.is_some()) else {
            let within = match (policy.deadline, policy.timeout) {
                (Some(deadline), Some(timeout)) => deadline.min(timeout),
                (Some(within), None) | (None, Some(within)) => within,
                (None, None) => return None,
            };
            return Some(Cut::Within(within));
        };
        let by_deadline = policy
            .deadline
            .and_then(|deadline| start.checked_add(deadline));
        if self.number > 1 && by_deadline.is_some_and(|d| self.clock.now() >= d) {
            return Some(Cut::Passed);
        }
        let by_timeout = policy
            .timeout
            .and_then(|timeout| self.clock.now().checked_add(timeout));
        match (by_deadline, by_timeout) {
            (Some(a), Some(b)) => Some(Cut::At(a.min(b))),
            (Some(a), None) | (None, Some(a)) => Some(Cut::At(a)),
            // A deadline past the end of time: none.
            (None, None) => None,
        }
    }

    /// The call first waited at `at` (an attempt not ready at its first
    /// poll): its clock starts there, if it had not yet.
    #[cfg(feature = "tokio")]
    pub(crate) fn waited_since(&mut self, at: Instant) {
        self.start.get_or_insert(at);
    }

    #[inline]
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.map_or(Duration::ZERO, |start| {
            self.clock.now().saturating_duration_since(start)
        })
    }
}
