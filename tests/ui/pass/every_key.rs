#![deny(warnings, unused_qualifications)]

use ai_retry::{ErrorClass, RateLimiter, RetryBudget, RetryEvent, retry};
use std::io;

static BUDGET: RetryBudget = RetryBudget::new(0.1, 10);
static LIMITER: RateLimiter = RateLimiter::per_minute(600);

fn log(event: &RetryEvent<'_, io::Error>) {
    eprintln!("{} attempt {} failed: {}", event.function, event.attempt, event.error);
}

fn is_reset(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::ConnectionReset
}

mod reexport {
    pub use ai_retry::*;
}

#[derive(Clone)]
struct Request(String);

#[retry(
    max = 4,
    backoff = "decorrelated_jitter",
    initial = "1ms",
    max_delay = "2s",
    deadline = "1m",
    timeout = "1.5s",
    on = RateLimit | Timeout | Overloaded | Server | Connection,
    on_retry = log,
    on_give_up = log,
    budget = BUDGET,
    limiter = LIMITER,
    clone(request),
    crate = reexport
)]
async fn everything(request: Request) -> io::Result<String> {
    Ok(request.0)
}

#[retry(max = 2, backoff = "equal_jitter", initial = "1ms", when = is_reset, on_retry = log, limiter = LIMITER)]
fn with_when() -> io::Result<()> {
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(everything(Request("ok".into())).await.unwrap(), "ok");
    with_when().unwrap();
    let _ = ErrorClass::RateLimit;
}
