//! The nasty Redis faults against a real `redis-server`: a stall (SIGSTOP) with
//! many waiters, writes refused while PING answers, a flush and a restart
//! with a live cool-down, a limit given at construction, a day-long hint, a
//! runtime dropped while Redis is down, a budget sync that ran but answered
//! late, and one connection per URL. Each promise is bounded: no caller waits
//! on Redis past one bound, no turn comes past its caller's bound.

#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/turns.rs"]
mod turns;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use retry_runtime::{ErrorClass, RateLimiter, RetryBudget, Store, Turn};

/// The bound on a Redis call, plus scheduling slack on a loaded 2-core machine.
const BOUND_AND_SLACK: Duration = Duration::from_millis(400);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn shared(limiter: RateLimiter, server: &RedisServer, key: &str) -> Arc<RateLimiter> {
    limiter
        .share_redis(&server.url(), key)
        .await
        .expect("a valid url");
    Arc::new(limiter)
}

/// Two processes of a fleet on `key`, 600 a minute: paced at 9.5 a second
/// across both, ~105 ms apart.
async fn two_processes(server: &RedisServer, key: &str) -> (Arc<RateLimiter>, Arc<RateLimiter>) {
    (
        shared(RateLimiter::per_minute(600), server, key).await,
        shared(RateLimiter::per_minute(600), server, key).await,
    )
}

/// Samples `limiter`'s store every 25 ms for `span`.
async fn stores_over(limiter: &RateLimiter, span: Duration) -> Vec<Store> {
    let until = Instant::now() + span;
    let mut seen = Vec::new();
    while Instant::now() < until {
        seen.push(limiter.snapshot().store);
        tokio::time::sleep(ms(25)).await;
    }
    seen
}

async fn until_shared(check: impl Fn() -> bool, within: Duration) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < within,
            "not shared again within {within:?}"
        );
        tokio::time::sleep(ms(20)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_costs_one_bound_and_no_turn_comes_past_its_callers_bound() {
    let server = RedisServer::start();
    // 1200 a minute, paced at 19 a second: ~53 ms apart.
    let limiter = shared(RateLimiter::per_minute(1200), &server, "stall").await;
    let bound = ms(2500);
    let started = Instant::now();
    let callers: Vec<_> = (0..60)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let asked = Instant::now();
                let turn = limiter.turn(bound).await;
                (turn.is_ok(), asked.elapsed(), started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(ms(500)).await;
    server.stop();
    // Stalled: the first miss degrades the store, and it stays degraded.
    let during = stores_over(&limiter, ms(1800)).await;
    server.resume();
    let mut turns = Vec::new();
    for caller in callers {
        let (ok, waited, at) = caller.await.unwrap();
        if ok {
            assert!(waited <= bound + ms(60), "a turn after {waited:?}");
            turns.push(at);
        }
    }
    turns.sort();
    // Pacing went on through the stall: ~19 a second, less one bound.
    assert!(turns.len() >= 38, "{} turns in 2.5 s", turns.len());
    let widest = turns.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        widest < ms(300),
        "waiters queued behind Redis: a gap of {widest:?}"
    );
    let degraded_after = during.iter().position(|s| *s == Store::Degraded);
    assert!(
        degraded_after.is_some_and(|at| at <= 8),
        "degraded within ~200 ms: {during:?}"
    );
    assert!(
        during[degraded_after.unwrap()..]
            .iter()
            .all(|s| *s == Store::Degraded),
        "no flapping while stalled: {during:?}"
    );
    let back = until_shared(|| limiter.snapshot().store == Store::Shared, ms(2000)).await;
    assert!(back < ms(1000), "{back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_of_two_processes_keep_their_places_through_a_stall() {
    let server = RedisServer::start();
    let (a, b) = two_processes(&server, "places").await;
    let calls = turns::spawn_alternating(&a, &b, 10, ms(2)).await;
    tokio::time::sleep(ms(150)).await;
    server.stop();
    let mut times = Vec::new();
    for call in calls {
        times.push(call.await.unwrap().1);
    }
    server.resume();
    // Each process went on with the schedule both had agreed on: the pace
    // held across them, rather than each pacing alone (twice the rate). The
    // one waiter whose read met the stall went one bound late, next to the
    // following slot: the incident's one cost.
    times.sort();
    let close = times.windows(2).filter(|w| w[1] - w[0] < ms(80)).count();
    assert!(close <= 1, "{times:?}");
    assert!(times[9] >= ms(850), "{times:?}");
}

/// `n` callers at once, each taking a turn (waiting up to 10 s) and, if
/// `succeed`, reporting a success: when each went, from `start`.
fn callers(
    limiter: &Arc<RateLimiter>,
    n: usize,
    succeed: bool,
    start: Instant,
) -> Vec<tokio::task::JoinHandle<Duration>> {
    (0..n)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let turn = limiter.turn(ms(10_000)).await.expect("a turn in time");
                let at = start.elapsed();
                if succeed {
                    limiter.succeeded(turn);
                }
                at
            })
        })
        .collect()
}

