//! `cargo bench -p ai-retry-benches --bench overhead`: the success path of a trivial function, bare
//! vs `#[retry]` (without and with an idle `RateLimiter`) vs backon, tokio-retry2
//! and tokio-retry doing the same, in one process; prints time per call and the
//! ratio to bare; and the failure path (one failure, one retry) under the
//! test switch, beside backon with zero delays.

#[path = "../retry-runtime/tests/support/poll_once.rs"]
mod poll_once;
mod support;

use std::hint::black_box;
use std::io;
use std::time::Duration;

use ai_retry::{Cost, RateLimiter, Throttled, retry};
use backon::{BlockingRetryable, ExponentialBuilder, Retryable};
use criterion::Criterion;
use poll_once::poll_once;
use support::mean_ns;
use tokio_retry2::MapErr;

#[inline(never)]
fn bare(x: u64) -> io::Result<u64> {
    Ok(black_box(x).wrapping_mul(3))
}

#[inline(never)]
async fn bare_async(x: u64) -> io::Result<u64> {
    Ok(black_box(x).wrapping_mul(3))
}

#[inline(never)]
#[retry(max = 3, backoff = "exp_jitter", on = RateLimit | Timeout | Overloaded)]
fn retried(x: u64) -> io::Result<u64> {
    Ok(black_box(x).wrapping_mul(3))
}

#[inline(never)]
#[retry(max = 3, backoff = "exp_jitter", on = RateLimit | Timeout | Overloaded)]
async fn retried_async(x: u64) -> io::Result<u64> {
    Ok(black_box(x).wrapping_mul(3))
}

/// Idle: no limit known, no cool-down. Its first turn looks at the state once;
/// every later one is an atomic read.
static IDLE: RateLimiter = RateLimiter::new();

#[inline(never)]
#[retry(max = 3, backoff = "exp_jitter", on = RateLimit | Timeout | Overloaded, limiter = IDLE)]
fn limited(x: u64) -> io::Result<u64> {
    Ok(black_box(x).wrapping_mul(3))
}

#[inline(never)]
#[retry(max = 3, backoff = "exp_jitter", on = RateLimit | Timeout | Overloaded, limiter = IDLE)]
async fn limited_async(x: u64) -> io::Result<u64> {
    Ok(black_box(x).wrapping_mul(3))
}

/// The same with a cost: evaluated and carried, but with no token limit known
/// the turn is still the atomic read.
#[inline(never)]
#[retry(max = 3, backoff = "exp_jitter", on = RateLimit | Timeout | Overloaded, limiter = IDLE, cost = Cost::tokens(x as u32))]
async fn costed_async(x: u64) -> io::Result<u64> {
    Ok(black_box(x).wrapping_mul(3))
}

#[inline(never)]
#[retry(max = 3, backoff = "exp_jitter", on = RateLimit | Timeout | Overloaded, deadline = "30s")]
async fn deadlined_async(x: u64) -> io::Result<u64> {
    Ok(black_box(x).wrapping_mul(3))
}

/// Fails every other call: one failure, one retry, one success. Benched under
/// `testing::no_delays()`, so the failure path is measured (classification,
/// the jitter draw, the delay math) without the sleep.
#[inline(never)]
#[retry(max = 3, backoff = "exp_jitter", on = Connection)]
fn fails_once(failed: &mut bool) -> io::Result<u64> {
    *failed = !*failed;
    if *failed {
        return Err(io::ErrorKind::ConnectionReset.into());
    }
    Ok(black_box(7))
}

/// `io::Error: From<Throttled>` ships with the runtime; this names it so the
/// bench says why `io::Result` works with `limiter`.
const _: fn(Throttled) -> io::Error = io::Error::from;

const SYNC: &str = "overhead-sync";
const ASYNC: &str = "overhead-async";
const FAILURE: &str = "failure-sync";

