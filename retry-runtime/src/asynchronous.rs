//! The async loop: `tokio::time` sleeps and clock, so paused-clock tests run instantly.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use std::time::Instant;

use crate::{Attempts, Clock, Cut, ErrorClass, Retry, Step, TimedOut};

impl<E> Retry<E> {
    /// Awaits `attempt()` until it succeeds, fails with an error not to retry, or
    /// the policy says stop; then returns its last result, the error unchanged.
    /// Sleeps with `tokio::time::sleep`; dropping the future stops the loop.
    /// The policy's `timeout` is ignored here, and its `deadline` bounds sleeps but
    /// not the attempt in flight: see [`run_async_timeout`](Retry::run_async_timeout).
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::runtime::{Policy, Retry};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut calls = 0;
    /// let result: Result<u32, String> = Retry::new(Policy::new())
    ///     .run_async(|| {
    ///         calls += 1;
    ///         let n = calls;
    ///         async move { if n < 3 { Err(format!("failure {n}")) } else { Ok(n) } }
    ///     })
    ///     .await;
    /// assert_eq!(result, Ok(3));
    /// # }
    /// ```
    pub async fn run_async<T, F, Fut>(self, mut attempt: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempts = self.begin(Clock::Tokio);
        loop {
            // Only the delay lives across the sleep: the future is `Send`
            // whenever the attempt's is, whatever `T` and `E` are.
            let delay = match self.step(&mut attempts, attempt().await, None) {
                Step::Return(result) => return result,
                Step::Sleep(delay) => delay,
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// [`run_async`](Retry::run_async), with each attempt cut off after the
    /// policy's `timeout` and when its `deadline` passes, whichever comes first:
    /// a cut-off attempt fails with `E::from(TimedOut)` and counts as
    /// [`ErrorClass::Timeout`], whatever `E`'s own classification says. So a
    /// deadline holds even against an attempt that hangs.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::runtime::{Policy, Retry};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let policy = Policy::new().max_attempts(2).timeout(Duration::from_secs(1));
    /// let result: Result<(), std::io::Error> = Retry::classified(policy)
    ///     .run_async_timeout(|| std::future::pending())
    ///     .await;
    /// assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// # }
    /// ```
    pub async fn run_async_timeout<T, F, Fut>(self, mut attempt: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<TimedOut>,
    {
        if self.policy.timeout.is_none() && self.policy.deadline.is_none() {
            return self.run_async(attempt).await;
        }
        let mut attempts = self.begin_cut();
        loop {
            let cut = attempts.cut_at(&self.policy);
            let attempt = std::pin::pin!(attempt());
            let (timed, convert) = with_timeout(cut, attempt);
            let (result, forced) = settle_timeout(timed.await, convert, &mut attempts);
            let delay = match self.step(&mut attempts, result, forced) {
                Step::Return(result) => return result,
                Step::Sleep(delay) => delay,
            };
            tokio::time::sleep(delay).await;
        }
    }
}

/// `attempt` cut off at `cut` (never, with `None`): a [`CutOff`] future, to
/// be awaited and passed to [`settle_timeout`] with the conversion returned
/// beside it. A cut that had already passed ends it before its first poll:
/// nothing of the attempt runs.
///
/// A plain function returning a named future: `E: From<TimedOut>` is required
/// here alone, so a missing impl is reported once, where the cut-off is set.
/// The attempt is pinned where the caller holds it (`core::pin::pin!`), so it
/// is stored once.
pub fn with_timeout<'a, T, E, F>(
    cut: Option<Cut>,
    attempt: Pin<&'a mut F>,
) -> (CutOff<'a, F>, fn(TimedOut) -> E)
where
    F: Future<Output = Result<T, E>>,
    E: From<TimedOut>,
{
    let cut_off = CutOff {
        attempt,
        cut,
        timer: None,
        waited: None,
    };
    (cut_off, E::from)
}

/// An attempt that ends at `cut`: `Some(output)`, or `None` when cut, and
/// when it first waited if its cut counted from then ([`Cut::Within`]). The
/// timer is armed only if the attempt does not finish at its first poll, so a
/// call that succeeds at once arms none and reads no clock.
#[derive(Debug)]
pub struct CutOff<'a, F> {
    attempt: Pin<&'a mut F>,
    cut: Option<Cut>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    waited: Option<Instant>,
}

impl<F: Future> Future for CutOff<'_, F> {
    type Output = (Option<F::Output>, Option<Instant>);

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        // Every field is `Unpin`: the attempt is pinned where the caller holds it.
        let this = self.get_mut();
        if this.cut == Some(Cut::Passed) {
            return Poll::Ready((None, None));
        }
        if let Poll::Ready(output) = this.attempt.as_mut().poll(cx) {
            return Poll::Ready((Some(output), this.waited));
        }
        let at = match this.cut {
            None | Some(Cut::Passed) => return Poll::Pending,
            Some(Cut::At(at)) => Some(at),
            Some(Cut::Within(within)) => {
                let waited = *this.waited.get_or_insert_with(|| Clock::Tokio.now());
                waited.checked_add(within)
            }
        };
        let timer = match (&mut this.timer, at) {
            (Some(timer), _) => timer,
            (timer @ None, Some(at)) => timer.insert(Box::pin(tokio::time::sleep_until(at.into()))),
            // A cut past the end of time: none.
            (None, None) => return Poll::Pending,
        };
        timer.as_mut().poll(cx).map(|()| (None, this.waited))
    }
}

/// The outcome of a [`with_timeout`] attempt: a cut-off attempt becomes
/// `convert(TimedOut)`, with the class to force on [`Retry::step`]; the
/// call's clock starts when the attempt first waited, if it had not yet
/// (see [`Attempts::cut_at`]).
pub fn settle_timeout<T, E>(
    (outcome, waited): (Option<Result<T, E>>, Option<Instant>),
    convert: fn(TimedOut) -> E,
    attempts: &mut Attempts,
) -> (Result<T, E>, Option<ErrorClass>) {
    if let Some(waited) = waited {
        attempts.waited_since(waited);
    }
    match outcome {
        Some(result) => (result, None),
        None => (Err(convert(TimedOut)), Some(ErrorClass::Timeout)),
    }
}
