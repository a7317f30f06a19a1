//! The loops' counters and histograms, seen by a debugging recorder.

#![cfg(feature = "metrics")]

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use retry_runtime::{ErrorClass, Policy, RateLimiter, Retry};

fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

/// Every metric the closure reported: counters as totals, histograms as their values.
fn seen(run: impl FnOnce()) -> (HashMap<String, u64>, HashMap<String, Vec<f64>>) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, run);
    let (mut counters, mut histograms) = (HashMap::new(), HashMap::new());
    for (composite, _, _, value) in snapshotter.snapshot().into_vec() {
        let (_, key_) = composite.into_parts();
        let labels: Vec<(String, String)> = key_
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        let borrowed: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let name = key(key_.name(), &borrowed);
        match value {
            DebugValue::Counter(n) => {
                counters.insert(name, n);
            }
            DebugValue::Histogram(values) => {
                histograms.insert(name, values.into_iter().map(|v| v.into_inner()).collect());
            }
            DebugValue::Gauge(_) => {}
        }
    }
    (counters, histograms)
}

#[test]
fn attempts_retries_by_class_give_ups_by_reason_and_sleeps() {
    let (counters, histograms) = seen(|| {
        let policy = Policy::new()
            .max_attempts(3)
            .initial(Duration::from_millis(1))
            .backoff(retry_runtime::Backoff::Constant);
        let mut calls = 0;
        let result: io::Result<()> = Retry::classified(policy).named("chat").run(|| {
            calls += 1;
            Err(io::ErrorKind::ConnectionReset.into())
        });
        assert!(result.is_err());
        let ok: io::Result<u32> = Retry::classified(policy).named("chat").run(|| Ok(1));
        assert!(ok.is_ok());
        let permanent: io::Result<()> = Retry::classified(policy)
            .named("other")
            .run(|| Err(io::ErrorKind::PermissionDenied.into()));
        assert!(permanent.is_err());
    });
    let connection = ErrorClass::Connection.name();
    // Failed attempts only: the success path reports nothing (and allocates nothing).
    assert_eq!(
        counters[&key(
            "ai_retry_failed_attempts_total",
            &[("function", "chat"), ("class", connection)]
        )],
        3
    );
    let permanent = ErrorClass::Permanent.name();
    assert_eq!(
        counters[&key(
            "ai_retry_failed_attempts_total",
            &[("function", "other"), ("class", permanent)]
        )],
        1
    );
    assert_eq!(
        counters[&key(
            "ai_retry_retries_total",
            &[("function", "chat"), ("class", connection)]
        )],
        2
    );
    assert_eq!(
        counters[&key(
            "ai_retry_give_ups_total",
            &[("function", "chat"), ("reason", "max_attempts")]
        )],
        1
    );
    assert_eq!(
        counters[&key(
            "ai_retry_give_ups_total",
            &[("function", "other"), ("reason", "not_retryable")]
        )],
        1
    );
    assert_eq!(
        histograms[&key("ai_retry_sleep_seconds", &[("function", "chat")])],
        [0.001, 0.001]
    );
}

#[test]
fn limiter_waits_are_a_histogram() {
    static LIMITER: RateLimiter = RateLimiter::per_minute(6000);
    let (_, histograms) = seen(|| {
        for _ in 0..3 {
            let turn = LIMITER.turn_blocking(Duration::from_secs(1)).unwrap();
            LIMITER.succeeded(turn);
        }
    });
    let waits = &histograms[&key("ai_retry_limiter_wait_seconds", &[])];
    assert!(!waits.is_empty(), "{histograms:?}");
    assert!(waits.iter().all(|w| *w < 0.5), "{waits:?}");
}

#[test]
fn a_limiter_that_gives_no_turn_is_a_give_up() {
    static COOLED: RateLimiter = RateLimiter::new();
    let turn = COOLED.turn_blocking(Duration::ZERO).unwrap();
    COOLED.failed(turn, ErrorClass::RateLimit, Some(Duration::from_secs(3600)));
    let (counters, _) = seen(|| {
        // Within max_delay of the minute the hour's hint closes the key for.
        let policy = Policy::new().max_delay(Duration::from_secs(10));
        let result: io::Result<()> = Retry::classified(policy)
            .named("cooled")
            .run_limited(&COOLED, || unreachable!("no turn, no attempt"));
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::WouldBlock);
    });
    assert_eq!(
        counters[&key(
            "ai_retry_give_ups_total",
            &[("function", "cooled"), ("reason", "limiter")]
        )],
        1
    );
}
