//! `on_retry` / `on_give_up` as closures evaluated in the function's scope:
//! they see the call's own arguments, async and blocking, with and without a
//! limiter, beside `fn` hooks, and the future stays `Send`.

use ai_retry::{ErrorClass, GiveUp, RateLimiter, RetryEvent, retry};
use std::cell::RefCell;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

fn reset() -> io::Error {
    io::ErrorKind::ConnectionReset.into()
}

#[retry(max = 3, initial = "1s", on = Connection,
    on_retry = |event| log.lock().unwrap().push(format!("{request_id}: retry after attempt {}", event.attempt)),
    on_give_up = |event| log.lock().unwrap().push(format!("{request_id}: gave up ({:?})", event.give_up)))]
async fn chat(request_id: &str, log: &Mutex<Vec<String>>) -> io::Result<String> {
    Err(reset())
}

#[tokio::test(start_paused = true)]
async fn a_closure_hook_logs_which_request_retried() {
    let log = Mutex::new(Vec::new());
    let (first, second) = tokio::join!(chat("req-1", &log), chat("req-2", &log));
    assert!(first.is_err() && second.is_err());
    let mut lines = log.into_inner().unwrap();
    lines.sort();
    assert_eq!(
        lines,
        [
            "req-1: gave up (Some(MaxAttempts))",
            "req-1: retry after attempt 1",
            "req-1: retry after attempt 2",
            "req-2: gave up (Some(MaxAttempts))",
            "req-2: retry after attempt 1",
            "req-2: retry after attempt 2",
        ]
    );
}

#[retry(max = 4, initial = "1ms", on = Connection, on_retry = |event| seen.borrow_mut().push((event.attempt, event.class)))]
fn blocking(calls: &mut u32, seen: &RefCell<Vec<(u32, Option<ErrorClass>)>>) -> io::Result<u32> {
    *calls += 1;
    match *calls {
        1 | 2 => Err(reset()),
        n => Ok(n),
    }
}

#[test]
fn a_blocking_function_takes_a_closure_too() {
    let seen = RefCell::new(Vec::new());
    let mut calls = 0;
    assert_eq!(blocking(&mut calls, &seen).unwrap(), 3);
    let connection = Some(ErrorClass::Connection);
    assert_eq!(seen.into_inner(), [(1, connection), (2, connection)]);
}

/// Cooled down for an hour by another caller's refusal.
static COOLED: RateLimiter = RateLimiter::new();

fn count(_: &RetryEvent<'_, io::Error>) {}

#[retry(max = 3, initial = "1ms", max_delay = "10s", limiter = COOLED, on_retry = count,
    on_give_up = move |event| *reason.lock().unwrap() = event.give_up.map(|why| (id, why)))]
async fn limited(id: u32, reason: &Mutex<Option<(u32, GiveUp)>>) -> io::Result<()> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_closure_hears_the_limiter_give_up_beside_a_fn_hook() {
    let turn = COOLED.turn(Duration::ZERO).await.unwrap();
    COOLED.failed(turn, ErrorClass::RateLimit, Some(Duration::from_secs(3600)));
    let reason = Mutex::new(None);
    assert!(limited(7, &reason).await.is_err());
    assert_eq!(reason.into_inner().unwrap(), Some((7, GiveUp::Limiter)));
}

#[retry(max = 2, initial = "1ms", on = Connection, on_retry = |_| tracing_like(tag))]
async fn spawned(tag: &'static str) -> io::Result<()> {
    Err(reset())
}

fn tracing_like(_: &str) {}

#[tokio::test(start_paused = true)]
async fn a_function_with_a_closure_hook_can_be_spawned() {
    let handle = tokio::spawn(spawned("task"));
    assert!(handle.await.unwrap().is_err());
}