fn benches(c: &mut Criterion) {
    let mut sync = c.benchmark_group(SYNC);
    sync.bench_function("bare", |b| b.iter(|| bare(black_box(7))));
    sync.bench_function("ai-retry", |b| b.iter(|| retried(black_box(7))));
    sync.bench_function("ai-retry + idle limiter", |b| {
        b.iter(|| limited(black_box(7)))
    });
    sync.bench_function("backon", |b| {
        b.iter(|| {
            (|| bare(black_box(7)))
                .retry(ExponentialBuilder::default().with_jitter())
                .call()
        })
    });
    sync.finish();

    let mut asynchronous = c.benchmark_group(ASYNC);
    asynchronous.bench_function("bare", |b| b.iter(|| poll_once(bare_async(black_box(7)))));
    asynchronous.bench_function("ai-retry", |b| {
        b.iter(|| poll_once(retried_async(black_box(7))))
    });
    asynchronous.bench_function("ai-retry + idle limiter", |b| {
        b.iter(|| poll_once(limited_async(black_box(7))))
    });
    asynchronous.bench_function("ai-retry + idle limiter + cost", |b| {
        b.iter(|| poll_once(costed_async(black_box(7))))
    });
    asynchronous.bench_function("ai-retry + deadline", |b| {
        b.iter(|| poll_once(deadlined_async(black_box(7))))
    });
    asynchronous.bench_function("backon", |b| {
        b.iter(|| {
            poll_once(
                (|| bare_async(black_box(7))).retry(ExponentialBuilder::default().with_jitter()),
            )
        })
    });
    asynchronous.bench_function("tokio-retry2", |b| {
        b.iter(|| {
            let strategy = tokio_retry2::strategy::ExponentialBackoff::from_millis(10)
                .map(tokio_retry2::strategy::jitter)
                .take(2);
            poll_once(tokio_retry2::Retry::spawn(strategy, || async {
                bare_async(black_box(7)).await.map_transient_err()
            }))
        })
    });
    asynchronous.bench_function("tokio-retry", |b| {
        b.iter(|| {
            let strategy = tokio_retry::strategy::ExponentialBackoff::from_millis(10)
                .map(tokio_retry::strategy::jitter)
                .take(2);
            poll_once(tokio_retry::Retry::start(strategy, || {
                bare_async(black_box(7))
            }))
        })
    });
    asynchronous.finish();

    let mut failure = c.benchmark_group(FAILURE);
    let _no_delays = ai_retry::testing::no_delays();
    failure.bench_function("ai-retry", |b| {
        let mut failed = false;
        b.iter(|| fails_once(black_box(&mut failed)))
    });
    failure.bench_function("backon", |b| {
        let mut failed = false;
        b.iter(|| {
            (|| {
                failed = !failed;
                if failed {
                    return Err(io::Error::from(io::ErrorKind::ConnectionReset));
                }
                Ok(black_box(7u64))
            })
            .retry(
                ExponentialBuilder::default()
                    .with_jitter()
                    .with_min_delay(Duration::ZERO)
                    .with_max_delay(Duration::ZERO),
            )
            .call()
        })
    });
    failure.finish();
}

fn main() {
    // A deadline arms a timer around each attempt, which needs tokio's time driver.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _context = runtime.enter();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    report();
}

/// The table for README.md: time per call and the ratio to bare.
fn report() {
    println!("\n| group | implementation | time per call | vs bare |");
    println!("|---|---|---|---|");
    for (group, names) in [
        (
            SYNC,
            &["bare", "ai-retry", "ai-retry + idle limiter", "backon"][..],
        ),
        (
            ASYNC,
            &[
                "bare",
                "ai-retry",
                "ai-retry + idle limiter",
                "ai-retry + idle limiter + cost",
                "ai-retry + deadline",
                "backon",
                "tokio-retry2",
                "tokio-retry",
            ][..],
        ),
        (FAILURE, &["ai-retry", "backon"][..]),
    ] {
        let bare = mean_ns(group, "bare");
        for name in names {
            match (mean_ns(group, name), bare) {
                (Some(ns), Some(bare)) => {
                    println!("| {group} | {name} | {ns:.2} ns | {:.2}x |", ns / bare)
                }
                // The failure path has no bare counterpart: a failed call and its retry.
                (Some(ns), None) => println!("| {group} | {name} | {ns:.2} ns | |"),
                (None, _) => println!("| {group} | {name} | (no estimate: run without --test) | |"),
            }
        }
    }
}
