//! Behaviour through the attribute: attempts counted, classes honoured, `on = any`
//! and `when` without `Classify`, `on_retry` events, delays on tokio's paused clock.

use ai_retry::{Classify, ErrorClass, RetryBudget, RetryEvent, TimedOut, retry};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
struct ApiError {
    class: ErrorClass,
    hint: Option<Duration>,
}

impl ApiError {
    fn of(class: ErrorClass) -> ApiError {
        ApiError { class, hint: None }
    }
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        self.class
    }
    fn retry_after(&self) -> Option<Duration> {
        self.hint
    }
}

impl From<ai_retry::Throttled> for ApiError {
    fn from(throttled: ai_retry::Throttled) -> ApiError {
        ApiError::of(throttled.class())
    }
}

impl From<TimedOut> for ApiError {
    fn from(_: TimedOut) -> ApiError {
        ApiError::of(ErrorClass::Timeout)
    }
}

/// Fails with `class` until attempt `ok_at`, counting attempts in `calls`.
struct Flaky {
    calls: u32,
    class: ErrorClass,
    ok_at: u32,
    times: Vec<Duration>,
    start: Instant,
}

impl Flaky {
    fn new(class: ErrorClass, ok_at: u32) -> Flaky {
        Flaky {
            calls: 0,
            class,
            ok_at,
            times: Vec::new(),
            start: Instant::now(),
        }
    }

    fn hit(&mut self) -> Result<u32, ApiError> {
        self.calls += 1;
        self.times.push(self.start.elapsed());
        if self.calls == self.ok_at {
            Ok(self.calls)
        } else {
            Err(ApiError::of(self.class))
        }
    }

    #[retry(max = 4, backoff = "constant", initial = "1s")]
    async fn transient(&mut self) -> Result<u32, ApiError> {
        tokio::task::yield_now().await;
        self.hit()
    }

    #[retry(max = 4, backoff = "constant", initial = "1s", on = RateLimit | Timeout)]
    async fn rate_or_timeout(&mut self) -> Result<u32, ApiError> {
        self.hit()
    }

    #[retry(max = 3, backoff = "exp", initial = "2s")]
    fn blocking(&mut self) -> Result<u32, ApiError> {
        self.hit()
    }
}

#[tokio::test(start_paused = true)]
async fn retries_transient_classes_until_success() {
    let mut flaky = Flaky::new(ErrorClass::Overloaded, 3);
    assert_eq!(flaky.transient().await, Ok(3));
    assert_eq!(
        flaky.times,
        [
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(2)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_is_not_retried_by_default() {
    let mut flaky = Flaky::new(ErrorClass::Permanent, 3);
    assert_eq!(
        flaky.transient().await,
        Err(ApiError::of(ErrorClass::Permanent))
    );
    assert_eq!(flaky.calls, 1);
}

#[tokio::test(start_paused = true)]
async fn on_limits_the_classes() {
    let mut server = Flaky::new(ErrorClass::Server, 0);
    assert!(server.rate_or_timeout().await.is_err());
    assert_eq!(server.calls, 1);
    let mut limited = Flaky::new(ErrorClass::RateLimit, 0);
    assert!(limited.rate_or_timeout().await.is_err());
    assert_eq!(limited.calls, 4);
}

#[test]
fn blocking_functions_retry_too() {
    // `initial = "2s"` would really sleep: succeed at once and check the count instead,
    // then check a permanent error is returned without sleeping.
    let mut ok = Flaky::new(ErrorClass::Server, 1);
    assert_eq!(ok.blocking(), Ok(1));
    let mut permanent = Flaky::new(ErrorClass::Permanent, 0);
    assert!(permanent.blocking().is_err());
    assert_eq!(permanent.calls, 1);
}

#[retry(max = 5, initial = "1ms", on = any)]
fn any_error(calls: &AtomicU32) -> Result<(), String> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err("no Classify needed".to_string())
}

#[test]
fn on_any_retries_every_error_without_classify() {
    let calls = AtomicU32::new(0);
    assert_eq!(any_error(&calls), Err("no Classify needed".to_string()));
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[allow(
    clippy::ptr_arg,
    reason = "a `when` predicate takes `&E`, and E is String here"
)]
fn fewer_than_two(e: &String) -> bool {
    e.len() < 2
}

#[retry(max = 5, initial = "1ms", when = fewer_than_two)]
fn with_when(calls: &AtomicU32) -> Result<(), String> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    Err("x".repeat(n as usize))
}

#[test]
fn when_decides_instead_of_on() {
    let calls = AtomicU32::new(0);
    assert_eq!(with_when(&calls), Err("xx".to_string()));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

type Seen = (&'static str, u32, Option<ErrorClass>, Duration);

static EVENTS: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

fn record(event: &RetryEvent<'_, ApiError>) {
    EVENTS
        .lock()
        .unwrap()
        .push((event.function, event.attempt, event.class, event.delay));
}

#[retry(max = 3, backoff = "linear", initial = "2s", on_retry = record)]
async fn observed(calls: &AtomicU32) -> Result<(), ApiError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::of(ErrorClass::Server))
}

#[tokio::test(start_paused = true)]
async fn on_retry_sees_each_retry() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert!(observed(&calls).await.is_err());
    assert_eq!(start.elapsed(), Duration::from_secs(2 + 4));
    let server = Some(ErrorClass::Server);
    assert_eq!(
        *EVENTS.lock().unwrap(),
        [
            ("observed", 1, server, Duration::from_secs(2)),
            ("observed", 2, server, Duration::from_secs(4))
        ]
    );
}

#[retry(max = 3, backoff = "none", max_delay = "30s")]
async fn hinted(calls: &AtomicU32, hint: Duration) -> Result<(), ApiError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(ApiError {
        class: ErrorClass::RateLimit,
        hint: Some(hint),
    })
}

