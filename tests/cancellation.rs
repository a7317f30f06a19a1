//! Dropping a retrying call at any await point, or shutting its runtime down,
//! stops it: no further attempt, no leaked task or state, no panic.

use ai_retry::{Classify, ErrorClass, retry};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Debug)]
struct Flaky;

impl Classify for Flaky {
    fn class(&self) -> ErrorClass {
        ErrorClass::Server
    }
}

/// Counts attempts begun and in-flight requests dropped.
#[derive(Default)]
struct Counters {
    begun: AtomicU32,
    dropped_in_flight: AtomicU32,
    finished: AtomicU32,
}

struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dropped_in_flight.fetch_add(1, Ordering::SeqCst);
    }
}

/// Each attempt is a 100 ms "request" that fails; 1 s between attempts.
#[retry(max = 5, backoff = "constant", initial = "1s")]
async fn call(counters: &Counters) -> Result<(), Flaky> {
    counters.begun.fetch_add(1, Ordering::SeqCst);
    let guard = InFlight(counters);
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::mem::forget(guard);
    counters.finished.fetch_add(1, Ordering::SeqCst);
    Err(Flaky)
}

#[tokio::test(start_paused = true)]
async fn dropping_at_every_await_point_stops_the_call() {
    // Attempts run over [0, 100), [1100, 1200), [2200, 2300) … (ms); cut the call
    // off mid-request, mid-sleep, and at each edge between them.
    for cut_at in [
        0, 1, 50, 99, 100, 101, 600, 1099, 1100, 1150, 1200, 1700, 2250, 4000,
    ] {
        let counters = Counters::default();
        let cut = tokio::time::timeout(Duration::from_millis(cut_at), call(&counters)).await;
        assert!(cut.is_err(), "cut at {cut_at} ms");
        let begun = counters.begun.load(Ordering::SeqCst);
        let finished = counters.finished.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(
            counters.begun.load(Ordering::SeqCst),
            begun,
            "no attempt after the drop at {cut_at} ms"
        );
        // Every attempt either finished or had its request dropped with the call.
        let dropped = counters.dropped_in_flight.load(Ordering::SeqCst);
        assert_eq!(finished + dropped, begun, "cut at {cut_at} ms");
    }
}

#[test]
fn shutting_the_runtime_down_mid_retry_stops_the_call_and_frees_its_state() {
    let counters = Arc::new(Counters::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let task_counters = counters.clone();
    runtime.spawn(async move { call(&task_counters).await });
    // Let the first attempt fail; the call is now in its 1 s backoff sleep.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counters.begun.load(Ordering::SeqCst), 1);
    runtime.shutdown_timeout(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        counters.begun.load(Ordering::SeqCst),
        1,
        "no attempt after shutdown"
    );
    assert_eq!(
        Arc::strong_count(&counters),
        1,
        "the task and its state were dropped"
    );
}
