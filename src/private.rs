//! What `#[retry]`'s expansion names, under one hidden path. Not a public API.

use std::future::Future;

pub use core::time::Duration;
pub use retry_runtime::{
    Attempts, Backoff, ClassSet, Clock, Cost, ErrorClass, Hooks, Paced, Policy, RateLimiter, Retry,
    Step,
};

/// Types a closure hook as one where the user wrote it: its argument is the
/// call's event (a closure bound with no expected type would not infer the
/// event's lifetime).
#[inline(always)]
pub fn hook<E, F: Fn(&retry_runtime::RetryEvent<'_, E>)>(hook: F) -> F {
    hook
}

/// Whether the error type can report a server hint, decided at compile time
/// (autoref specialisation): under `when = …` and `on = any` the hint is still
/// honoured when `E: Classify`; a generic `E` follows its bounds.
pub mod hint {
    use core::marker::PhantomData;
    use core::time::Duration;

    /// The probe: `(&HintOf::<E>::NEW).hint_fn()`.
    pub struct HintOf<E>(PhantomData<fn(&E)>);

    impl<E> HintOf<E> {
        /// The probe's one value.
        pub const NEW: HintOf<E> = HintOf(PhantomData);
    }

    /// Chosen first, when `E: Classify`.
    pub trait ViaClassify<E> {
        /// `Classify::retry_after`.
        fn hint_fn(&self) -> Option<fn(&E) -> Option<Duration>>;
    }

    impl<E: retry_runtime::Classify> ViaClassify<E> for HintOf<E> {
        #[inline(always)]
        fn hint_fn(&self) -> Option<fn(&E) -> Option<Duration>> {
            Some(<E as retry_runtime::Classify>::retry_after)
        }
    }

    /// The fallback, one autoref further: no hint.
    pub trait ViaNothing<E> {
        /// None.
        #[inline(always)]
        fn hint_fn(&self) -> Option<fn(&E) -> Option<Duration>> {
            None
        }
    }

    impl<E> ViaNothing<E> for &HintOf<E> {}
}

/// The function's return type, checked where the user wrote it.
#[diagnostic::on_unimplemented(
    message = "#[retry] needs a function that returns a `Result`, but this one returns `{Self}`",
    label = "not a `Result`",
    note = "the retry loop tells failure from success by `Err`: return `Result<T, E>` (or an alias such as `io::Result<T>`)"
)]
pub trait AttemptResult {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
    /// As a plain `Result`, for `Retry::step`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
    /// Back from a plain `Result`, to return.
    fn from_result(result: Result<Self::Ok, Self::Err>) -> Self;
}

impl<T, E> AttemptResult for Result<T, E> {
    type Ok = T;
    type Err = E;
    #[inline(always)]
    fn into_result(self) -> Result<T, E> {
        self
    }
    #[inline(always)]
    fn from_result(result: Result<T, E>) -> Self {
        result
    }
}

/// Fixes an async attempt's output type to the function's return type, so `?`
/// inside it infers.
#[inline(always)]
pub fn attempt<R: AttemptResult, F: Future<Output = R>>(attempt: F) -> F {
    attempt
}

/// Runs a blocking attempt, its closure typed by the function's return type.
#[inline(always)]
pub fn attempt_blocking<R: AttemptResult, F: FnOnce() -> R>(attempt: F) -> R {
    attempt()
}

/// Waits for a turn. `throttled` is `<E as From<Throttled>>::from`, written
/// at the `limiter` key by the expansion: a missing `From<Throttled>` is
/// reported there, in the user's terms, and nowhere in here. Boxed like the
/// backoff sleep: the generated future holds a pointer, not the wait's state,
/// and the box is made only when the limiter makes the call wait, never when
/// it is idle.
#[cfg(feature = "tokio")]
#[inline]
pub fn wait_turn<'a, E>(
    paced: &'a mut Paced<E>,
    limiter: &'a RateLimiter,
    policy: &'a Policy,
    attempts: &'a Attempts,
    cost: Cost,
    throttled: fn(retry_runtime::Throttled) -> E,
) -> std::pin::Pin<Box<impl Future<Output = Result<(), E>> + 'a>> {
    Box::pin(paced.wait_or(limiter, policy, attempts, cost, throttled))
}

/// [`wait_turn`] for blocking functions.
#[inline]
pub fn wait_turn_blocking<E>(
    paced: &mut Paced<E>,
    limiter: &RateLimiter,
    policy: &Policy,
    attempts: &Attempts,
    cost: Cost,
    throttled: fn(retry_runtime::Throttled) -> E,
) -> Result<(), E> {
    paced.wait_blocking_or(limiter, policy, attempts, cost, throttled)
}

/// The blocking loop's sleep; none under the test switch.
#[inline]
pub fn thread_sleep(delay: Duration) {
    if !delay.is_zero() {
        std::thread::sleep(delay)
    }
}

#[cfg(feature = "tokio")]
pub use retry_runtime::{settle_timeout, with_timeout};
/// The async loop's sleep, boxed: the future then holds a pointer, not tokio's
/// 112-byte `Sleep`, and every call moves that much less. The box is made only
/// when a retry sleeps, never on the success path.
#[cfg(feature = "tokio")]
pub fn sleep(delay: Duration) -> std::pin::Pin<Box<tokio::time::Sleep>> {
    Box::pin(tokio::time::sleep(delay))
}

/// Without the `tokio` feature an `async fn` cannot sleep: these stand-ins turn
/// that into an error that names the feature.
#[cfg(not(feature = "tokio"))]
mod without_tokio {
    use super::*;

    #[diagnostic::on_unimplemented(
        message = "#[retry] on an `async fn` needs the `tokio` feature of `ai-retry`",
        label = "async retries sleep with tokio",
        note = "enable it: `ai-retry = {{ version = \"0.1\", features = [\"tokio\"] }}` (it is on by default)"
    )]
    pub trait TokioFeature {}

    pub async fn sleep<D: TokioFeature>(_: D) {}

    pub fn with_timeout<D: TokioFeature, F>(_: D, attempt: F) -> (F, ()) {
        (attempt, ())
    }

    pub fn settle_timeout<T>(outcome: T, _: (), _: &mut Attempts) -> (T, Option<ErrorClass>) {
        (outcome, None)
    }

    pub fn wait_turn<E, L, P, A, C>(
        _: &mut Paced<E>,
        _: L,
        _: P,
        _: A,
        _: Cost,
        _: C,
    ) -> core::future::Ready<Result<(), E>>
    where
        Paced<E>: TokioFeature,
    {
        core::future::ready(Ok(()))
    }
}

#[cfg(not(feature = "tokio"))]
pub use without_tokio::*;
