//! `#[retry(limiter = …)]` on tokio's paused clock: one refusal holds back every
//! caller, a known limit spaces them in arrival order, waits are bounded like
//! sleeps and use no attempt, and dropping a waiter leaves the queue.

use ai_retry::http::{HeaderMap, HeaderValue};
use ai_retry::{Classify, ErrorClass, RateLimiter, Throttled, retry};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    /// A 429, with the server's hint.
    Refused(Option<Duration>),
    /// No turn from the limiter in time: no request was sent.
    Throttled(Duration),
    /// Cut off by the deadline.
    TimedOut,
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        ErrorClass::RateLimit
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Refused(hint) => *hint,
            ApiError::Throttled(_) | ApiError::TimedOut => None,
        }
    }
}

impl From<ai_retry::TimedOut> for ApiError {
    fn from(_: ai_retry::TimedOut) -> ApiError {
        ApiError::TimedOut
    }
}

impl From<Throttled> for ApiError {
    fn from(throttled: Throttled) -> ApiError {
        ApiError::Throttled(throttled.wait())
    }
}

/// A scripted server: each request takes the next answer (`Some(hint)` refuses,
/// `None` answers); every request is logged with its caller and time.
struct Server {
    start: Instant,
    script: Mutex<VecDeque<Option<Duration>>>,
    log: Mutex<Vec<(u32, Duration)>>,
}

impl Server {
    fn new(script: impl IntoIterator<Item = Option<Duration>>) -> Arc<Server> {
        Arc::new(Server {
            start: Instant::now(),
            script: Mutex::new(script.into_iter().collect()),
            log: Mutex::new(Vec::new()),
        })
    }

    fn request(&self, caller: u32) -> Result<u32, ApiError> {
        self.log
            .lock()
            .unwrap()
            .push((caller, self.start.elapsed()));
        match self.script.lock().unwrap().pop_front().flatten() {
            Some(hint) => Err(ApiError::Refused(Some(hint))),
            None => Ok(caller),
        }
    }

    fn log(&self) -> Vec<(u32, Duration)> {
        self.log.lock().unwrap().clone()
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

static SHARED: RateLimiter = RateLimiter::new();

#[retry(max = 3, initial = "10ms", limiter = SHARED)]
async fn shared(server: &Server, caller: u32) -> Result<u32, ApiError> {
    server.request(caller)
}

#[tokio::test(start_paused = true)]
async fn one_refusal_holds_back_every_caller() {
    let server = Server::new([Some(secs(2.0))]);
    let first = tokio::spawn({
        let server = server.clone();
        async move { shared(&server, 0).await }
    });
    tokio::time::sleep(secs(0.1)).await;
    // Callers arriving after the refusal wait out the same cool-down.
    let others: Vec<_> = (1..=3)
        .map(|caller| {
            let server = server.clone();
            tokio::spawn(async move { shared(&server, caller).await })
        })
        .collect();
    assert_eq!(first.await.unwrap(), Ok(0));
    for other in others {
        assert!(other.await.unwrap().is_ok());
    }
    let log = server.log();
    assert_eq!(log.len(), 5, "one refusal, then one request each: {log:?}");
    for &(caller, at) in &log[1..] {
        assert!(at >= secs(2.0), "caller {caller} went at {at:?}");
    }
    // Refused before anything was admitted: nothing to scale, so a probing
    // pace of one request per hint — those released go out spread, climbing.
    assert_eq!(SHARED.snapshot().throttles, 1);
    let gaps: Vec<Duration> = log[1..].windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps.iter().all(|gap| *gap > Duration::ZERO), "{log:?}");
}

static KNOWN: RateLimiter = RateLimiter::per_minute(600);

#[retry(limiter = KNOWN)]
async fn known(server: &Server, caller: u32) -> Result<u32, ApiError> {
    server.request(caller)
}

#[tokio::test(start_paused = true)]
async fn a_known_limit_spaces_callers_in_arrival_order() {
    let server = Server::new([]);
    let calls: Vec<_> = (0..6)
        .map(|caller| {
            let server = server.clone();
            tokio::spawn(async move { known(&server, caller).await })
        })
        .collect();
    for call in calls {
        assert!(call.await.unwrap().is_ok());
    }
    let log = server.log();
    let callers: Vec<u32> = log.iter().map(|&(c, _)| c).collect();
    assert_eq!(callers, [0, 1, 2, 3, 4, 5], "turns in arrival order");
    // 600 a minute, paced a margin below: 9.5 a second.
    let interval = secs(1.0 / 9.5);
    for pair in log.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!(
            gap >= interval - Duration::from_millis(1)
                && gap <= interval + Duration::from_millis(2),
            "{gap:?}"
        );
    }
}

static DEADLINED: RateLimiter = RateLimiter::new();

