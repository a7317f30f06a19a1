//! A short chaos soak in the suite (the long one is `cargo run --release
//! --example chaos -- --calls 50000 --concurrency 200`): every fault at random,
//! and every promise checked.

use ai_retry_examples::chaos::{Report, Soak, soak};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_chaotic_calls_keep_every_promise() {
    let report = soak(Soak {
        calls: 500,
        concurrency: 100,
        seed: 42,
        progress: false,
    })
    .await
    .expect("the soak runs");
    assert!(report.problems().is_empty(), "{:#?}", report.problems());
    assert_eq!(report.panics, 0);
    assert_eq!(report.deadline_overruns, 0);
    assert_eq!(report.early, 0);
    assert!(report.lost_errors.is_empty(), "{:?}", report.lost_errors);
    assert_eq!(report.leaked_secrets, 0);
    // The mix really was chaotic: answers, retried failures and permanent ones.
    assert!(report.ok > 0);
    for kind in ["429", "drop", "malformed", "hang", "529"] {
        assert!(
            report.faults.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} in {:?}",
            report.faults
        );
    }
    // Memory: the run keeps summaries, not logs; and the check can fail.
    assert_eq!(report.rss_trace.len(), 10, "{:?}", report.rss_trace);
    let mut grown = Report {
        rss_trace: vec![50_000; 10],
        ..Report::default()
    };
    assert_eq!(grown.memory_growth(), None);
    grown.rss_trace[9] = 50_000 + 5_000 + 4 * 1024 + 1;
    assert!(grown.memory_growth().is_some());
    assert!(
        report.rss_kib.1 < report.rss_kib.0 + 32 * 1024,
        "{:?}",
        report.rss_kib
    );
}
