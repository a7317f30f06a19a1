//! The shared limiter over loopback, against the testkit's realistic rate-limit
//! mode: one bucket for the key, the same `retry-after` to every refused caller.

mod common;

use std::time::Duration;

use ai_retry_examples::load::{self, Load};
use ai_retry_examples::openai::OpenAi;
use ai_retry_examples::own_limiter;
use common::assert_none_early;
use retry_testkit::{Config, RateLimit, TestServer};

async fn storm(limit: RateLimit, calls: usize) -> (load::LoadReport, TestServer, OpenAi) {
    let server = TestServer::start(Config::rate_limited(limit))
        .await
        .expect("loopback server");
    let client = OpenAi::with_limiter(
        &server.openai_base_url(),
        Some("sk-one-key".into()),
        "gpt-4o-mini",
        Duration::from_secs(10),
        own_limiter(),
    )
    .expect("client");
    let report = load::drive(
        Load {
            calls,
            arrival: None,
        },
        |i, call| {
            let client = client.clone();
            async move { load::paced(&client, &format!("caller {i}"), &call).await }
        },
    )
    .await;
    (report, server, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_limiter_gets_every_caller_in_with_one_retry_each() {
    let (report, server, client) = storm(RateLimit::new(20.0, 1), 40).await;
    let requests = server.requests();
    assert_eq!(report.ok, 40, "{}", report.summary());
    // The first wave, sent before any answer, is the only waste: one retry each.
    assert!(requests.len() <= 80, "{}", report.summary());
    assert_eq!(requests.len(), report.requests);
    assert_none_early(&requests);
    let learned = client.limiter().snapshot();
    assert_eq!(learned.limit_per_minute, Some(1200));
    assert!(learned.rate.is_some_and(|r| r <= 20.0));
    // After the cool-down, turns were paced below the limit: no second wave of 429s.
    let second_wave: Vec<_> = requests.iter().filter(|r| r.attempt == Some(2)).collect();
    assert!(
        second_wave.iter().all(|r| r.status == 200),
        "{second_wave:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_limit_header_the_rate_is_learned() {
    let (report, server, client) = storm(RateLimit::new(20.0, 1).without_limit_header(), 30).await;
    assert_eq!(report.ok, 30, "{}", report.summary());
    assert!(report.requests_per_success() <= 3.0, "{}", report.summary());
    assert_none_early(&server.requests());
    let learned = client.limiter().snapshot();
    assert_eq!(learned.limit_per_minute, None);
    assert!(learned.throttles >= 1, "{learned:?}");
}
