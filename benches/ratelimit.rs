//! `cargo bench --bench ratelimit`: 200 concurrent callers of the `openai_chat`
//! client against `retry-testkit`'s rate-limit mode (50 requests/s, burst 1) on
//! loopback, under four retry policies. Reports amplification (requests sent per
//! call), requests refused for arriving before the time the server gave,
//! completion time against the ideal `200 / rate`, and p50/p99 call latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_retry::retry;
use ai_retry_examples::openai::OpenAi;
use ai_retry_examples::{ApiError, Call};
use backon::Retryable;
use retry_testkit::{Config, RateLimit, TestServer};

mod hintless;
use hintless::{Hintless, is_transient as transient};

const CALLERS: usize = 200;
const RATE: f64 = 50.0;

/// ai-retry's defaults (server hints honoured), with room to wait its turn.
#[retry(max = 40)]
async fn with_hints(client: &OpenAi, prompt: &str, call: &Call) -> Result<String, ApiError> {
    client.attempt(prompt, call).await
}

/// The same without hints: an error type that cannot report one.
#[retry(max = 40, when = hintless::transient)]
async fn ignoring_hints(client: &OpenAi, prompt: &str, call: &Call) -> Result<String, Hintless> {
    Ok(client.attempt(prompt, call).await?)
}

/// Plain exponential backoff, no jitter, no hints.
#[retry(max = 40, backoff = "exp", when = hintless::transient)]
async fn plain_exponential(client: &OpenAi, prompt: &str, call: &Call) -> Result<String, Hintless> {
    Ok(client.attempt(prompt, call).await?)
}

/// backon's exponential backoff with jitter, from the same 500 ms.
async fn backon_jitter(client: &OpenAi, prompt: &str, call: &Call) -> Result<String, ApiError> {
    let policy = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_jitter()
        .with_max_times(39);
    (|| client.attempt(prompt, call))
        .retry(policy)
        .when(transient)
        .await
}

#[derive(Clone, Copy)]
enum Policy {
    WithHints,
    IgnoringHints,
    BackonJitter,
    PlainExponential,
}

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Policy::WithHints => "ai-retry, hints honoured (default)",
            Policy::IgnoringHints => "ai-retry, hints ignored",
            Policy::BackonJitter => "backon with jitter",
            Policy::PlainExponential => "plain exponential",
        }
    }

    /// One call: its attempts share an idempotency key, so the server can tell
    /// a retry that came back too early.
    async fn call(self, client: &OpenAi, prompt: &str) -> Result<String, ApiError> {
        let call = Call::new();
        match self {
            Policy::WithHints => with_hints(client, prompt, &call).await,
            Policy::IgnoringHints => ignoring_hints(client, prompt, &call).await.map_err(|h| h.0),
            Policy::BackonJitter => backon_jitter(client, prompt, &call).await,
            Policy::PlainExponential => plain_exponential(client, prompt, &call)
                .await
                .map_err(|h| h.0),
        }
    }
}

struct Outcome {
    requests: usize,
    early: usize,
    failed: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

async fn run(policy: Policy) -> Outcome {
    let server = TestServer::start(Config::rate_limited(RateLimit::new(RATE, 1).reserving()))
        .await
        .unwrap();
    let client = Arc::new(
        OpenAi::new(
            &server.openai_base_url(),
            Some("sk-bench".into()),
            "gpt-4o-mini",
            Duration::from_secs(30),
        )
        .unwrap(),
    );
    let start = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let began = Instant::now();
                let result = policy.call(&client, &format!("caller {i}")).await;
                (result.is_ok(), began.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (ok, latency) = task.await.unwrap();
        failed += usize::from(!ok);
        latencies.push(latency);
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    let requests = server.requests();
    Outcome {
        requests: requests.len(),
        early: requests.iter().filter(|r| r.early).count(),
        failed,
        elapsed,
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ideal = Duration::from_secs_f64(CALLERS as f64 / RATE);
    println!(
        "{CALLERS} concurrent callers, {RATE} requests/s per key (burst 1), ideal completion {ideal:.1?}"
    );
    println!(
        "| policy | requests / call | early requests | failed calls | completion | vs ideal | p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for policy in [
        Policy::WithHints,
        Policy::IgnoringHints,
        Policy::BackonJitter,
        Policy::PlainExponential,
    ] {
        let o = runtime.block_on(run(policy));
        println!(
            "| {} | {:.2} | {} | {} | {:.2} s | {:.2}x | {:.2} s | {:.2} s |",
            policy.name(),
            o.requests as f64 / CALLERS as f64,
            o.early,
            o.failed,
            o.elapsed.as_secs_f64(),
            o.elapsed.as_secs_f64() / ideal.as_secs_f64(),
            o.p50.as_secs_f64(),
            o.p99.as_secs_f64(),
        );
    }
}
