//! Callers of two limiters on one Redis key, as two processes of a fleet.

use std::sync::Arc;
use std::time::{Duration, Instant};

use retry_runtime::RateLimiter;

/// `n` callers, every other one on `a` and `b` (two processes of a fleet),
/// arriving 5 ms apart; when each got its turn, since the first arrived, in
/// arrival order.
pub async fn alternate_turns(
    a: &Arc<RateLimiter>,
    b: &Arc<RateLimiter>,
    n: usize,
) -> Vec<Duration> {
    let start = Instant::now();
    let mut calls = Vec::new();
    for i in 0..n {
        let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
        calls.push(tokio::spawn(async move {
            limiter.turn(Duration::from_secs(5)).await.unwrap();
            start.elapsed()
        }));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut times = Vec::new();
    for call in calls {
        times.push(call.await.unwrap());
    }
    times
}