#[retry(deadline = "5s", limiter = DEADLINED)]
async fn deadlined(server: &Server) -> Result<u32, ApiError> {
    server.request(0)
}

#[tokio::test(start_paused = true)]
async fn a_cool_down_beyond_the_deadline_returns_throttled_with_no_request() {
    let turn = DEADLINED.turn(Duration::ZERO).await.unwrap();
    DEADLINED.failed(turn, ErrorClass::RateLimit, Some(secs(30.0)));
    let server = Server::new([]);
    let started = Instant::now();
    let result = deadlined(&server).await;
    match result {
        Err(ApiError::Throttled(wait)) => assert!(wait > secs(29.0), "{wait:?}"),
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "returned at once");
    assert!(server.log().is_empty(), "no request was sent");
}

static BEYOND_MAX_DELAY: RateLimiter = RateLimiter::new();

#[retry(max = 3, initial = "10ms", max_delay = "10s", limiter = BEYOND_MAX_DELAY)]
async fn beyond_max_delay(server: &Server) -> Result<u32, ApiError> {
    server.request(0)
}

#[tokio::test(start_paused = true)]
async fn no_turn_in_time_returns_the_last_real_error() {
    let server = Server::new([Some(secs(0.5))]);
    let call = tokio::spawn({
        let server = server.clone();
        async move { beyond_max_delay(&server).await }
    });
    tokio::time::sleep(secs(0.1)).await;
    // Meanwhile another caller of the key is told to wait far longer than max_delay.
    let turn = BEYOND_MAX_DELAY
        .turn(Duration::ZERO)
        .await
        .unwrap_or_default();
    BEYOND_MAX_DELAY.failed(turn, ErrorClass::RateLimit, Some(secs(100.0)));
    assert_eq!(
        call.await.unwrap(),
        Err(ApiError::Refused(Some(secs(0.5)))),
        "the attempt's own error, not Throttled"
    );
    assert_eq!(server.log().len(), 1);
}

static OBSERVED: RateLimiter = RateLimiter::new();

#[retry(limiter = OBSERVED)]
async fn observed(server: &Server) -> Result<u32, ApiError> {
    server.request(0)
}

#[tokio::test(start_paused = true)]
async fn observe_remaining_zero_with_no_limit_known_starts_a_cool_down() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-ratelimit-remaining-requests",
        HeaderValue::from_static("0"),
    );
    headers.insert("x-ratelimit-reset-requests", HeaderValue::from_static("3s"));
    OBSERVED.observe(&headers);
    let server = Server::new([]);
    assert_eq!(observed(&server).await, Ok(0));
    let log = server.log();
    assert!(log[0].1 >= secs(3.0), "{log:?}");
}

static OBSERVED_KNOWN: RateLimiter = RateLimiter::new();

#[retry(limiter = OBSERVED_KNOWN)]
async fn observed_known(server: &Server) -> Result<u32, ApiError> {
    server.request(0)
}

#[tokio::test(start_paused = true)]
async fn observe_remaining_zero_of_a_known_limit_waits_for_one_request_not_for_the_reset() {
    // `reset` is when the bucket is full again; the next call needs one request.
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-ratelimit-limit-requests",
        HeaderValue::from_static("600"),
    );
    headers.insert(
        "x-ratelimit-remaining-requests",
        HeaderValue::from_static("0"),
    );
    headers.insert(
        "x-ratelimit-reset-requests",
        HeaderValue::from_static("60s"),
    );
    OBSERVED_KNOWN.observe(&headers);
    assert_eq!(OBSERVED_KNOWN.snapshot().cool_down, Duration::ZERO);
    let server = Server::new([]);
    assert_eq!(observed_known(&server).await, Ok(0));
    let log = server.log();
    // 600 a minute paced at 9.5 a second: one request refills in ~105 ms.
    let interval = secs(1.0 / 9.5);
    assert!(log[0].1 >= interval - Duration::from_millis(1), "{log:?}");
    assert!(log[0].1 <= interval + Duration::from_millis(1), "{log:?}");
    assert_eq!(OBSERVED_KNOWN.snapshot().limit_per_minute, Some(600));
}

static ONE_ATTEMPT: RateLimiter = RateLimiter::new();

