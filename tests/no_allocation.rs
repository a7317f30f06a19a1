//! Functions under `#[retry]` allocate nothing on the success path: a counting
//! global allocator watches them, blocking and async.

#[path = "../retry-runtime/tests/support/counting_alloc.rs"]
mod counting_alloc;
#[path = "../retry-runtime/tests/support/poll_once.rs"]
mod poll_once;

use ai_retry::{Cost, RateLimiter, retry};
use counting_alloc::{Counting, allocations_in};
use poll_once::poll_once;
use std::io;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[retry(max = 5, backoff = "decorrelated_jitter", on = RateLimit | Timeout)]
fn blocking(n: u64) -> io::Result<u64> {
    Ok(n * 2)
}

#[retry(max = 5, deadline = "30s")]
async fn asynchronous(n: u64) -> io::Result<u64> {
    Ok(n + 1)
}

/// A deadline arms a timer around each attempt, which needs tokio's time driver.
fn with_runtime(test: impl FnOnce()) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _context = runtime.enter();
    test();
}

#[test]
fn the_success_path_allocates_nothing() {
    with_runtime(|| {
        let n = allocations_in(|| {
            for i in 0..1000 {
                assert_eq!(blocking(i).unwrap(), i * 2);
                assert_eq!(poll_once(asynchronous(i)).unwrap(), i + 1);
            }
        });
        assert_eq!(n, 0);
    });
}

static IDLE: RateLimiter = RateLimiter::new();

#[retry(max = 5, on = RateLimit | Timeout, limiter = IDLE)]
fn blocking_limited(n: u64) -> io::Result<u64> {
    Ok(n * 2)
}

#[retry(max = 5, deadline = "30s", limiter = IDLE)]
async fn asynchronous_limited(n: u64) -> io::Result<u64> {
    Ok(n + 1)
}

/// A cost is evaluated and carried, but no token limit is known: still the fast path.
#[retry(max = 5, limiter = IDLE, cost = Cost::tokens(n as u32))]
async fn asynchronous_costed(n: u64) -> io::Result<u64> {
    Ok(n + 2)
}

#[test]
fn an_idle_limiter_allocates_nothing_either() {
    with_runtime(|| {
        // A limiter is idle once an answer came back with no limit to pace
        // by: its first call is first contact, a paced turn (which may
        // allocate, as every wait does).
        assert_eq!(blocking_limited(0).unwrap(), 0);
        let n = allocations_in(|| {
            for i in 0..1000 {
                assert_eq!(blocking_limited(i).unwrap(), i * 2);
                assert_eq!(poll_once(asynchronous_limited(i)).unwrap(), i + 1);
                assert_eq!(poll_once(asynchronous_costed(i)).unwrap(), i + 2);
            }
        });
        assert_eq!(n, 0);
    });
}

#[test]
fn the_counter_sees_allocations() {
    assert_eq!(allocations_in(|| drop(vec![0u8; 16])), 1);
}
