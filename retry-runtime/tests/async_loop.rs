//! The async loop under tokio's paused clock: every sleep is virtual, so the
//! times asserted here are exact and the tests take no real time.

use retry_runtime::{
    Backoff, ClassSet, Classify, ErrorClass, Policy, Retry, RetryBudget, RetryEvent, Step, TimedOut,
};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
struct ApiError {
    class: ErrorClass,
    hint: Option<Duration>,
    attempt: u32,
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        self.class
    }
    fn retry_after(&self) -> Option<Duration> {
        self.hint
    }
}

/// Deliberately `Permanent`: a cut-off attempt must count as `Timeout` anyway.
impl From<TimedOut> for ApiError {
    fn from(_: TimedOut) -> ApiError {
        ApiError {
            class: ErrorClass::Permanent,
            hint: None,
            attempt: 0,
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Runs `retry` over an attempt that fails with `class`/`hint` until attempt
/// `succeed_at` (never, if 0); returns the result and when each attempt started,
/// in seconds since the call.
async fn drive(
    retry: Retry<ApiError>,
    class: ErrorClass,
    hint: Option<Duration>,
    succeed_at: u32,
) -> (Result<u32, ApiError>, Vec<f64>) {
    let start = Instant::now();
    let mut starts = Vec::new();
    let result = retry
        .run_async(|| {
            starts.push(start.elapsed().as_secs_f64());
            let attempt = starts.len() as u32;
            async move {
                if attempt == succeed_at {
                    Ok(attempt)
                } else {
                    Err(ApiError {
                        class,
                        hint,
                        attempt,
                    })
                }
            }
        })
        .await;
    (result, starts)
}

fn constant(max: u32, delay: f64) -> Policy {
    Policy::new()
        .max_attempts(max)
        .backoff(Backoff::Constant)
        .initial(secs(delay))
}

#[tokio::test(start_paused = true)]
async fn sleeps_the_backoff_between_attempts() {
    let policy = Policy::new()
        .max_attempts(4)
        .backoff(Backoff::Exp)
        .initial(secs(1.0));
    let (result, starts) = drive(Retry::classified(policy), ErrorClass::Server, None, 0).await;
    assert_eq!(starts, [0.0, 1.0, 3.0, 7.0]);
    assert_eq!(
        result.unwrap_err().attempt,
        4,
        "the last error comes back unchanged"
    );
}

#[tokio::test(start_paused = true)]
async fn success_returns_at_once() {
    let (result, starts) = drive(
        Retry::classified(constant(5, 1.0)),
        ErrorClass::Server,
        None,
        3,
    )
    .await;
    assert_eq!(result, Ok(3));
    assert_eq!(starts, [0.0, 1.0, 2.0]);
}

#[tokio::test(start_paused = true)]
async fn max_one_never_retries_and_zero_acts_as_one() {
    for max in [0, 1] {
        let (result, starts) = drive(
            Retry::classified(constant(max, 1.0)),
            ErrorClass::RateLimit,
            None,
            0,
        )
        .await;
        assert_eq!(starts, [0.0]);
        assert!(result.is_err());
    }
}

#[tokio::test(start_paused = true)]
async fn only_the_chosen_classes_are_retried() {
    let retry = Retry::classified(constant(3, 1.0)).on(ErrorClass::RateLimit | ErrorClass::Timeout);
    assert_eq!(
        drive(retry, ErrorClass::RateLimit, None, 0).await.1.len(),
        3
    );
    assert_eq!(drive(retry, ErrorClass::Server, None, 0).await.1.len(), 1);
    let transient = Retry::classified(constant(3, 1.0));
    assert_eq!(
        drive(transient, ErrorClass::Permanent, None, 0)
            .await
            .1
            .len(),
        1
    );
    for class in ErrorClass::ALL.into_iter().filter(|c| c.is_transient()) {
        assert_eq!(drive(transient, class, None, 0).await.1.len(), 3, "{class}");
    }
    let nothing = Retry::classified(constant(3, 1.0)).on(ClassSet::EMPTY);
    assert_eq!(drive(nothing, ErrorClass::Server, None, 0).await.1.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn any_and_when_need_no_classification() {
    let any = Retry::new(constant(3, 1.0));
    assert_eq!(drive(any, ErrorClass::Permanent, None, 0).await.1.len(), 3);
    fn first_two(e: &ApiError) -> bool {
        e.attempt < 2
    }
    let when = Retry::classified(constant(5, 1.0)).when(first_two);
    assert_eq!(
        drive(when, ErrorClass::Permanent, None, 0).await.1,
        [0.0, 1.0]
    );
}

#[tokio::test(start_paused = true)]
async fn the_server_hint_is_honoured_never_early() {
    let exact = Policy::new().max_attempts(3).backoff(Backoff::None);
    let (_, starts) = drive(
        Retry::classified(exact),
        ErrorClass::RateLimit,
        Some(secs(5.0)),
        0,
    )
    .await;
    assert_eq!(starts, [0.0, 5.0, 10.0]);

    // With a backoff, the hint gets a spread of up to that backoff on top: never below it.
    let spread = Policy::new()
        .max_attempts(2)
        .backoff(Backoff::Constant)
        .initial(secs(1.0));
    for _ in 0..20 {
        let (_, starts) = drive(
            Retry::classified(spread),
            ErrorClass::RateLimit,
            Some(secs(5.0)),
            0,
        )
        .await;
        assert!((5.0..=6.0).contains(&starts[1]), "{starts:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_spread_never_passes_max_delay() {
    let policy = Policy::new()
        .max_attempts(2)
        .backoff(Backoff::Constant)
        .initial(secs(30.0))
        .max_delay(secs(6.0));
    for _ in 0..20 {
        let (_, starts) = drive(
            Retry::classified(policy),
            ErrorClass::RateLimit,
            Some(secs(5.0)),
            0,
        )
        .await;
        assert!((5.0..=6.0).contains(&starts[1]), "{starts:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hint_above_max_delay_fails_fast() {
    let policy = constant(5, 1.0).max_delay(secs(10.0));
    let start = Instant::now();
    let (result, starts) = drive(
        Retry::classified(policy),
        ErrorClass::RateLimit,
        Some(secs(3600.0)),
        0,
    )
    .await;
    assert_eq!(starts, [0.0]);
    assert_eq!(start.elapsed(), Duration::ZERO, "no sleep at all");
    assert_eq!(result.unwrap_err().hint, Some(secs(3600.0)));
}

#[tokio::test(start_paused = true)]
async fn no_sleep_ends_past_the_deadline() {
    let policy = constant(10, 1.0).deadline(secs(2.5));
    let start = Instant::now();
    let (_, starts) = drive(Retry::classified(policy), ErrorClass::Server, None, 0).await;
    assert_eq!(starts, [0.0, 1.0, 2.0]);
    assert_eq!(
        start.elapsed(),
        secs(2.0),
        "stopped instead of sleeping to 3.0"
    );

    // A hint that would end past the deadline stops the loop too.
    let policy = constant(10, 0.0).deadline(secs(4.0));
    let (_, starts) = drive(
        Retry::classified(policy),
        ErrorClass::RateLimit,
        Some(secs(3.0)),
        0,
    )
    .await;
    assert_eq!(starts, [0.0, 3.0]);
}

#[tokio::test(start_paused = true)]
async fn each_attempt_is_cut_off_by_the_timeout_and_counts_as_timeout() {
    let policy = constant(3, 1.0).timeout(secs(2.0));
    let start = Instant::now();
    let attempts = AtomicU32::new(0);
    let result: Result<(), ApiError> = Retry::classified(policy)
        .on(ErrorClass::Timeout.into())
        .run_async_timeout(|| {
            attempts.fetch_add(1, Ordering::SeqCst);
            std::future::pending()
        })
        .await;
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), secs(3.0 * 2.0 + 2.0 * 1.0));
    assert_eq!(
        result.unwrap_err().class,
        ErrorClass::Permanent,
        "E::from(TimedOut) is returned"
    );

    // An attempt that finishes in time is not cut off.
    let quick: Result<u8, ApiError> = Retry::classified(policy)
        .run_async_timeout(|| async {
            tokio::time::sleep(secs(1.9)).await;
            Ok(7)
        })
        .await;
    assert_eq!(quick, Ok(7));
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_stops_retries() {
    static BUDGET: RetryBudget = RetryBudget::new(0.5, 0);
    let retry = Retry::classified(constant(3, 1.0)).budget(&BUDGET);
    // Call 1 earns half a retry: not enough. Call 2 brings it to one: one retry.
    assert_eq!(drive(retry, ErrorClass::Server, None, 0).await.1.len(), 1);
    assert_eq!(drive(retry, ErrorClass::Server, None, 0).await.1.len(), 2);
    assert_eq!(drive(retry, ErrorClass::Server, None, 0).await.1.len(), 1);
    assert_eq!(BUDGET.balance(), 0);
}

/// (function, attempt, class, delay, server hint, elapsed, the error's attempt)
type Seen = (
    String,
    u32,
    Option<ErrorClass>,
    Duration,
    Option<Duration>,
    Duration,
    u32,
);

static EVENTS: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

fn record(event: &RetryEvent<'_, ApiError>) {
    EVENTS.lock().unwrap().push((
        event.function.to_string(),
        event.attempt,
        event.class,
        event.delay,
        event.server_hint,
        event.elapsed,
        event.error.attempt,
    ));
}

#[tokio::test(start_paused = true)]
async fn on_retry_sees_every_retry_before_its_sleep() {
    let retry = Retry::classified(constant(3, 2.0))
        .on_retry(record)
        .named("chat");
    let (result, _) = drive(retry, ErrorClass::Overloaded, None, 0).await;
    assert!(result.is_err());
    let events = EVENTS.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            (
                "chat".into(),
                1,
                Some(ErrorClass::Overloaded),
                secs(2.0),
                None,
                secs(0.0),
                1
            ),
            (
                "chat".into(),
                2,
                Some(ErrorClass::Overloaded),
                secs(2.0),
                None,
                secs(2.0),
                2
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_mid_sleep_makes_no_further_attempt() {
    let attempts = Arc::new(AtomicU32::new(0));
    let counter = attempts.clone();
    let call = Retry::<ApiError>::classified(constant(10, 1.0)).run_async(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            Err::<(), _>(ApiError {
                class: ErrorClass::Server,
                hint: None,
                attempt: 0,
            })
        }
    });
    assert!(
        tokio::time::timeout(secs(1.5), call).await.is_err(),
        "cut off mid-sleep"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    tokio::time::sleep(secs(60.0)).await;
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "nothing ran after the drop"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panic_propagates_and_is_not_retried() {
    let attempts = Arc::new(AtomicU32::new(0));
    let counter = attempts.clone();
    // Spawning also proves the loop's future is `Send` when the attempt's is.
    let task = tokio::spawn(
        Retry::<ApiError>::classified(constant(5, 1.0)).run_async(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { panic!("bug in the attempt") as Result<(), ApiError> }
        }),
    );
    let error = task.await.unwrap_err();
    assert!(error.is_panic());
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_attempt_whose_deadline_passed_during_the_sleep_is_not_started() {
    use retry_runtime::{Attempts, Clock, with_timeout};
    let policy = Policy::new()
        .deadline(Duration::from_millis(20))
        .initial(Duration::from_millis(1));
    let retry = Retry::<std::io::Error>::classified(policy);
    let mut attempts = Attempts::begin(&policy, None, false, Clock::Tokio);
    // The first attempt fails; its sleep (which the loop keeps short of the
    // deadline) overruns it, as a loaded machine's timer may.
    let failed: Result<(), _> = Err(std::io::ErrorKind::ConnectionReset.into());
    assert!(matches!(
        retry.step(&mut attempts, failed, None),
        Step::Sleep(_)
    ));
    std::thread::sleep(Duration::from_millis(30));
    let cut = attempts.cut_at(&policy).expect("a deadline");
    assert_eq!(cut, retry_runtime::Cut::Passed);
    let polled = AtomicU32::new(0);
    let attempt = std::pin::pin!(async {
        polled.fetch_add(1, Ordering::SeqCst);
        Ok::<(), std::io::Error>(())
    });
    let (cut_off, _) = with_timeout(Some(cut), attempt);
    assert!(cut_off.await.0.is_none(), "cut before it began");
    assert_eq!(polled.load(Ordering::SeqCst), 0, "nothing of it ran");
}

fn failure(attempt: u32) -> ApiError {
    ApiError {
        class: ErrorClass::Connection,
        hint: None,
        attempt,
    }
}

#[tokio::test(start_paused = true)]
async fn a_deadline_counts_from_the_first_attempts_wait() {
    // The first attempt waits 2 s, then fails; the second hangs. The
    // deadline's clock started when the first attempt first waited, so the
    // second is cut 3 s after the call began, not 3 s after the failure.
    let policy = Policy::new()
        .backoff(Backoff::Constant)
        .initial(secs(0.1))
        .deadline(secs(3.0));
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let result: Result<(), ApiError> = Retry::classified(policy)
        .run_async_timeout(|| async {
            let attempt = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if attempt > 1 {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(secs(2.0)).await;
            Err(failure(attempt))
        })
        .await;
    assert_eq!(result.unwrap_err().attempt, 0, "cut off");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(start.elapsed(), secs(3.0));
}

#[tokio::test(start_paused = true)]
async fn a_failure_at_the_first_poll_starts_the_deadlines_clock() {
    // No attempt waits: the first failure starts the clock, and the
    // deadline ends the retries 1 s later (sleeps of 0.4 s: attempts at 0,
    // 0.4 and 0.8 s; a fourth would start at 1.2 s).
    let policy = Policy::new()
        .backoff(Backoff::Constant)
        .initial(secs(0.4))
        .max_attempts(10)
        .deadline(secs(1.0));
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let result: Result<(), ApiError> = Retry::classified(policy)
        .run_async_timeout(|| async { Err(failure(calls.fetch_add(1, Ordering::SeqCst) + 1)) })
        .await;
    assert_eq!(result.unwrap_err().attempt, 3);
    assert_eq!(start.elapsed(), secs(0.8));
}

#[cfg(not(feature = "tracing"))]
#[test]
fn a_loop_that_cuts_its_attempts_reads_no_clock_until_the_call_waits() {
    use retry_runtime::{Attempts, Clock, Cut};
    let policy = Policy::new().timeout(secs(10.0)).deadline(secs(3.0));
    let cut = Attempts::begin_cut(&policy, None, false).cut_at(&policy);
    assert_eq!(cut, Some(Cut::Within(secs(3.0))));
    // Begun plainly, the deadline's clock starts with the call.
    let cut = Attempts::begin(&policy, None, false, Clock::Tokio).cut_at(&policy);
    assert!(matches!(cut, Some(Cut::At(_))));
    // Observed (a hook reads the elapsed time): it starts with the call too.
    let cut = Attempts::begin_cut(&policy, None, true).cut_at(&policy);
    assert!(matches!(cut, Some(Cut::At(_))));
}