#[retry(max = 1, limiter = ONE_ATTEMPT)]
async fn one_attempt(server: &Server) -> Result<u32, ApiError> {
    server.request(0)
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_turn_uses_no_attempt() {
    let turn = ONE_ATTEMPT.turn(Duration::ZERO).await.unwrap();
    ONE_ATTEMPT.failed(turn, ErrorClass::Overloaded, Some(secs(1.0)));
    let server = Server::new([]);
    assert_eq!(
        one_attempt(&server).await,
        Ok(0),
        "max = 1 still gets its attempt"
    );
    assert!(server.log()[0].1 >= secs(1.0));
}

static DROPPED: RateLimiter = RateLimiter::new();

#[retry(limiter = DROPPED)]
async fn dropped(server: &Server) -> Result<u32, ApiError> {
    server.request(0)
}

#[tokio::test(start_paused = true)]
async fn dropping_a_waiting_call_stops_its_wait() {
    let turn = DROPPED.turn(Duration::ZERO).await.unwrap();
    DROPPED.failed(turn, ErrorClass::RateLimit, Some(secs(2.0)));
    let server = Server::new([]);
    let waited = tokio::time::timeout(secs(1.0), dropped(&server)).await;
    assert!(waited.is_err(), "still waiting at 1 s");
    assert_eq!(
        DROPPED.snapshot().waiting,
        0,
        "the dropped call left the queue"
    );
    tokio::time::sleep(secs(5.0)).await;
    assert!(server.log().is_empty(), "and never sent its request");
}

static KEY_A: RateLimiter = RateLimiter::new();
static KEY_B: RateLimiter = RateLimiter::new();

#[retry(limiter = KEY_B)]
async fn key_b(server: &Server) -> Result<u32, ApiError> {
    server.request(0)
}

#[tokio::test(start_paused = true)]
async fn two_limiters_are_independent() {
    let turn = KEY_A.turn(Duration::ZERO).await.unwrap();
    KEY_A.failed(turn, ErrorClass::RateLimit, Some(secs(10.0)));
    let server = Server::new([]);
    let started = Instant::now();
    assert_eq!(key_b(&server).await, Ok(0));
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(KEY_A.snapshot().cool_down > secs(9.0));
    assert_eq!(KEY_B.snapshot().cool_down, Duration::ZERO);
}

/// A client that owns its limiter, as a per-key client would.
struct Client {
    limiter: RateLimiter,
    server: Arc<Server>,
}

impl Client {
    #[retry(max = 2, initial = "10ms", limiter = self.limiter)]
    async fn call(&mut self) -> Result<u32, ApiError> {
        self.server.request(7)
    }
}

#[tokio::test(start_paused = true)]
async fn a_limiter_may_be_a_field_even_with_mut_self() {
    let mut client = Client {
        limiter: RateLimiter::new(),
        server: Server::new([Some(secs(1.0))]),
    };
    assert_eq!(client.call().await, Ok(7));
    assert!(client.server.log()[1].1 >= secs(1.0));
    assert_eq!(client.limiter.snapshot().waiting, 0);
}

static BLOCKING: RateLimiter = RateLimiter::per_minute(3000);

#[retry(limiter = BLOCKING)]
fn blocking(log: &Mutex<Vec<std::time::Instant>>) -> Result<(), ApiError> {
    log.lock().unwrap().push(std::time::Instant::now());
    Ok(())
}

#[test]
fn blocking_callers_take_turns_from_the_same_limiter() {
    // 3000 a minute paced at 47.5 a second: turns about 21 ms apart. A thread
    // may start late after its turn, never early: the k-th request comes no
    // sooner than k intervals after the first turn could be given.
    let log = Mutex::new(Vec::new());
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| blocking(&log).unwrap());
        }
    });
    let mut times = log.into_inner().unwrap();
    times.sort();
    let interval = secs(1.0 / 47.5);
    for (k, at) in times.iter().enumerate() {
        let since = *at - started;
        assert!(since >= interval * k as u32, "request {k} at {since:?}");
    }
}

static BLOCKING_COOLED: RateLimiter = RateLimiter::new();

#[retry(max_delay = "1s", limiter = BLOCKING_COOLED)]
fn blocking_cooled() -> Result<(), ApiError> {
    unreachable!("no request while the cool-down outlasts max_delay")
}

#[test]
fn a_blocking_call_past_its_bound_returns_at_once() {
    let turn = BLOCKING_COOLED.turn_blocking(Duration::ZERO).unwrap();
    BLOCKING_COOLED.failed(turn, ErrorClass::RateLimit, Some(secs(60.0)));
    let started = std::time::Instant::now();
    assert!(matches!(blocking_cooled(), Err(ApiError::Throttled(_))));
    assert!(started.elapsed() < secs(0.5));
}

static DAY: RateLimiter = RateLimiter::new();

#[retry(max = 3, initial = "10ms", limiter = DAY)]
async fn day_long(server: &Server, caller: u32) -> Result<u32, ApiError> {
    server.request(caller)
}

