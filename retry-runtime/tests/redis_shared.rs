//! `RateLimiter::share_redis` against a real `redis-server`: two limiters on
//! one key behave like one (two processes of a fleet), and Redis failing — down
//! at start, killed, restarted empty, paused — never fails a call or holds it
//! past the bound.

#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/turns.rs"]
mod turns;

use std::time::{Duration, Instant};

use redis_server::RedisServer;
use retry_runtime::http::{HeaderMap, HeaderValue};
use retry_runtime::{ErrorClass, RateLimiter, Store};

/// The bound on a Redis call, plus scheduling slack on a loaded 2-core machine.
const BOUND_AND_SLACK: Duration = Duration::from_millis(400);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn shared(server: &RedisServer, key: &str) -> RateLimiter {
    let limiter = RateLimiter::new();
    limiter
        .share_redis(&server.url(), key)
        .await
        .expect("a valid url");
    limiter
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refusal_holds_back_the_other_process() {
    let server = RedisServer::start();
    let (a, b) = (shared(&server, "cool").await, shared(&server, "cool").await);
    assert_eq!(a.snapshot().store, Store::Shared);
    let turn = a.turn(ms(1000)).await.unwrap();
    a.failed(turn, ErrorClass::RateLimit, Some(ms(400)));
    // The report is sent in the background: let it land.
    tokio::time::sleep(ms(50)).await;
    let asked = Instant::now();
    b.turn(ms(5000)).await.unwrap();
    let waited = asked.elapsed();
    assert!(waited >= ms(300), "b went after {waited:?}");
    assert!(waited < ms(1000), "b went after {waited:?}");
    // The other key is not held back.
    let c = shared(&server, "other").await;
    let asked = Instant::now();
    c.turn(ms(5000)).await.unwrap();
    assert!(asked.elapsed() < ms(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_seen_by_one_process_paces_the_fleet_in_arrival_order() {
    let server = RedisServer::start();
    let (a, b) = (shared(&server, "pace").await, shared(&server, "pace").await);
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-ratelimit-limit-requests",
        HeaderValue::from_static("600"),
    );
    a.observe(&headers);
    tokio::time::sleep(ms(50)).await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let times = turns::alternate_turns(&a, &b, 6).await;
    // 600 a minute paced at 9.5 a second: ~105 ms apart, in arrival order,
    // whichever process each caller is in.
    for (i, pair) in times.windows(2).enumerate() {
        assert!(
            pair[1] > pair[0],
            "caller {} before caller {i}: {times:?}",
            i + 1
        );
        let gap = pair[1] - pair[0];
        assert!(gap >= ms(80), "{times:?}");
    }
    assert!(times[5] >= ms(450), "{times:?}");
    // One key, with an expiry: nothing piles up.
    let keys = server.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let ttl = server.pttl(&keys[0]);
    assert!(ttl > 0 && ttl <= 600_000 + 1_000, "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_is_a_degraded_start_not_an_error() {
    let port = RedisServer::unused_port();
    let limiter = RateLimiter::new();
    let url = format!("redis://127.0.0.1:{port}/");
    let started = Instant::now();
    limiter
        .share_redis(&url, "down")
        .await
        .expect("only a bad url is an error");
    assert!(started.elapsed() < BOUND_AND_SLACK);
    assert_eq!(limiter.snapshot().store, Store::Degraded);
    for _ in 0..5 {
        let asked = Instant::now();
        limiter.turn(ms(1000)).await.unwrap();
        assert!(asked.elapsed() < BOUND_AND_SLACK, "{:?}", asked.elapsed());
    }
    assert!(limiter.share_redis("not a url", "x").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_then_restarted_empty_the_fleet_falls_back_and_comes_back() {
    let mut server = RedisServer::start();
    let limiter = shared(&server, "kill").await;
    let turn = limiter.turn(ms(1000)).await.unwrap();
    limiter.succeeded(turn);
    server.kill();
    // Every turn ends within the bound; the limiter says it is degraded.
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let asked = Instant::now();
        let turn = limiter.turn(ms(1000)).await.unwrap();
        limiter.succeeded(turn);
        slowest = slowest.max(asked.elapsed());
    }
    assert!(slowest < BOUND_AND_SLACK, "{slowest:?}");
    assert_eq!(limiter.snapshot().store, Store::Degraded);
    // Restarted empty: the probe finds it, the script is loaded again, and the
    // state starts afresh.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    while limiter.snapshot().store != Store::Shared && Instant::now() < deadline {
        tokio::time::sleep(ms(50)).await;
    }
    assert_eq!(limiter.snapshot().store, Store::Shared);
    let turn = limiter.turn(ms(1000)).await.unwrap();
    limiter.failed(turn, ErrorClass::RateLimit, Some(ms(300)));
    tokio::time::sleep(ms(50)).await;
    let other = shared(&server, "kill").await;
    let asked = Instant::now();
    other.turn(ms(5000)).await.unwrap();
    assert!(asked.elapsed() >= ms(150), "the cool-down is shared again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_longer_than_the_bound_costs_one_bound_then_nothing() {
    let server = RedisServer::start();
    let limiter = shared(&server, "pause").await;
    server.pause(2000);
    let asked = Instant::now();
    let turn = limiter.turn(ms(5000)).await.unwrap();
    limiter.succeeded(turn);
    assert!(asked.elapsed() < BOUND_AND_SLACK, "{:?}", asked.elapsed());
    assert_eq!(limiter.snapshot().store, Store::Degraded);
    // Degraded: later turns do not wait for Redis at all.
    let asked = Instant::now();
    for _ in 0..20 {
        let turn = limiter.turn(ms(5000)).await.unwrap();
        limiter.succeeded(turn);
    }
    assert!(asked.elapsed() < ms(50), "{:?}", asked.elapsed());
}

static FLEET_A: retry_runtime::RetryBudget = retry_runtime::RetryBudget::new(0.1, 0);
static FLEET_B: retry_runtime::RetryBudget = retry_runtime::RetryBudget::new(0.1, 0);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_spend_one_retry_budget() {
    let server = RedisServer::start();
    FLEET_A.share_redis(&server.url(), "budget").await.unwrap();
    FLEET_B.share_redis(&server.url(), "budget").await.unwrap();
    assert_eq!(FLEET_A.store(), Store::Shared);
    // A's 100 first calls earn the fleet 10 retries; B made no call of its own.
    (0..100).for_each(|_| FLEET_A.deposit());
    tokio::time::sleep(ms(350)).await;
    let spent_by_b = (0..50).filter(|_| FLEET_B.try_withdraw_at(0)).count();
    assert_eq!(spent_by_b, 10, "B spends what A's calls earned");
    // Once the syncs have run, A sees the pool B emptied.
    tokio::time::sleep(ms(350)).await;
    let spent_by_a = (0..50).filter(|_| FLEET_A.try_withdraw_at(0)).count();
    assert_eq!(spent_by_a, 0, "the fleet spent its 10 once");
}

static ALONE: retry_runtime::RetryBudget = retry_runtime::RetryBudget::new(0.5, 0);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_whose_redis_is_down_goes_on_alone() {
    let url = format!("redis://127.0.0.1:{}/", RedisServer::unused_port());
    let started = Instant::now();
    ALONE.share_redis(&url, "down").await.unwrap();
    assert!(started.elapsed() < BOUND_AND_SLACK);
    assert_eq!(ALONE.store(), Store::Degraded);
    (0..10).for_each(|_| ALONE.deposit());
    let spent = (0..50).filter(|_| ALONE.try_withdraw_at(0)).count();
    assert_eq!(spent, 5, "its own calls still earn its retries");
}
