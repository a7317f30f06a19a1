//! Callers of two limiters on one Redis key, as two processes of a fleet.

use std::sync::Arc;
use std::time::{Duration, Instant};

use retry_runtime::RateLimiter;

/// `n` callers, every other one on `a` and `b` (two processes of a fleet),
/// arriving `gap` apart, each waiting up to 5 s: for each, whether it was
/// `a`'s and when it got its turn, since the first arrived.
pub async fn spawn_alternating(
    a: &Arc<RateLimiter>,
    b: &Arc<RateLimiter>,
    n: usize,
    gap: Duration,
) -> Vec<tokio::task::JoinHandle<(bool, Duration)>> {
    let start = Instant::now();
    let mut calls = Vec::new();
    for i in 0..n {
        let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
        calls.push(tokio::spawn(async move {
            limiter.turn(Duration::from_secs(5)).await.unwrap();
            (i % 2 == 0, start.elapsed())
        }));
        tokio::time::sleep(gap).await;
    }
    calls
}

/// [`spawn_alternating`] 5 ms apart, to the end: when each got its turn, in
/// arrival order.
pub async fn alternate_turns(
    a: &Arc<RateLimiter>,
    b: &Arc<RateLimiter>,
    n: usize,
) -> Vec<Duration> {
    let mut times = Vec::new();
    for call in spawn_alternating(a, b, n, Duration::from_millis(5)).await {
        times.push(call.await.unwrap().1);
    }
    times
}