#[tokio::test(start_paused = true)]
async fn server_hints_are_honoured_and_long_ones_refused() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert!(hinted(&calls, Duration::from_secs(7)).await.is_err());
    assert_eq!(
        (calls.load(Ordering::SeqCst), start.elapsed()),
        (3, Duration::from_secs(14))
    );

    let calls = AtomicU32::new(0);
    assert!(hinted(&calls, Duration::from_secs(3600)).await.is_err());
    assert_eq!(
        (calls.load(Ordering::SeqCst), start.elapsed()),
        (1, Duration::from_secs(14))
    );
}

#[retry(max = 3, backoff = "constant", initial = "1s", timeout = "5s")]
async fn hangs(calls: &AtomicU32) -> Result<(), ApiError> {
    calls.fetch_add(1, Ordering::SeqCst);
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn timeout_cuts_each_attempt() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(hangs(&calls).await, Err(ApiError::of(ErrorClass::Timeout)));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(3 * 5 + 2));
}

#[retry(max = 3, backoff = "constant", initial = "1s", deadline = "2500ms")]
async fn bounded(calls: &AtomicU32) -> Result<(), ApiError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::of(ErrorClass::Server))
}

#[tokio::test(start_paused = true)]
async fn deadline_is_never_overslept() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert!(bounded(&calls).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

static NO_RETRIES: RetryBudget = RetryBudget::new(0.0, 0);

#[retry(max = 5, initial = "1s", budget = NO_RETRIES)]
async fn budgeted(calls: &AtomicU32) -> Result<(), ApiError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::of(ErrorClass::Server))
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_stops_retrying() {
    let calls = AtomicU32::new(0);
    assert!(budgeted(&calls).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[derive(Clone, Debug, PartialEq)]
struct Request {
    prompt: String,
}

fn send(request: Request, calls: &AtomicU32) -> Result<String, ApiError> {
    match calls.fetch_add(1, Ordering::SeqCst) {
        0 => Err(ApiError::of(ErrorClass::Connection)),
        _ => Ok(request.prompt),
    }
}

#[retry(initial = "1ms", clone(request))]
fn consumes(request: Request, calls: &AtomicU32) -> Result<String, ApiError> {
    send(request, calls)
}

#[retry(initial = "1ms", clone(request))]
async fn consumes_async(mut request: Request, calls: &AtomicU32) -> Result<String, ApiError> {
    request.prompt.push('!');
    tokio::task::yield_now().await;
    send(request, calls)
}

#[tokio::test]
async fn clone_gives_each_attempt_its_own_copy() {
    let calls = AtomicU32::new(0);
    assert_eq!(
        consumes(
            Request {
                prompt: "hi".into()
            },
            &calls
        ),
        Ok("hi".into())
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let calls = AtomicU32::new(0);
    assert_eq!(
        consumes_async(
            Request {
                prompt: "hi".into()
            },
            &calls
        )
        .await,
        Ok("hi!".into())
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[retry(initial = "1ms")]
fn question_mark_and_return_end_the_attempt(calls: &AtomicU32) -> Result<u32, ApiError> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    if n == 1 {
        Err(ApiError::of(ErrorClass::Timeout))?;
    }
    if n == 2 {
        return Err(ApiError::of(ErrorClass::Server));
    }
    Ok(n)
}

#[test]
fn question_mark_and_return_are_per_attempt() {
    let calls = AtomicU32::new(0);
    assert_eq!(question_mark_and_return_end_the_attempt(&calls), Ok(3));
}

#[retry(max = 3, initial = "1s")]
async fn spawned(calls: std::sync::Arc<AtomicU32>) -> Result<u32, ApiError> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::task::yield_now().await;
    if n < 3 {
        Err(ApiError::of(ErrorClass::Overloaded))
    } else {
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn the_generated_future_is_send() {
    let calls = std::sync::Arc::new(AtomicU32::new(0));
    let task = tokio::spawn(spawned(calls.clone()));
    assert_eq!(task.await.unwrap(), Ok(3));
}

#[cfg(feature = "anyhow")]
#[retry(max = 3, initial = "1ms")]
fn anyhow_classified(calls: &AtomicU32) -> anyhow::Result<()> {
    calls.fetch_add(1, Ordering::SeqCst);
    let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    Err(anyhow::Error::new(reset).context("calling the API"))
}

#[cfg(feature = "anyhow")]
#[test]
fn anyhow_errors_are_classified_by_their_chain() {
    let calls = AtomicU32::new(0);
    assert!(anyhow_classified(&calls).is_err());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "a reset connection inside anyhow is retried"
    );
}

#[retry(max = 3, max_delay = "1000000000h")]
async fn hinted_near_max(calls: &AtomicU32) -> Result<(), ApiError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(ApiError {
        class: ErrorClass::RateLimit,
        hint: Some(Duration::MAX - Duration::from_nanos(1)),
    })
}

#[test]
fn a_hint_near_the_largest_duration_never_overflows() {
    use ai_retry::runtime::{Policy, Retry};
    // The policy's cap at `Duration::MAX`: hint + spread must saturate, not panic.
    let retry =
        Retry::<ApiError>::classified(Policy::new().max_delay(Duration::MAX).max_attempts(2));
    let mut attempts = retry.begin(ai_retry::runtime::Clock::Std);
    let error = ApiError {
        class: ErrorClass::RateLimit,
        hint: Some(Duration::MAX - Duration::from_nanos(1)),
    };
    match retry.step::<()>(&mut attempts, Err(error), None) {
        ai_retry::runtime::Step::Sleep(delay) => {
            assert!(delay >= Duration::MAX - Duration::from_nanos(1))
        }
        ai_retry::runtime::Step::Return(result) => panic!("expected a sleep, got {result:?}"),
    }
    // Through the attribute, a hint past `max_delay` still ends the call at once.
    let calls = AtomicU32::new(0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    assert!(runtime.block_on(hinted_near_max(&calls)).is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

static GAVE_UP: Mutex<Vec<(&'static str, u32, ai_retry::GiveUp)>> = Mutex::new(Vec::new());

fn gave_up(event: &RetryEvent<'_, ApiError>) {
    let reason = event.give_up.expect("on_give_up sees a reason");
    GAVE_UP
        .lock()
        .unwrap()
        .push((event.function, event.attempt, reason));
}

static SPENT: RetryBudget = RetryBudget::new(0.0, 0);

#[retry(max = 2, initial = "1ms", on = Server, on_give_up = gave_up, clone(error))]
async fn stops_for(error: ApiError) -> Result<(), ApiError> {
    Err(error)
}

#[retry(max = 3, initial = "1ms", deadline = "1500ms", backoff = "constant", on_give_up = gave_up)]
async fn stops_at_deadline() -> Result<(), ApiError> {
    Err(ApiError {
        class: ErrorClass::Server,
        hint: Some(Duration::from_secs(1)),
    })
}

#[retry(max = 3, initial = "1ms", budget = SPENT, on_give_up = gave_up)]
async fn stops_for_budget() -> Result<(), ApiError> {
    Err(ApiError::of(ErrorClass::Server))
}

/// Cooled down for an hour by another caller's refusal.
static COOLED: ai_retry::RateLimiter = ai_retry::RateLimiter::new();

#[retry(max = 3, initial = "1ms", max_delay = "10s", limiter = COOLED, on_give_up = gave_up)]
async fn stops_for_limiter(calls: &AtomicU32) -> Result<(), ApiError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn every_give_up_says_why() {
    use ai_retry::GiveUp;
    let hinted = ApiError {
        class: ErrorClass::Server,
        hint: Some(Duration::from_secs(3600)),
    };
    assert!(
        stops_for(ApiError::of(ErrorClass::Permanent))
            .await
            .is_err()
    );
    assert!(stops_for(ApiError::of(ErrorClass::Server)).await.is_err());
    assert!(stops_for(hinted).await.is_err());
    assert!(stops_at_deadline().await.is_err());
    assert!(stops_for_budget().await.is_err());
    let turn = COOLED.turn(Duration::ZERO).await.unwrap();
    COOLED.failed(turn, ErrorClass::RateLimit, Some(Duration::from_secs(3600)));
    let calls = AtomicU32::new(0);
    assert_eq!(
        stops_for_limiter(&calls).await.unwrap_err().class,
        ErrorClass::RateLimit
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no turn, no request");
    assert_eq!(
        *GAVE_UP.lock().unwrap(),
        [
            ("stops_for", 1, GiveUp::NotRetryable),
            ("stops_for", 2, GiveUp::MaxAttempts),
            ("stops_for", 1, GiveUp::HintBeyondMaxDelay),
            ("stops_at_deadline", 2, GiveUp::Deadline),
            ("stops_for_budget", 1, GiveUp::Budget),
            ("stops_for_limiter", 1, GiveUp::Limiter),
        ]
    );
}

fn always(_: &ApiError) -> bool {
    true
}

#[retry(max = 2, backoff = "none", when = always)]
async fn hinted_under_when(calls: &AtomicU32) -> Result<(), ApiError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(ApiError {
        class: ErrorClass::RateLimit,
        hint: Some(Duration::from_secs(3)),
    })
}

#[retry(max = 2, backoff = "none", on = any)]
async fn hinted_under_any(calls: &AtomicU32) -> Result<(), ApiError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(ApiError {
        class: ErrorClass::RateLimit,
        hint: Some(Duration::from_secs(3)),
    })
}

#[retry(max = 2, backoff = "none", on = any)]
async fn unclassified(calls: &AtomicU32) -> Result<(), String> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err("no Classify here".into())
}

#[tokio::test(start_paused = true)]
async fn hints_are_honoured_under_when_and_any() {
    for under_any in [false, true] {
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        let result = match under_any {
            false => hinted_under_when(&calls).await,
            true => hinted_under_any(&calls).await,
        };
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Never before the server's 3 s (the spread of `none` backoff is zero).
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }
    // An error type without `Classify` still works: no hint to read.
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert!(unclassified(&calls).await.is_err());
    assert_eq!(
        (calls.load(Ordering::SeqCst), start.elapsed()),
        (2, Duration::ZERO)
    );
}

static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

fn record_name(event: &RetryEvent<'_, ApiError>) {
    NAMES.lock().unwrap().push(event.function);
}

#[retry(max = 2, initial = "1ms", on_retry = record_name)]
async fn r#match() -> Result<(), ApiError> {
    Err(ApiError::of(ErrorClass::Server))
}

#[tokio::test(start_paused = true)]
async fn raw_identifiers_are_named_without_their_prefix() {
    assert!(r#match().await.is_err());
    assert_eq!(*NAMES.lock().unwrap(), ["match"]);
}
