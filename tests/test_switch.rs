//! The test switch: every delay zero (and attempts capped) on this thread while
//! the guard lives, blocking and async; nothing leaks past the guard.

use ai_retry::{retry, testing};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[retry(max = 5, backoff = "constant", initial = "2s", on = Connection)]
fn blocking(calls: &AtomicU32) -> io::Result<()> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(io::ErrorKind::ConnectionReset.into())
}

#[test]
fn a_five_attempt_blocking_failure_returns_at_once() {
    let calls = AtomicU32::new(0);
    let started = Instant::now();
    {
        let _no_delays = testing::no_delays();
        assert!(blocking(&calls).is_err());
    }
    let took = started.elapsed();
    assert_eq!(calls.load(Ordering::SeqCst), 5, "every attempt still made");
    // 4 × 2 s of backoff without the switch; none with it.
    assert!(took < Duration::from_millis(5), "{took:?}");
}

#[test]
fn attempts_can_be_capped_and_the_switch_ends_with_its_guard() {
    let calls = AtomicU32::new(0);
    {
        let _no_delays = testing::no_delays().max_attempts(2);
        assert!(blocking(&calls).is_err());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Off again once the guard is dropped: a retry sleeps its backoff.
    #[retry(max = 2, backoff = "constant", initial = "30ms", on = Connection)]
    fn slept(calls: &AtomicU32) -> io::Result<()> {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(io::ErrorKind::ConnectionReset.into())
    }
    let started = Instant::now();
    assert!(slept(&calls).is_err());
    assert!(started.elapsed() >= Duration::from_millis(30));
}

#[retry(max = 4, backoff = "constant", initial = "10s", on = Connection)]
async fn asynchronous(calls: &AtomicU32) -> io::Result<()> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(io::ErrorKind::ConnectionReset.into())
}

#[tokio::test]
async fn async_calls_on_this_thread_sleep_zero_too() {
    let _no_delays = testing::no_delays();
    let calls = AtomicU32::new(0);
    let started = Instant::now();
    assert!(asynchronous(&calls).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert!(started.elapsed() < Duration::from_millis(50));
}

#[test]
fn another_thread_is_not_switched() {
    let _no_delays = testing::no_delays();
    let handle = std::thread::spawn(|| {
        #[retry(max = 2, backoff = "constant", initial = "30ms", on = Connection)]
        fn elsewhere() -> io::Result<()> {
            Err(io::ErrorKind::ConnectionReset.into())
        }
        let started = Instant::now();
        assert!(elsewhere().is_err());
        started.elapsed()
    });
    assert!(handle.join().unwrap() >= Duration::from_millis(30));
}

/// Whether the switch is on, read through a call: a one-failure function
/// with a 30 ms backoff returns at once only with the switch on (with an
/// attempt cap of one it returns its failure, at once too).
fn switch_on() -> bool {
    #[retry(max = 2, backoff = "constant", initial = "30ms", on = Connection)]
    fn probe(calls: &AtomicU32) -> io::Result<()> {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        Ok(())
    }
    let started = Instant::now();
    let _ = probe(&AtomicU32::new(0));
    started.elapsed() < Duration::from_millis(20)
}

#[test]
fn nested_guards_dropped_in_either_order_leave_the_switch_right() {
    // Dropped in the order made: the outer one keeps it on.
    let outer = testing::no_delays();
    let inner = testing::no_delays().max_attempts(1);
    drop(outer);
    assert!(switch_on(), "the inner guard still lives");
    drop(inner);
    assert!(!switch_on(), "every guard gone");
    // Dropped inner first: the outer one's settings come back.
    let outer = testing::no_delays();
    {
        let _inner = testing::no_delays().max_attempts(1);
        let calls = AtomicU32::new(0);
        assert!(blocking(&calls).is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the inner cap");
    }
    let calls = AtomicU32::new(0);
    assert!(blocking(&calls).is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 5, "the outer has no cap");
    assert!(switch_on());
    drop(outer);
    assert!(!switch_on());
}