#[tokio::test(start_paused = true)]
async fn a_day_long_hint_closes_the_key_a_minute_then_one_probe_reopens_it() {
    let day = secs(86_400.0);
    let server = Server::new([Some(day)]);
    let start = Instant::now();
    // The refused call ends at once: the hint is above max_delay (60 s).
    assert_eq!(
        day_long(&server, 0).await,
        Err(ApiError::Refused(Some(day)))
    );
    let snapshot = DAY.snapshot();
    assert!(snapshot.probing);
    assert_eq!(snapshot.cool_down, secs(60.0), "a minute, not a day");
    // Within the minute: the first caller that can wait takes the probe's
    // slot; the next, whose turn is a minute later still, is told at once.
    tokio::time::sleep(secs(1.0)).await;
    let probe = tokio::spawn({
        let server = server.clone();
        async move { day_long(&server, 1).await }
    });
    tokio::time::sleep(secs(1.0)).await;
    let asked = Instant::now();
    match day_long(&server, 2).await {
        Err(ApiError::Throttled(wait)) => assert!(wait > secs(100.0), "{wait:?}"),
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert_eq!(asked.elapsed(), Duration::ZERO);
    // The probe goes at the minute and succeeds: the key is open for everyone.
    assert_eq!(probe.await.unwrap(), Ok(1));
    assert!(!DAY.snapshot().probing);
    let after: Vec<_> = (3..6)
        .map(|caller| {
            let server = server.clone();
            tokio::spawn(async move { day_long(&server, caller).await })
        })
        .collect();
    for call in after {
        assert!(call.await.unwrap().is_ok());
    }
    let log: Vec<(u32, Duration)> = server.log();
    let callers: Vec<u32> = log.iter().map(|&(c, _)| c).collect();
    assert_eq!(callers, [0, 1, 3, 4, 5], "caller 2 sent nothing: {log:?}");
    assert_eq!(log[1].1, secs(60.0), "the probe went at the minute");
    for &(_, at) in &log[2..] {
        assert_eq!(at, secs(60.0), "open at once after the probe: {log:?}");
    }
    assert!(start.elapsed() < secs(61.0));
}

static CLEARED: RateLimiter = RateLimiter::per_minute(600);

#[retry(max = 2, initial = "10ms", max_delay = "10s", limiter = CLEARED)]
async fn cleared(server: &Server, caller: u32) -> Result<u32, ApiError> {
    server.request(caller)
}

#[tokio::test(start_paused = true)]
async fn reset_reopens_a_key_closed_by_a_hint() {
    let server = Server::new([Some(secs(3600.0))]);
    assert!(cleared(&server, 0).await.is_err());
    assert!(matches!(
        cleared(&server, 1).await,
        Err(ApiError::Throttled(_))
    ));
    CLEARED.reset();
    let snapshot = CLEARED.snapshot();
    assert_eq!(snapshot.cool_down, Duration::ZERO);
    assert!(!snapshot.probing);
    assert_eq!(
        snapshot.limit_per_minute,
        Some(600),
        "the construction's limit stays"
    );
    assert_eq!(cleared(&server, 2).await, Ok(2));
    assert_eq!(server.log().len(), 2, "caller 1 sent nothing");
}

static AT_DEADLINE: RateLimiter = RateLimiter::new();

#[retry(max = 3, initial = "10ms", deadline = "5s", limiter = AT_DEADLINE)]
async fn at_deadline(server: &Server) -> Result<u32, ApiError> {
    server.request(0)
}

#[tokio::test(start_paused = true)]
async fn a_turn_that_comes_at_the_deadline_sends_nothing() {
    // The cool-down ends exactly when the call's deadline does: the turn
    // would come, but the attempt would be cut before it could be answered.
    let turn = AT_DEADLINE.turn(Duration::ZERO).await.unwrap();
    AT_DEADLINE.failed(turn, ErrorClass::RateLimit, Some(secs(5.0)));
    let server = Server::new([]);
    let started = Instant::now();
    let result = at_deadline(&server).await;
    assert!(matches!(result, Err(ApiError::Throttled(_))), "{result:?}");
    assert!(server.log().is_empty(), "nothing was sent");
    assert!(started.elapsed() <= secs(5.0));
}

static WAITED: RateLimiter = RateLimiter::new();

#[retry(deadline = "3s", limiter = WAITED)]
async fn hangs_after_its_turn() -> Result<u32, ApiError> {
    std::future::pending::<()>().await;
    Ok(0)
}

#[tokio::test(start_paused = true)]
async fn a_wait_for_the_first_turn_counts_toward_the_deadline() {
    // A 2 s cool-down, then an attempt that never answers: the deadline
    // counts from the call, so the attempt is cut 1 s after its turn — not
    // 3 s after it, as a clock started at the first wait would allow.
    let turn = WAITED.turn(Duration::ZERO).await.unwrap();
    WAITED.failed(turn, ErrorClass::RateLimit, Some(secs(2.0)));
    let started = Instant::now();
    assert_eq!(hangs_after_its_turn().await, Err(ApiError::TimedOut));
    assert_eq!(started.elapsed(), secs(3.0));
}
