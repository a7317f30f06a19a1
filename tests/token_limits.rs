//! Token limits on tokio's paused clock: a call pays what it costs, in
//! arrival order; a response's `remaining` re-anchors the bucket; a refused
//! call's tokens come back; `remaining: 0` of a known limit waits for the
//! cost, never for the bucket to be full; and answers that take seconds keep
//! the key busy at its limit.

use ai_retry::http::{HeaderMap, HeaderName, HeaderValue};
use ai_retry::{Cost, ErrorClass, Limits, RateLimiter};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

fn leaked(limiter: RateLimiter) -> &'static RateLimiter {
    Box::leak(Box::new(limiter))
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

/// Takes a turn for `tokens` and answers it; the turn came about `after`
/// `start`.
async fn pays_after(limiter: &RateLimiter, tokens: u32, start: Instant, after: Duration) {
    let turn = limiter
        .turn_costing(MINUTE, Cost::tokens(tokens))
        .await
        .unwrap();
    assert!(
        about(start.elapsed(), after),
        "{:?} for {tokens}, not {after:?}",
        start.elapsed()
    );
    limiter.succeeded(turn);
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Within a millisecond of `expected`.
fn about(actual: Duration, expected: Duration) -> bool {
    actual.abs_diff(expected) <= ms(1)
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn a_large_call_waits_its_turn_and_is_not_overtaken() {
    // 6,000 tokens a minute: paced at 95 a second, a second's worth to start from.
    let limiter = leaked(RateLimiter::with_limits(Limits::NONE.tokens(6_000)));
    let start = Instant::now();
    let log = Arc::new(Mutex::new(Vec::new()));
    let large = {
        let log = log.clone();
        tokio::spawn(async move {
            let turn = limiter
                .turn_costing(MINUTE, Cost::tokens(950))
                .await
                .unwrap();
            log.lock().unwrap().push(("large", start.elapsed()));
            limiter.succeeded(turn);
        })
    };
    tokio::time::sleep(ms(10)).await;
    // Small calls arriving after it would fit at once, but go after it.
    let mut small = Vec::new();
    for _ in 0..3 {
        let log = log.clone();
        small.push(tokio::spawn(async move {
            let turn = limiter
                .turn_costing(MINUTE, Cost::tokens(10))
                .await
                .unwrap();
            log.lock().unwrap().push(("small", start.elapsed()));
            limiter.succeeded(turn);
        }));
    }
    large.await.unwrap();
    for call in small {
        call.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log[0].0, "large", "{log:?}");
    // 950 tokens with 95 in the bucket: 855 more at 95 a second.
    assert!(about(log[0].1, Duration::from_secs(9)), "{log:?}");
    // Then each small call's 10 tokens, in order.
    for (i, (what, at)) in log[1..].iter().enumerate() {
        assert_eq!(*what, "small");
        let due = Duration::from_secs(9) + Duration::from_secs_f64(10.0 * (i + 1) as f64 / 95.0);
        assert!(about(*at, due), "{log:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_response_s_remaining_re_anchors_the_bucket() {
    let limiter = leaked(RateLimiter::with_limits(Limits::NONE.tokens(60_000)));
    let start = Instant::now();
    // The server says 5,000 are left: more than the second's worth the
    // limiter started from.
    let sent = RateLimiter::now();
    limiter.observe_at(
        &headers(&[
            ("x-ratelimit-limit-tokens", "60000".into()),
            ("x-ratelimit-remaining-tokens", "5000".into()),
        ]),
        sent,
    );
    let turn = limiter
        .turn_costing(MINUTE, Cost::tokens(5_000))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "5,000 were left");
    limiter.succeeded(turn);
    // Then the bucket is empty: 950 tokens refill in a second (60,000 a
    // minute paced at 950 a second).
    pays_after(limiter, 950, start, Duration::from_secs(1)).await;
    // A later response says less is left than the limiter thinks: it waits for it.
    let sent = RateLimiter::now();
    limiter.observe_at(
        &headers(&[
            ("x-ratelimit-limit-tokens", "60000".into()),
            ("x-ratelimit-remaining-tokens", "0".into()),
        ]),
        sent,
    );
    let before = Instant::now();
    let turn = limiter
        .turn_costing(MINUTE, Cost::tokens(475))
        .await
        .unwrap();
    assert!(about(before.elapsed(), ms(500)), "{:?}", before.elapsed());
    limiter.succeeded(turn);
}

#[tokio::test(start_paused = true)]
async fn a_refused_call_gives_its_tokens_back() {
    let limiter = leaked(RateLimiter::with_limits(Limits::NONE.tokens(6_000)));
    let start = Instant::now();
    let cost = Cost::tokens(95);
    let turn = limiter.turn_costing(MINUTE, cost).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    // Refused, no hint: its 95 tokens were never spent.
    limiter.failed_costing(turn, cost, ErrorClass::RateLimit, None);
    let turn = limiter.turn_costing(MINUTE, cost).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "the refund paid for it");
    limiter.succeeded(turn);
    // A success keeps what it spent: the next 95 refill in a second.
    let turn = limiter.turn_costing(MINUTE, cost).await.unwrap();
    assert!(
        about(start.elapsed(), Duration::from_secs(1)),
        "{:?}",
        start.elapsed()
    );
    limiter.succeeded(turn);
}

#[tokio::test(start_paused = true)]
async fn remaining_zero_of_a_known_token_limit_waits_for_the_cost_not_for_the_reset() {
    let limiter = leaked(RateLimiter::new());
    limiter.observe(&headers(&[
        ("x-ratelimit-limit-tokens", "60000".into()),
        ("x-ratelimit-remaining-tokens", "0".into()),
        // `reset` is when the bucket is full again, a minute away.
        ("x-ratelimit-reset-tokens", "1m0s".into()),
    ]));
    assert_eq!(limiter.snapshot().cool_down, Duration::ZERO);
    assert_eq!(limiter.snapshot().tokens_per_minute, Some(60_000));
    let start = Instant::now();
    pays_after(limiter, 950, start, Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn anthropic_s_rounded_remainders_wait_for_the_cost_not_for_the_reset() {
    let limiter = leaked(RateLimiter::new());
    let full_again = rfc3339_in(Duration::from_secs(60));
    // Anthropic rounds remaining down to thousands: `0` is anything under 1,000.
    limiter.observe(&headers(&[
        ("anthropic-ratelimit-output-tokens-limit", "300000".into()),
        ("anthropic-ratelimit-output-tokens-remaining", "0".into()),
        ("anthropic-ratelimit-output-tokens-reset", full_again),
        ("anthropic-ratelimit-input-tokens-limit", "600000".into()),
        (
            "anthropic-ratelimit-input-tokens-remaining",
            "598000".into(),
        ),
    ]));
    assert_eq!(limiter.snapshot().cool_down, Duration::ZERO);
    assert_eq!(limiter.snapshot().output_tokens_per_minute, Some(300_000));
    let start = Instant::now();
    // max_tokens 1,024 of output at 4,750 a second (300,000 a minute, paced).
    let turn = limiter
        .turn_costing(MINUTE, Cost::split(400, 1_024))
        .await
        .unwrap();
    let expected = Duration::from_secs_f64(1_024.0 / 4_750.0);
    assert!(about(start.elapsed(), expected), "{:?}", start.elapsed());
    limiter.succeeded(turn);
}

/// An RFC 3339 instant `after` from now, as Anthropic writes its resets.
fn rfc3339_in(after: Duration) -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now() + after).to_string()
}

/// A key on the paused clock, as a real server keeps it: buckets that refill
/// continuously, the same answer to everyone, refusals at once and answers
/// after `latency`, the OpenAI headers on both.
struct Key {
    start: Instant,
    latency: Duration,
    /// Requests a second and the bucket's size, if requests are limited.
    requests: Option<(f64, f64)>,
    /// Tokens a minute, enforced per second, if tokens are limited.
    tokens: Option<u64>,
    state: Mutex<KeyState>,
}

#[derive(Default)]
struct KeyState {
    /// Each bucket's level as of `at`.
    requests: f64,
    tokens: f64,
    at: Option<Instant>,
    sent: usize,
    refused: usize,
}

enum Answer {
    Ok(HeaderMap),
    Refused(HeaderMap, Duration),
}

impl Key {
    fn new(latency: Duration, requests: Option<(f64, f64)>, tokens: Option<u64>) -> Arc<Key> {
        Arc::new(Key {
            start: Instant::now(),
            latency,
            requests,
            tokens,
            state: Mutex::new(KeyState::default()),
        })
    }

    /// Admits or refuses a request costing `tokens`, now.
    fn admit(&self, tokens: u32) -> Answer {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        let elapsed = state
            .at
            .map_or(f64::INFINITY, |at| (now - at).as_secs_f64());
        state.at = Some(now);
        state.sent += 1;
        let mut headers = Vec::new();
        let mut wait = Duration::ZERO;
        if let Some((rate, burst)) = self.requests {
            state.requests = (state.requests + elapsed * rate).min(burst);
            if state.requests < 1.0 {
                wait = wait.max(Duration::from_secs_f64((1.0 - state.requests) / rate));
            }
        }
        if let Some(per_minute) = self.tokens {
            let rate = per_minute as f64 / 60.0;
            state.tokens = (state.tokens + elapsed * rate).min(rate);
            let cost = f64::from(tokens);
            if state.tokens < cost {
                wait = wait.max(Duration::from_secs_f64((cost - state.tokens) / rate));
            }
        }
        let refused = !wait.is_zero();
        if !refused {
            state.requests -= 1.0;
            state.tokens -= f64::from(tokens);
        }
        if let Some((rate, _)) = self.requests {
            headers.push((
                "x-ratelimit-limit-requests",
                ((rate * 60.0) as u64).to_string(),
            ));
            headers.push((
                "x-ratelimit-remaining-requests",
                (state.requests.max(0.0) as u64).to_string(),
            ));
        }
        if let Some(per_minute) = self.tokens {
            headers.push(("x-ratelimit-limit-tokens", per_minute.to_string()));
            headers.push((
                "x-ratelimit-remaining-tokens",
                (state.tokens.max(0.0) as u64).to_string(),
            ));
        }
        let headers = self::headers(&headers);
        match refused {
            true => {
                state.refused += 1;
                Answer::Refused(headers, wait)
            }
            false => Answer::Ok(headers),
        }
    }

    /// One call costing `tokens` through `limiter`, retried after each
    /// refusal's hint; when it succeeded.
    async fn call(&self, limiter: &'static RateLimiter, tokens: u32) -> Duration {
        let cost = Cost::tokens(tokens);
        loop {
            let turn = limiter
                .turn_costing(Duration::from_secs(120), cost)
                .await
                .unwrap();
            let sent = RateLimiter::now();
            match self.admit(tokens) {
                Answer::Ok(headers) => {
                    tokio::time::sleep(self.latency).await;
                    limiter.observe_at(&headers, sent);
                    limiter.succeeded(turn);
                    return self.start.elapsed();
                }
                Answer::Refused(headers, wait) => {
                    limiter.observe_at(&headers, sent);
                    limiter.failed_costing(turn, cost, ErrorClass::RateLimit, Some(wait));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// (requests per success, completion) of `calls` calls, arriving
    /// `per_second` (all at once when `None`), call i costing `tokens(i)`.
    async fn storm(
        self: &Arc<Key>,
        calls: usize,
        per_second: Option<f64>,
        tokens: fn(usize) -> u32,
    ) -> (f64, Duration) {
        let limiter = leaked(RateLimiter::new());
        let mut tasks = Vec::new();
        for i in 0..calls {
            if let Some(per_second) = per_second {
                tokio::time::sleep_until(
                    self.start + Duration::from_secs_f64(i as f64 / per_second),
                )
                .await;
            }
            let key = self.clone();
            tasks.push(tokio::spawn(
                async move { key.call(limiter, tokens(i)).await },
            ));
        }
        let mut last = Duration::ZERO;
        for task in tasks {
            last = last.max(task.await.unwrap());
        }
        let state = self.state.lock().unwrap();
        (state.sent as f64 / calls as f64, last)
    }
}

/// 200 to 2,000 tokens, spread by the call's number alone.
fn prompt_tokens(i: usize) -> u32 {
    200 + (i as u32).wrapping_mul(7919) % 1801
}

#[tokio::test(start_paused = true)]
async fn answers_that_take_seconds_keep_a_request_limit_busy() {
    // 20 requests a second, burst 1; answers take 2 s, refusals come at once.
    let key = Key::new(Duration::from_secs(2), Some((20.0, 1.0)), None);
    let (per_success, completion) = key.storm(200, Some(30.0), |_| 0).await;
    // The ideal: 200 at 20 a second, then the last answer's 2 s.
    let ideal = 200.0 / 20.0 + 2.0;
    assert!(per_success <= 1.10, "{per_success} requests per success");
    assert!(
        completion.as_secs_f64() <= ideal * 1.15,
        "{completion:?} against an ideal of {ideal} s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refusal_before_the_first_answer_does_not_sink_the_rate() {
    // 100 callers at once, nothing known: the first contact is answered only
    // after 2 s, but a refusal comes back at once with the limit, and the
    // rate it lowers must not fall toward the floor before the answers come.
    let key = Key::new(Duration::from_secs(2), Some((20.0, 1.0)), None);
    let (per_success, completion) = key.storm(100, None, |_| 0).await;
    let ideal = 100.0 / 20.0 + 2.0;
    assert!(per_success <= 1.10, "{per_success} requests per success");
    assert!(
        completion.as_secs_f64() <= ideal * 1.15,
        "{completion:?} against an ideal of {ideal} s"
    );
}

#[tokio::test(start_paused = true)]
async fn answers_that_take_seconds_keep_a_token_limit_busy() {
    // 600,000 tokens a minute enforced per second, 100 callers at once,
    // answers in 3 s.
    let key = Key::new(Duration::from_secs(3), None, Some(600_000));
    let (per_success, completion) = key.storm(100, None, prompt_tokens).await;
    let spent: u32 = (0..100).map(prompt_tokens).sum();
    // The ideal: what is spent beyond the first second's bucket, at the
    // limit, then the last answer's 3 s.
    let ideal = (f64::from(spent) - 10_000.0) / 10_000.0 + 3.0;
    assert!(per_success <= 1.05, "{per_success} requests per success");
    assert!(
        completion.as_secs_f64() <= ideal * 1.15,
        "{completion:?} against an ideal of {ideal} s"
    );
}
