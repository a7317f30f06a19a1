//! Where a retry loop meets a [`RateLimiter`]: a turn before each attempt, the
//! attempt's outcome after it. Nothing else of the loop changes.

use std::time::Duration;

use crate::{
    Attempts, Clock, Cost, ErrorClass, Hooks, Policy, RateLimiter, Retry, Step, Throttled, Turn,
};

/// A call's standing with its limiter: the turn its current attempt took, and
/// the last error, returned should the next turn not come in time.
#[derive(Debug)]
pub struct Paced<E> {
    turn: Turn,
    last: Option<E>,
}

impl<E> Default for Paced<E> {
    fn default() -> Paced<E> {
        Paced::new()
    }
}

impl<E> Paced<E> {
    /// A call that has made no attempt yet.
    pub const fn new() -> Paced<E> {
        Paced {
            turn: Turn::UNPACED,
            last: None,
        }
    }

    /// Takes a turn at once if the limiter is idle (one atomic read); `false`
    /// means [`wait`](Paced::wait) for one.
    #[inline]
    pub fn ready(&mut self, limiter: &RateLimiter) -> bool {
        match limiter.try_turn_now() {
            Some(turn) => {
                self.turn = turn;
                true
            }
            None => false,
        }
    }

    /// Waits for a turn to spend `cost`, no longer than `max_delay` nor past the `deadline`.
    /// When it cannot come in time the call is over: the last attempt's error,
    /// or `E::from(Throttled)` if there was none. A turn that comes with the
    /// deadline already passed is no turn: the attempt would be cut before it
    /// could be answered, so nothing is sent.
    #[cfg(feature = "tokio")]
    pub async fn wait(
        &mut self,
        limiter: &RateLimiter,
        policy: &Policy,
        attempts: &Attempts,
        cost: Cost,
    ) -> Result<(), E>
    where
        E: From<Throttled>,
    {
        self.wait_or(limiter, policy, attempts, cost, E::from).await
    }

    /// [`wait`](Paced::wait), making the error of a call that got no turn
    /// and had none of its own with `throttled`.
    #[cfg(feature = "tokio")]
    pub async fn wait_or(
        &mut self,
        limiter: &RateLimiter,
        policy: &Policy,
        attempts: &Attempts,
        cost: Cost,
        throttled: fn(Throttled) -> E,
    ) -> Result<(), E> {
        let turn = limiter.turn_costing(max_wait(policy, attempts), cost).await;
        self.take(turn, policy, attempts, throttled)
    }

    /// [`wait`](Paced::wait) for blocking functions.
    pub fn wait_blocking(
        &mut self,
        limiter: &RateLimiter,
        policy: &Policy,
        attempts: &Attempts,
        cost: Cost,
    ) -> Result<(), E>
    where
        E: From<Throttled>,
    {
        self.wait_blocking_or(limiter, policy, attempts, cost, E::from)
    }

    /// [`wait_or`](Paced::wait_or) for blocking functions.
    pub fn wait_blocking_or(
        &mut self,
        limiter: &RateLimiter,
        policy: &Policy,
        attempts: &Attempts,
        cost: Cost,
        throttled: fn(Throttled) -> E,
    ) -> Result<(), E> {
        let turn = limiter.turn_blocking_costing(max_wait(policy, attempts), cost);
        self.take(turn, policy, attempts, throttled)
    }

    /// Keeps the turn; or, with none in time, ends the call with the last
    /// attempt's error, else `throttled(Throttled)`.
    fn take(
        &mut self,
        turn: Result<Turn, Throttled>,
        policy: &Policy,
        attempts: &Attempts,
        throttled: fn(Throttled) -> E,
    ) -> Result<(), E> {
        let late = |deadline| attempts.elapsed() >= deadline;
        let turn = match turn {
            Ok(_) if policy.deadline.is_some_and(late) => Err(Throttled::new(Duration::ZERO)),
            turn => turn,
        };
        match turn {
            Ok(turn) => {
                self.turn = turn;
                Ok(())
            }
            Err(refused) => Err(self.last.take().unwrap_or_else(|| throttled(refused))),
        }
    }
}

/// How long a turn may take: no more than a sleep may.
fn max_wait(policy: &Policy, attempts: &Attempts) -> Duration {
    match policy.deadline {
        Some(deadline) => policy
            .max_delay
            .min(deadline.saturating_sub(attempts.elapsed())),
        None => policy.max_delay,
    }
}

