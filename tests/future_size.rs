//! The generated future is the body's future plus the loop's small state and
//! one tokio `Sleep`: measured here against the same body without `#[retry]`.

use ai_retry::retry;
use ai_retry::runtime::Attempts;
use std::io;
use std::mem::{size_of, size_of_val};

async fn work(n: u64) -> u64 {
    tokio::task::yield_now().await;
    n + 1
}

async fn bare_small(n: u64) -> io::Result<u64> {
    Ok(work(n).await)
}

#[retry]
async fn retried_small(n: u64) -> io::Result<u64> {
    Ok(work(n).await)
}

async fn bare_large(n: u64) -> io::Result<u64> {
    let buffer = [n as u8; 1024];
    let m = work(n).await;
    Ok(buffer.iter().map(|&b| u64::from(b)).sum::<u64>() + m)
}

#[retry(timeout = "5s")]
async fn retried_large(n: u64) -> io::Result<u64> {
    let buffer = [n as u8; 1024];
    let m = work(n).await;
    Ok(buffer.iter().map(|&b| u64::from(b)).sum::<u64>() + m)
}

static IDLE: ai_retry::RateLimiter = ai_retry::RateLimiter::new();

#[retry(limiter = IDLE)]
async fn limited_small(n: u64) -> io::Result<u64> {
    Ok(work(n).await)
}

#[tokio::test]
async fn a_limiter_adds_its_standing_and_a_pointer() {
    let retried = size_of_val(&retried_small(1));
    let limited = size_of_val(&limited_small(1));
    eprintln!("retried {retried} B, with a limiter {limited} B");
    // The call's standing (its turn and last error): the wait itself is boxed.
    assert!(limited <= retried + 32, "{retried} -> {limited}");
}

#[tokio::test]
async fn generated_futures_add_a_bounded_overhead() {
    let sleep = size_of_val(&tokio::time::sleep(std::time::Duration::ZERO));
    let state = size_of::<Attempts>();
    let pairs = [
        (
            "small",
            size_of_val(&bare_small(1)),
            size_of_val(&retried_small(1)),
        ),
        (
            "large + timeout",
            size_of_val(&bare_large(1)),
            size_of_val(&retried_large(1)),
        ),
    ];
    for (name, bare, retried) in pairs {
        println!(
            "{name}: bare {bare} B, #[retry] {retried} B (Sleep {sleep} B, Attempts {state} B)"
        );
        // The body's future, one tokio Sleep (the backoff's, or the timeout's: they
        // are never alive at once), the loop's state, and a word or two of padding.
        assert!(
            retried <= bare + sleep + state + 32,
            "{name}: {retried} vs {bare}"
        );
    }
}
