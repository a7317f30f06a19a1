//! `deadline` on an `async fn` is a promise: the attempt in flight is cut when
//! it passes, whatever the body does; with `timeout` too, the earlier cut wins.

use ai_retry::runtime::{Policy, Retry};
use ai_retry::{Classify, ErrorClass, TimedOut, retry};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    Server,
    TimedOut,
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        match self {
            ApiError::Server => ErrorClass::Server,
            ApiError::TimedOut => ErrorClass::Timeout,
        }
    }
}

impl From<TimedOut> for ApiError {
    fn from(_: TimedOut) -> ApiError {
        ApiError::TimedOut
    }
}

/// Fails once, then hangs forever.
#[retry(max = 5, backoff = "constant", initial = "1s", deadline = "10s")]
async fn fails_then_hangs(calls: &AtomicU32) -> Result<(), ApiError> {
    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(ApiError::Server);
    }
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn a_hanging_attempt_ends_exactly_at_the_deadline() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(fails_then_hangs(&calls).await, Err(ApiError::TimedOut));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(10),
        "not before, not after"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[retry(deadline = "10s")]
async fn quick(n: u32) -> Result<u32, ApiError> {
    Ok(n + 1)
}

#[tokio::test(start_paused = true)]
async fn a_quick_call_with_a_deadline_is_unchanged() {
    let start = Instant::now();
    assert_eq!(quick(1).await, Ok(2));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

/// Hangs on every attempt; `timeout` 4 s, `deadline` 10 s, 1 s between attempts.
#[retry(
    max = 5,
    backoff = "constant",
    initial = "1s",
    timeout = "4s",
    deadline = "10s"
)]
async fn hangs_with_both(calls: &AtomicU32) -> Result<(), ApiError> {
    calls.fetch_add(1, Ordering::SeqCst);
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn the_earlier_of_timeout_and_deadline_cuts() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(hangs_with_both(&calls).await, Err(ApiError::TimedOut));
    // 0–4 s cut by the timeout, sleep to 5, 5–9 cut by the timeout; a sleep to
    // 10 would leave the next attempt no time at all, so the loop ends at 9 s
    // with the last error rather than start an attempt it must cut at once.
    assert_eq!(start.elapsed(), Duration::from_secs(9));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// Hangs; the deadline is shorter than the timeout.
#[retry(max = 5, timeout = "30s", deadline = "3s")]
async fn deadline_first(calls: &AtomicU32) -> Result<(), ApiError> {
    calls.fetch_add(1, Ordering::SeqCst);
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn a_deadline_shorter_than_the_timeout_cuts_first() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(deadline_first(&calls).await, Err(ApiError::TimedOut));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_call_mid_attempt_still_stops_it() {
    let calls = AtomicU32::new(0);
    let cut = tokio::time::timeout(Duration::from_secs(2), fails_then_hangs(&calls)).await;
    assert!(cut.is_err(), "dropped at 2 s, mid-attempt");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "no attempt after the drop");
}

#[tokio::test(start_paused = true)]
async fn the_runtime_loop_keeps_the_same_promise() {
    let policy = Policy::new()
        .max_attempts(5)
        .initial(Duration::from_secs(1))
        .deadline(Duration::from_secs(7));
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let result: Result<(), ApiError> = Retry::classified(policy)
        .run_async_timeout(|| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    return Err(ApiError::Server);
                }
                std::future::pending().await
            }
        })
        .await;
    assert_eq!(result, Err(ApiError::TimedOut));
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}