impl<E> Retry<E> {
    /// [`step`](Retry::step) for a call paced by `limiter`: reports the outcome
    /// (success; a throttle or overload with its hint) to the limiter, and keeps
    /// the error in `paced` while the loop sleeps, to return it should no turn
    /// come in time.
    #[inline]
    pub fn step_paced<T>(
        &self,
        attempts: &mut Attempts,
        result: Result<T, E>,
        forced: Option<ErrorClass>,
        limiter: &RateLimiter,
        paced: &mut Paced<E>,
    ) -> Step<T, E> {
        self.step_paced_with(attempts, result, forced, limiter, paced, Hooks::NONE)
    }

    /// [`step_paced`](Retry::step_paced), telling the call's own `hooks` too.
    #[inline]
    pub fn step_paced_with<T>(
        &self,
        attempts: &mut Attempts,
        result: Result<T, E>,
        forced: Option<ErrorClass>,
        limiter: &RateLimiter,
        paced: &mut Paced<E>,
        hooks: Hooks<'_, E>,
    ) -> Step<T, E> {
        match result {
            Ok(value) => {
                limiter.succeeded(paced.turn);
                Step::Return(Ok(value))
            }
            Err(error) => self.failed_paced(attempts, error, forced, limiter, paced, hooks),
        }
    }

    #[cold]
    #[inline(never)]
    fn failed_paced<T>(
        &self,
        attempts: &mut Attempts,
        error: E,
        forced: Option<ErrorClass>,
        limiter: &RateLimiter,
        paced: &mut Paced<E>,
        hooks: Hooks<'_, E>,
    ) -> Step<T, E> {
        if let Some(class) = self.class(&error, forced) {
            let hint = self.server_hint.and_then(|hint| hint(&error));
            limiter.failed_costing(paced.turn, self.cost, class, hint);
        }
        let limiter_wait = Some(limiter.snapshot().next_turn);
        match self.next_delay(attempts, &error, forced, limiter_wait, hooks) {
            Some(delay) => {
                paced.last = Some(error);
                Step::Sleep(delay)
            }
            None => Step::Return(Err(error)),
        }
    }

    /// [`run`](Retry::run) with a turn from `limiter` before every attempt.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::RateLimiter;
    /// use ai_retry::runtime::{Policy, Retry};
    /// use std::io;
    ///
    /// static LIMITER: RateLimiter = RateLimiter::per_minute(6000);
    ///
    /// let result: io::Result<&str> = Retry::classified(Policy::new()).run_limited(&LIMITER, || Ok("answer"));
    /// assert_eq!(result.unwrap(), "answer");
    /// ```
    pub fn run_limited<T>(
        self,
        limiter: &RateLimiter,
        mut attempt: impl FnMut() -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<Throttled>,
    {
        let mut attempts = self.begin(Clock::Std);
        let mut paced = Paced::<E>::new();
        loop {
            if !paced.ready(limiter)
                && let Err(error) = paced.wait_blocking(limiter, &self.policy, &attempts, self.cost)
            {
                return Err(self.gave_up_waiting(&attempts, error));
            }
            match self.step_paced(&mut attempts, attempt(), None, limiter, &mut paced) {
                Step::Return(result) => return result,
                Step::Sleep(delay) => std::thread::sleep(delay),
            }
        }
    }

    /// [`run_async`](Retry::run_async) with a turn from `limiter` before every
    /// attempt; waiting for a turn is not an attempt.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::{ErrorClass, RateLimiter, Throttled};
    /// use ai_retry::runtime::{Policy, Retry};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// static LIMITER: RateLimiter = RateLimiter::new();
    /// // Another caller was told to come back in 45 s: so is everyone, and this
    /// // call waits 30 s at most.
    /// let turn = LIMITER.turn(Duration::ZERO).await.unwrap();
    /// LIMITER.failed(turn, ErrorClass::RateLimit, Some(Duration::from_secs(45)));
    ///
    /// let policy = Policy::new().max_delay(Duration::from_secs(30));
    /// let result: Result<(), std::io::Error> = Retry::classified(policy)
    ///     .run_async_limited(&LIMITER, || async { unreachable!("no request is sent") })
    ///     .await;
    /// assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn run_async_limited<T, F, Fut>(
        self,
        limiter: &RateLimiter,
        mut attempt: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: From<Throttled>,
    {
        let mut attempts = self.begin(Clock::Tokio);
        let mut paced = Paced::<E>::new();
        loop {
            if !paced.ready(limiter)
                && let Err(error) = paced
                    .wait(limiter, &self.policy, &attempts, self.cost)
                    .await
            {
                return Err(self.gave_up_waiting(&attempts, error));
            }
            let result = attempt().await;
            let delay = match self.step_paced(&mut attempts, result, None, limiter, &mut paced) {
                Step::Return(result) => return result,
                Step::Sleep(delay) => delay,
            };
            tokio::time::sleep(delay).await;
        }
    }
}
