//! Token storms over loopback: the testkit's token mode (honest OpenAI and
//! Anthropic headers, the providers' 429 messages, buckets that refill
//! continuously) against the examples' clients, each call paying its estimated
//! tokens. Small storms of about two seconds each; the benches run the big ones.

mod common;

use std::time::Duration;

use ai_retry::{Limits, RateLimiter};
use ai_retry_examples::anthropic::Anthropic;
use ai_retry_examples::load::{self, Client, Load, LoadReport};
use ai_retry_examples::openai::OpenAi;
use ai_retry_examples::own_limiter;
use common::assert_none_early;
use retry_testkit::{Config, RequestRecord, TestServer, TokenLimit};

const PROMPTS: Option<(u32, u32)> = Some((200, 2000));

async fn storm<C: Client + Clone + Send + Sync + 'static>(client: C, calls: usize) -> LoadReport {
    load::drive(
        Load {
            calls,
            arrival: None,
        },
        |i, call| {
            let client = client.clone();
            async move { load::paced(&client, &load::prompt(i, PROMPTS), &call).await }
        },
    )
    .await
}

fn refused(requests: &[RequestRecord]) -> usize {
    requests.iter().filter(|r| r.status == 429).count()
}

fn openai(server: &TestServer, limiter: &'static RateLimiter) -> OpenAi {
    OpenAi::with_limiter(
        &server.openai_base_url(),
        Some("sk-tokens".into()),
        "gpt-4o-mini",
        Duration::from_secs(10),
        limiter,
    )
    .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_tokens_per_minute_are_learned_and_paid_per_call() {
    // 10,000 tokens a second; 30 prompts of 200 to 2,000 tokens spend about
    // three seconds' worth, so the bucket binds, not the requests.
    let limit = TokenLimit::tokens(600_000);
    let server = TestServer::start(Config::token_limited(limit))
        .await
        .expect("loopback server");
    let client = openai(&server, own_limiter());
    let report = storm(client.clone(), 30).await;
    let requests = server.requests();
    assert_eq!(report.ok, 30, "{}", report.summary());
    assert_eq!(requests.len(), report.requests);
    // First contact paces until the first answer teaches the limit: at most
    // a refusal or so, where a request-only limiter draws one per call.
    assert!(refused(&requests) <= 2, "{}", report.summary());
    assert_none_early(&requests);
    let learned = client.limiter().snapshot();
    assert_eq!(learned.tokens_per_minute, Some(600_000));
    // The requests were never the limit, so the rate was not lowered for them.
    assert_eq!(learned.throttles, 0, "{learned:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limiter_seeded_with_its_token_limit_sends_no_blind_wave() {
    let limit = TokenLimit::tokens(600_000);
    let server = TestServer::start(Config::token_limited(limit))
        .await
        .expect("loopback server");
    let seeded: &'static RateLimiter = Box::leak(Box::new(RateLimiter::with_limits(
        Limits::NONE.tokens(600_000),
    )));
    let report = storm(openai(&server, seeded), 30).await;
    let requests = server.requests();
    assert_eq!(report.ok, 30, "{}", report.summary());
    assert_eq!(refused(&requests), 0, "{}", report.summary());
    assert_eq!(requests.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_input_and_output_limits_pace_on_max_tokens() {
    // 5,000 output tokens a second; each call asks up to 1,024: the output
    // bucket binds, and remaining is rounded down to thousands (often 0).
    let limit = TokenLimit::input_output(600_000, 300_000);
    let server = TestServer::start(Config::token_limited(limit))
        .await
        .expect("loopback server");
    let client = Anthropic::with_limiter(
        &server.anthropic_base_url(),
        Some("sk-ant-tokens".into()),
        "claude-3-5-haiku-latest",
        Duration::from_secs(10),
        own_limiter(),
    )
    .expect("client");
    let report = storm(client.clone(), 15).await;
    let requests = server.requests();
    assert_eq!(report.ok, 15, "{}", report.summary());
    assert!(refused(&requests) <= 2, "{}", report.summary());
    assert_none_early(&requests);
    let learned = client.limiter().snapshot();
    assert_eq!(learned.input_tokens_per_minute, Some(600_000));
    assert_eq!(learned.output_tokens_per_minute, Some(300_000));
    // A rounded-down `remaining: 0` waits for this call's tokens, not for a
    // full bucket: the key never closed for a whole second at a time.
    // The log is in the order answers were finished: sort by arrival.
    let mut arrivals: Vec<Duration> = requests.iter().map(|r| r.at).collect();
    arrivals.sort();
    let gaps = arrivals.windows(2).map(|w| w[1] - w[0]);
    let widest = gaps.max().unwrap_or_default();
    assert!(widest < Duration::from_millis(900), "widest gap {widest:?}");
}
