//! `cargo bench -p ai-retry-benches --bench limiter`: ai-retry's `RateLimiter`
//! against governor (GCRA, the crate people reach for to rate-limit a client)
//! in one process. First what one turn costs when nothing has to wait
//! (criterion); then 1,000 tasks on a two-worker multi-thread runtime taking
//! turns as fast as a limiter of 10,000 a second gives them, for 3 s after a
//! warm-up: the rate achieved against the one set, and the process's CPU time
//! per turn.
//!
//! The same quota for both: 10,000 a second with no burst beyond one (the
//! request bucket of ai-retry holds one turn; governor's `allow_burst(1)`).
//! ai-retry paces a margin (5%) below a limit it is given, against the
//! server's clock: it is given 631,579 a minute, which it paces at 10,000 a
//! second.

#[path = "../retry-runtime/tests/support/poll_once.rs"]
mod poll_once;
mod support;

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ai_retry::{Limits, RateLimiter};
use criterion::Criterion;
use governor::{Quota, RateLimiter as Governor};
use poll_once::poll_once;
use support::mean_ns;

const IDLE: &str = "limiter-idle-turn";
const RATE: u32 = 10_000;
/// What ai-retry is given so that it paces at [`RATE`] (it paces at 95%).
const AI_RETRY_PER_MINUTE: u32 = 631_579;
const TASKS: usize = 1_000;
const WARM_UP: Duration = Duration::from_millis(500);
const MEASURED: Duration = Duration::from_secs(3);
const MAX_WAIT: Duration = Duration::from_secs(60);

fn quota(per_second: u32) -> Quota {
    let one = NonZeroU32::new(1).expect("one");
    Quota::per_second(NonZeroU32::new(per_second).expect("a rate")).allow_burst(one)
}

fn idle_turns(c: &mut Criterion) {
    let mut group = c.benchmark_group(IDLE);
    // Nothing known: what `#[retry(limiter = …)]` pays on every call.
    let blind = RateLimiter::new();
    // Its first turn looks at the state once; every later one is an atomic read.
    let first = poll_once(blind.turn(MAX_WAIT)).expect("a turn");
    blind.succeeded(first);
    group.bench_function("ai-retry, nothing known", |b| {
        b.iter(|| {
            let turn = blind.try_turn_now().expect("idle");
            blind.succeeded(black_box(turn));
        })
    });
    // A limit far above the calls: the turn is taken from the schedule.
    let known = RateLimiter::with_limits(Limits::NONE.requests(u32::MAX));
    group.bench_function("ai-retry, limit known", |b| {
        b.iter(|| {
            let turn = poll_once(known.turn(MAX_WAIT)).expect("a turn");
            known.succeeded(black_box(turn));
        })
    });
    let governor = Governor::direct(Quota::per_second(NonZeroU32::MAX));
    group.bench_function("governor check", |b| {
        b.iter(|| black_box(governor.check()).expect("room"))
    });
    group.finish();
}

/// One limiter under [`TASKS`] tasks taking turns until told to stop.
#[derive(Clone, Copy)]
enum Limiter {
    AiRetry,
    Governor,
}

impl Limiter {
    fn name(self) -> &'static str {
        match self {
            Limiter::AiRetry => "ai-retry",
            Limiter::Governor => "governor until_ready",
        }
    }
}

struct Paced {
    turns: u64,
    elapsed: Duration,
    cpu: Duration,
}

/// CPU time of the whole process so far (user + system).
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes the struct it is given; a zeroed rusage is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn paced(limiter: Limiter) -> Paced {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let turns = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ai_retry = Arc::new(RateLimiter::with_limits(
            Limits::NONE.requests(AI_RETRY_PER_MINUTE),
        ));
        let governor = Arc::new(Governor::direct(quota(RATE)));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (turns, stop) = (turns.clone(), stop.clone());
                let (ai_retry, governor) = (ai_retry.clone(), governor.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        match limiter {
                            Limiter::AiRetry => {
                                let turn = ai_retry.turn(MAX_WAIT).await.expect("a turn");
                                ai_retry.succeeded(turn);
                            }
                            Limiter::Governor => governor.until_ready().await,
                        }
                        turns.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        tokio::time::sleep(WARM_UP).await;
        let (start, turns_before, cpu_before) =
            (Instant::now(), turns.load(Ordering::Relaxed), cpu_time());
        tokio::time::sleep(MEASURED).await;
        let outcome = Paced {
            turns: turns.load(Ordering::Relaxed) - turns_before,
            elapsed: start.elapsed(),
            cpu: cpu_time() - cpu_before,
        };
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.expect("the task ends");
        }
        outcome
    })
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let filter = support::named_args();
    // A criterion filter names a group or one of its benches.
    let wanted = |name: &str| {
        filter.is_empty()
            || filter
                .iter()
                .any(|f| name.contains(f.as_str()) || f.starts_with(name))
    };
    if wanted(IDLE) {
        idle_turns(&mut criterion);
        criterion.final_summary();
    }
    if std::env::args().any(|a| a == "--list" || a == "--test") || !wanted("paced") {
        report(None);
        return;
    }
    let runs: Vec<(Limiter, Paced)> = [Limiter::AiRetry, Limiter::Governor]
        .into_iter()
        .map(|limiter| (limiter, paced(limiter)))
        .collect();
    report(Some(&runs));
}

fn report(runs: Option<&[(Limiter, Paced)]>) {
    println!("\n| limiter | an idle turn |");
    println!("|---|---|");
    for name in [
        "ai-retry, nothing known",
        "ai-retry, limit known",
        "governor check",
    ] {
        match mean_ns(IDLE, name) {
            Some(ns) => println!("| {name} | {ns:.2} ns |"),
            None => println!("| {name} | (no estimate: run without --test) |"),
        }
    }
    let Some(runs) = runs else {
        return;
    };
    println!(
        "\n{TASKS} tasks, {RATE} turns a second set, 2 worker threads, {} s measured after {} ms",
        MEASURED.as_secs(),
        WARM_UP.as_millis()
    );
    println!("| limiter | turns | turns a second | vs set | CPU per turn |");
    println!("|---|---|---|---|---|");
    for (limiter, run) in runs {
        let per_second = run.turns as f64 / run.elapsed.as_secs_f64();
        let cpu_per_turn = run.cpu.as_secs_f64() / run.turns.max(1) as f64;
        println!(
            "| {} | {} | {per_second:.0} | {:.3}x | {:.2} µs |",
            limiter.name(),
            run.turns,
            per_second / f64::from(RATE),
            cpu_per_turn * 1e6,
        );
    }
}
