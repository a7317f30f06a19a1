//! With the `tracing` feature, every retry is one event, and no event carries
//! the error's text (which could hold a request, a URL or a key).
#![cfg(feature = "tracing")]

use retry_runtime::{Backoff, Classify, ErrorClass, Policy, Retry};
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Writes every event's fields into a shared string.
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = self.0.lock().unwrap();
        event.record(&mut Fields(&mut text));
        text.push('\n');
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// An error whose text holds a key, as an HTTP error's might.
#[derive(Debug)]
struct KeyInError(&'static str);

impl std::fmt::Display for KeyInError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request failed with {}", self.0)
    }
}

impl Classify for KeyInError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Server
    }
}

#[test]
fn one_event_per_retry_one_for_giving_up_and_no_error_text() {
    let captured = Arc::new(Mutex::new(String::new()));
    let policy = Policy::new().max_attempts(3).backoff(Backoff::None);
    tracing::subscriber::with_default(Capture(captured.clone()), || {
        let result: Result<(), _> = Retry::classified(policy)
            .named("chat")
            .run(|| Err(KeyInError("Bearer sk-live-SECRET")));
        assert!(result.is_err());
    });
    let text = captured.lock().unwrap().clone();
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("retrying after a failed attempt"))
            .count(),
        2,
        "{text}"
    );
    let give_up: Vec<&str> = text.lines().filter(|l| l.contains("giving up")).collect();
    assert_eq!(give_up.len(), 1, "{text}");
    assert!(give_up[0].contains("reason=\"max_attempts\""), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("function=\"chat\"") && text.contains("class=\"Server\""),
        "{text}"
    );
    assert!(!text.contains("SECRET"), "{text}");
}

/// A 429 whose server asks for 150 ms.
#[derive(Debug)]
struct Refused;

impl Classify for Refused {
    fn class(&self) -> ErrorClass {
        ErrorClass::RateLimit
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_millis(150))
    }
}

impl From<retry_runtime::Throttled> for Refused {
    fn from(_: retry_runtime::Throttled) -> Refused {
        Refused
    }
}

#[test]
fn under_no_delays_the_line_still_says_the_limiter_holds_the_call() {
    use retry_runtime::{RateLimiter, testing};

    let limiter = RateLimiter::new();
    let captured = Arc::new(Mutex::new(String::new()));
    let policy = Policy::new().max_attempts(2).backoff(Backoff::None);
    tracing::subscriber::with_default(Capture(captured.clone()), || {
        let _guard = testing::no_delays();
        // The refusal cools the key down for 150 ms: the retry's own sleep is
        // zero under the switch, the limiter's hold is not.
        let result: Result<(), Refused> =
            Retry::classified(policy).run_limited(&limiter, || Err(Refused));
        assert!(result.is_err());
    });
    let text = captured.lock().unwrap().clone();
    let retrying = text
        .lines()
        .find(|l| l.contains("retrying after a failed attempt"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(retrying.contains("delay_ms=0"), "{retrying}");
    let held: u64 = retrying
        .split("limiter_wait_ms=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("{retrying}"));
    assert!((100..=150).contains(&held), "{retrying}");
}