async fn sorted(calls: Vec<tokio::task::JoinHandle<Duration>>) -> Vec<Duration> {
    let mut times = Vec::new();
    for call in calls {
        times.push(call.await.unwrap());
    }
    times.sort();
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_arriving_during_a_stall_queues_after_the_places_and_delays_none() {
    let server = RedisServer::start();
    // 1200 a minute, paced at 19 a second: ~53 ms apart.
    let limiter = shared(RateLimiter::per_minute(1200), &server, "arriving").await;
    let start = Instant::now();
    let queued = callers(&limiter, 40, false, start);
    tokio::time::sleep(ms(300)).await;
    server.stop();
    tokio::time::sleep(ms(400)).await;
    assert_eq!(limiter.snapshot().store, Store::Degraded);
    // A retry, a new request: it must neither go before the queue nor hold
    // the callers already in it behind itself.
    limiter.turn(ms(10_000)).await.expect("a turn in time");
    let arrived_at = start.elapsed();
    let times = sorted(queued).await;
    server.resume();
    let widest = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(widest < ms(300), "the queue was held: a gap of {widest:?}");
    let last = *times.last().unwrap();
    assert!(last < ms(2100) + BOUND_AND_SLACK, "{times:?}");
    assert!(
        arrived_at + ms(10) >= last,
        "the new caller went at {arrived_at:?}, before the queue's end at {last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_climbs_on_through_a_stall() {
    let server = RedisServer::start();
    let limiter = shared(RateLimiter::per_minute(1200), &server, "climbing").await;
    // A first wave's refusal: the rate drops to 70% of 19 a second, and
    // CUBIC climbs it back within ~2.4 s of successes.
    let turn = limiter.turn(ms(1000)).await.unwrap();
    limiter.failed(turn, ErrorClass::RateLimit, None);
    let start = Instant::now();
    let queued = callers(&limiter, 100, true, start);
    tokio::time::sleep(ms(150)).await;
    server.stop();
    let times = sorted(queued).await;
    server.resume();
    // At the places of the last read's pace (~14 a second) the last would go
    // at ~7 s; climbing as the store would have, at ~5.5 s.
    let last = *times.last().unwrap();
    assert!(last < ms(6000), "the pace froze at the stall: {last:?}");
    // And never past the limit: 100 turns at 20 a second take 5 s.
    assert!(last > ms(4900), "{times:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_during_a_stall_moves_no_turn_onto_another_processes() {
    let server = RedisServer::start();
    let (a, b) = two_processes(&server, "refused").await;
    let calls = turns::spawn_alternating(&a, &b, 16, ms(2)).await;
    tokio::time::sleep(ms(150)).await;
    server.stop();
    tokio::time::sleep(ms(500)).await;
    assert_eq!(a.snapshot().store, Store::Degraded);
    // A 429 with `retry-after: 1` to one of a's calls. Alone, a would hold
    // its callers a second and then send them where b's turns are.
    a.failed(Turn::UNPACED, ErrorClass::RateLimit, Some(ms(1000)));
    let mut times = Vec::new();
    for call in calls {
        times.push(call.await.unwrap());
    }
    server.resume();
    times.sort_by_key(|(_, at)| *at);
    let close = times
        .windows(2)
        .filter(|w| w[1].1 - w[0].1 < ms(80))
        .count();
    assert!(close <= 1, "turns of both processes together: {times:?}");
    let of_a: Vec<Duration> = times
        .iter()
        .filter(|(a, _)| *a)
        .map(|(_, at)| *at)
        .collect();
    let widest = of_a.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(widest < ms(500), "a's turns held: {of_a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_of_a_key_that_is_gone_are_not_written_into_its_successor() {
    let mut server = RedisServer::start();
    let limiter = shared(RateLimiter::per_minute(1200), &server, "successor").await;
    let queued = callers(&limiter, 60, false, Instant::now());
    tokio::time::sleep(ms(300)).await;
    server.stop();
    tokio::time::sleep(ms(600)).await;
    // Degraded, and going on at the places of the key's 60 positions.
    assert_eq!(limiter.snapshot().store, Store::Degraded);
    // Restarted empty: a new key, whose positions start at 0.
    server.restart();
    until_shared(|| limiter.snapshot().store == Store::Shared, ms(3000)).await;
    let next = server
        .hget("ai-retry:limiter:successor", "rnxt")
        .map_or(0.0, |next| next.parse::<f64>().unwrap());
    assert!(
        next < 10.0,
        "the old key's positions in the new one: {next}"
    );
    // The limit came back with the seed, and the queue ran to its end.
    assert!(server.hget("ai-retry:limiter:successor", "rlim").is_some());
    assert_eq!(sorted(queued).await.len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_answers_ping_but_refuses_scripts_does_not_flap() {
    let server = RedisServer::start();
    let limiter = shared(RateLimiter::new(), &server, "flap").await;
    // A primary that lost its replicas: every write is refused at once
    // (NOREPLICAS), PING still answers.
    server.config_set("min-replicas-to-write", "1");
    let asked = Instant::now();
    limiter.turn(ms(5000)).await.unwrap();
    assert!(asked.elapsed() < BOUND_AND_SLACK, "{:?}", asked.elapsed());
    let during = stores_over(&limiter, ms(1000)).await;
    assert!(
        during.iter().all(|s| *s == Store::Degraded),
        "flapped: {during:?}"
    );
    server.config_set("min-replicas-to-write", "0");
    until_shared(|| limiter.snapshot().store == Store::Shared, ms(2000)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_given_at_construction_paces_the_whole_fleet() {
    let server = RedisServer::start();
    // Two processes, each told the limit at construction; nobody saw a header.
    let a = shared(RateLimiter::per_minute(600), &server, "seeded").await;
    let b = shared(RateLimiter::per_minute(600), &server, "seeded").await;
    assert_eq!(
        server
            .hget("ai-retry:limiter:seeded", "rlim")
            .and_then(|l| l.parse::<f64>().ok()),
        Some(600.0)
    );
    let times = turns::alternate_turns(&a, &b, 6).await;
    // 600 a minute, paced at 9.5 a second across both: ~105 ms apart.
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= ms(80), "{times:?}");
    }
    assert!(times[5] >= ms(450), "{times:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_and_a_restart_keep_the_limit_and_a_live_cool_down() {
    let mut server = RedisServer::start();
    let a = shared(RateLimiter::per_minute(600), &server, "gone").await;
    let turn = a.turn(ms(1000)).await.unwrap();
    a.failed(turn, ErrorClass::RateLimit, Some(ms(6000)));
    tokio::time::sleep(ms(50)).await;

    // Flushed (as after an expiry): the next call of the process that knows
    // writes it all back.
    server.flush();
    assert!(a.turn(ms(100)).await.is_err(), "still cooling down");
    let b = shared(RateLimiter::new(), &server, "gone").await;
    assert!(b.turn(ms(100)).await.is_err(), "the fleet cools down too");
    let seen = b.snapshot();
    assert!(seen.cool_down > ms(4000), "{seen:?}");
    assert_eq!(seen.limit_per_minute, Some(600), "{seen:?}");

    // Restarted empty while a call finds it down: the probe writes it back.
    server.kill();
    assert!(a.turn(ms(100)).await.is_err());
    assert_eq!(a.snapshot().store, Store::Degraded);
    server.restart();
    until_shared(|| a.snapshot().store == Store::Shared, ms(3000)).await;
    let c = shared(RateLimiter::new(), &server, "gone").await;
    let refused = c.turn(ms(100)).await.unwrap_err();
    assert!(refused.wait() > ms(2000), "{refused:?}");
    assert_eq!(c.snapshot().limit_per_minute, Some(600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_long_hint_becomes_a_probe_the_fleet_can_see() {
    let server = RedisServer::start();
    let a = shared(RateLimiter::new(), &server, "day").await;
    let b = shared(RateLimiter::new(), &server, "day").await;
    let turn = a.turn(ms(1000)).await.unwrap();
    a.failed(
        turn,
        ErrorClass::RateLimit,
        Some(Duration::from_secs(86_400)),
    );
    tokio::time::sleep(ms(50)).await;
    let asked = Instant::now();
    let refused = b.turn(ms(5000)).await.unwrap_err();
    assert!(asked.elapsed() < BOUND_AND_SLACK, "refused at once");
    assert!(refused.wait() > ms(55_000) && refused.wait() <= ms(60_000));
    // The other process's snapshot says what holds it back: the store's state.
    let seen = b.snapshot();
    assert_eq!(seen.store, Store::Shared);
    assert!(seen.probing, "{seen:?}");
    assert!(seen.cool_down > ms(55_000), "{seen:?}");
    assert!(seen.next_turn >= seen.cool_down, "{seen:?}");
    // The key does not live a day: ten idle minutes plus the minute's cool-down.
    let ttl = server.pttl("ai-retry:limiter:day");
    assert!(ttl > 0 && ttl <= 660_000, "{ttl}");
    // An operator clears it, for the fleet.
    b.reset();
    tokio::time::sleep(ms(50)).await;
    let asked = Instant::now();
    a.turn(ms(5000)).await.unwrap();
    assert!(asked.elapsed() < BOUND_AND_SLACK);
    assert!(!a.snapshot().probing);
}

static GONE_LIMITER: RateLimiter = RateLimiter::per_minute(600);
static GONE_BUDGET: RetryBudget = RetryBudget::new(0.1, 0);

#[test]
fn shared_from_a_runtime_that_is_gone_it_recovers_in_the_next() {
    let mut server = RedisServer::start();
    let url = server.url();
    let first = tokio::runtime::Runtime::new().unwrap();
    first.block_on(async {
        GONE_LIMITER.share_redis(&url, "runtime").await.unwrap();
        GONE_BUDGET.share_redis(&url, "runtime").await.unwrap();
        assert_eq!(GONE_LIMITER.snapshot().store, Store::Shared);
    });
    server.kill();
    first.block_on(async {
        let _ = GONE_LIMITER.turn(ms(1000)).await;
        assert_eq!(GONE_LIMITER.snapshot().store, Store::Degraded);
    });
    drop(first);
    server.restart();
    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        let back = until_shared(
            || {
                GONE_LIMITER.snapshot().store == Store::Shared
                    && GONE_BUDGET.store() == Store::Shared
            },
            ms(5000),
        )
        .await;
        assert!(back < ms(5000));
        // The limit given at construction reached the restarted Redis, and
        // the budget's sync task still runs.
        assert_eq!(
            server.hget("ai-retry:limiter:runtime", "rlim").as_deref(),
            Some("600")
        );
        (0..100).for_each(|_| GONE_BUDGET.deposit());
        tokio::time::sleep(ms(400)).await;
        assert_eq!(
            server.hget("ai-retry:budget:runtime", "balance").as_deref(),
            Some("10000")
        );
    });
}

static LATE: RetryBudget = RetryBudget::new(0.1, 0);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_sync_that_ran_but_answered_late_counts_once() {
    let server = RedisServer::start();
    LATE.share_redis(&server.url(), "late").await.unwrap();
    let balance = || server.hget("ai-retry:budget:late", "balance");
    (0..100).for_each(|_| LATE.deposit());
    tokio::time::sleep(ms(350)).await;
    assert_eq!(
        balance().as_deref(),
        Some("10000"),
        "10 retries, in thousandths"
    );
    // The next sync's script waits out the pause, then runs: its answer came
    // too late, and the same batch is sent again.
    (0..100).for_each(|_| LATE.deposit());
    server.pause_writes(450);
    tokio::time::sleep(ms(1500)).await;
    assert_eq!(LATE.store(), Store::Shared);
    assert_eq!(balance().as_deref(), Some("20000"), "counted once");
}

static ONE_LINK: RetryBudget = RetryBudget::new(0.1, 0);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_per_url_and_one_sharing_per_limiter() {
    let server = RedisServer::start();
    let alone = server.clients();
    let limiters = [
        shared(RateLimiter::new(), &server, "one").await,
        shared(RateLimiter::new(), &server, "two").await,
        shared(RateLimiter::per_minute(60), &server, "three").await,
    ];
    ONE_LINK.share_redis(&server.url(), "one").await.unwrap();
    for limiter in &limiters {
        let turn = limiter.turn(ms(1000)).await.unwrap();
        limiter.succeeded(turn);
    }
    tokio::time::sleep(ms(250)).await;
    assert_eq!(server.clients(), alone + 1, "one connection for all four");
    // Shared again: the same store is fine, another is an error.
    let url = server.url();
    assert!(limiters[0].share_redis(&url, "one").await.is_ok());
    let again = limiters[0]
        .share_redis(&url, "elsewhere")
        .await
        .unwrap_err();
    assert_eq!(again.kind(), redis::ErrorKind::InvalidClientConfig);
    assert!(ONE_LINK.share_redis(&url, "one").await.is_ok());
    assert!(ONE_LINK.share_redis(&url, "two").await.is_err());
}
