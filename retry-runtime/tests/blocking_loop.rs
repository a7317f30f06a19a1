//! The blocking loop, with delays of a few milliseconds at most.

use retry_runtime::{Backoff, Classify, ErrorClass, Policy, Retry, RetryBudget};
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq)]
struct Failure(ErrorClass, Option<Duration>, u32);

impl Classify for Failure {
    fn class(&self) -> ErrorClass {
        self.0
    }
    fn retry_after(&self) -> Option<Duration> {
        self.1
    }
}

fn attempts_until(
    retry: Retry<Failure>,
    class: ErrorClass,
    hint: Option<Duration>,
) -> (Result<(), Failure>, u32) {
    let mut n = 0;
    let result = retry.run(|| {
        n += 1;
        Err(Failure(class, hint, n))
    });
    (result, n)
}

fn quick(max: u32) -> Policy {
    Policy::new()
        .max_attempts(max)
        .backoff(Backoff::Constant)
        .initial(Duration::from_millis(1))
}

#[test]
fn retries_up_to_max_and_returns_the_last_error() {
    let (result, n) = attempts_until(Retry::classified(quick(4)), ErrorClass::Server, None);
    assert_eq!(n, 4);
    assert_eq!(result, Err(Failure(ErrorClass::Server, None, 4)));
}

#[test]
fn permanent_errors_are_returned_at_once() {
    let (_, n) = attempts_until(Retry::classified(quick(4)), ErrorClass::Permanent, None);
    assert_eq!(n, 1);
}

#[test]
fn sleeps_at_least_the_hint() {
    let start = Instant::now();
    let policy = quick(2).backoff(Backoff::None);
    let (_, n) = attempts_until(
        Retry::classified(policy),
        ErrorClass::RateLimit,
        Some(Duration::from_millis(20)),
    );
    assert_eq!(n, 2);
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn a_hint_above_max_delay_fails_fast() {
    let policy = quick(5).max_delay(Duration::from_millis(50));
    let (_, n) = attempts_until(
        Retry::classified(policy),
        ErrorClass::RateLimit,
        Some(Duration::from_secs(3600)),
    );
    assert_eq!(n, 1);
}

#[test]
fn deadline_stops_before_a_sleep_would_pass_it() {
    let policy = quick(100)
        .initial(Duration::from_millis(10))
        .deadline(Duration::from_millis(35));
    let start = Instant::now();
    let (_, n) = attempts_until(Retry::classified(policy), ErrorClass::Server, None);
    // Loose on purpose: a loaded machine oversleeps, but the loop still stops.
    assert!(
        start.elapsed() <= Duration::from_millis(35 + 250),
        "bounded"
    );
    assert!((2..=4).contains(&n), "{n}");
}

#[test]
fn budget_applies_to_the_blocking_loop_too() {
    static BUDGET: RetryBudget = RetryBudget::new(0.0, 0);
    let (_, n) = attempts_until(
        Retry::classified(quick(5)).budget(&BUDGET),
        ErrorClass::Server,
        None,
    );
    assert_eq!(n, 1);
}
