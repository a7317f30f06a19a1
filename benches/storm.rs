//! `cargo bench --bench storm`: a 429 storm against `retry-testkit`'s realistic
//! rate-limit mode (one bucket per key, burst 1, the same `retry-after` to every
//! refused caller, nothing reserved), on loopback. Each scenario runs under four
//! policies, all with `openai_chat`'s numbers (4 attempts, 250 ms initial):
//! ai-retry without a limiter, ai-retry with the shared `RateLimiter`, backon
//! with jitter, and plain exponential backoff.
//!
//! (a) 100 callers at once, 20 req/s, the limit header sent; (b) 200 callers
//! arriving 30/s; (c) (a) without the limit header (adaptation alone); (d) two
//! keys with different limits (20/s and 5/s, 50 callers each), sharing nothing.

use std::sync::Arc;
use std::time::Duration;

use ai_retry::retry;
use ai_retry_examples::load::{self, Load, LoadReport};
use ai_retry_examples::openai::OpenAi;
use ai_retry_examples::{ApiError, Call, own_limiter};
use backon::Retryable;
use retry_testkit::{Config, RateLimit, TestServer};

mod hintless;
use hintless::{Hintless, is_transient as transient};

/// Plain exponential backoff, no jitter, no hints.
#[retry(max = 4, backoff = "exp", initial = "250ms", max_delay = "30s", when = hintless::transient)]
async fn plain_exponential(client: &OpenAi, prompt: &str, call: &Call) -> Result<String, Hintless> {
    Ok(client.attempt(prompt, call).await?)
}

/// backon's exponential backoff with jitter, from the same 250 ms, no hints.
async fn backon_jitter(client: &OpenAi, prompt: &str, call: &Call) -> Result<String, ApiError> {
    let policy = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .with_max_times(3);
    (|| client.attempt(prompt, call))
        .retry(policy)
        .when(transient)
        .await
}

#[derive(Clone, Copy, PartialEq)]
enum Policy {
    NoLimiter,
    Limiter,
    BackonJitter,
    PlainExponential,
}

impl Policy {
    const ALL: [Policy; 4] = [
        Policy::NoLimiter,
        Policy::Limiter,
        Policy::BackonJitter,
        Policy::PlainExponential,
    ];

    fn name(self) -> &'static str {
        match self {
            Policy::NoLimiter => "ai-retry, no limiter",
            Policy::Limiter => "ai-retry + RateLimiter",
            Policy::BackonJitter => "backon with jitter",
            Policy::PlainExponential => "plain exponential",
        }
    }

    async fn call(
        self,
        client: OpenAi,
        prompt: String,
        call: Arc<Call>,
    ) -> Result<String, ApiError> {
        match self {
            Policy::NoLimiter => load::unpaced(&client, &prompt, &call).await,
            Policy::Limiter => load::paced(&client, &prompt, &call).await,
            Policy::BackonJitter => backon_jitter(&client, &prompt, &call).await,
            Policy::PlainExponential => plain_exponential(&client, &prompt, &call)
                .await
                .map_err(|hintless| hintless.0),
        }
    }
}

/// One key: its server's limit, the callers on it and how they arrive.
#[derive(Clone, Copy)]
struct Key {
    limit: RateLimit,
    load: Load,
}

struct Scenario {
    name: &'static str,
    keys: Vec<Key>,
}

impl Scenario {
    /// N / R: the time the slowest key needs at its limit.
    fn ideal(&self) -> Duration {
        let slowest = self
            .keys
            .iter()
            .map(|key| key.load.calls as f64 / key.limit.per_second)
            .fold(0.0, f64::max);
        Duration::from_secs_f64(slowest)
    }

    fn calls(&self) -> usize {
        self.keys.iter().map(|key| key.load.calls).sum()
    }
}

/// What the servers saw, beside what the clients saw.
struct Outcome {
    client: LoadReport,
    requests: usize,
    refused: usize,
}

async fn run(scenario: &Scenario, policy: Policy) -> Outcome {
    let mut runs = Vec::new();
    for (k, key) in scenario.keys.iter().enumerate() {
        let server = TestServer::start(Config::rate_limited(key.limit))
            .await
            .expect("loopback server");
        // Each key its own limiter: keys share nothing.
        let client = OpenAi::with_limiter(
            &server.openai_base_url(),
            Some(format!("sk-storm-{k}")),
            "gpt-4o-mini",
            Duration::from_secs(30),
            own_limiter(),
        )
        .expect("client");
        let load = key.load;
        runs.push(tokio::spawn(async move {
            let report = load::drive(load, |i, call| {
                policy.call(client.clone(), format!("caller {i}"), call)
            })
            .await;
            (report, server.requests())
        }));
    }
    let mut outcome = Outcome {
        client: LoadReport::default(),
        requests: 0,
        refused: 0,
    };
    for run in runs {
        let (report, requests) = run.await.expect("load task");
        outcome.client = std::mem::take(&mut outcome.client).merge(report);
        outcome.requests += requests.len();
        outcome.refused += requests.iter().filter(|r| r.status == 429).count();
    }
    outcome
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let at_once = |calls| Load {
        calls,
        arrival: None,
    };
    let scenarios = [
        Scenario {
            name: "(a) 100 at once, 20/s, limit header",
            keys: vec![Key {
                limit: RateLimit::new(20.0, 1),
                load: at_once(100),
            }],
        },
        Scenario {
            name: "(b) 200 arriving 30/s, 20/s",
            keys: vec![Key {
                limit: RateLimit::new(20.0, 1),
                load: Load {
                    calls: 200,
                    arrival: Some(30.0),
                },
            }],
        },
        Scenario {
            name: "(c) 100 at once, 20/s, no limit header",
            keys: vec![Key {
                limit: RateLimit::new(20.0, 1).without_limit_header(),
                load: at_once(100),
            }],
        },
        Scenario {
            name: "(d) two keys: 50 at 20/s + 50 at 5/s",
            keys: vec![
                Key {
                    limit: RateLimit::new(20.0, 1),
                    load: at_once(50),
                },
                Key {
                    limit: RateLimit::new(5.0, 1),
                    load: at_once(50),
                },
            ],
        },
    ];
    println!(
        "retry-testkit realistic rate-limit mode (burst 1, retry-after in whole seconds, nothing reserved), loopback"
    );
    println!(
        "| scenario | policy | ok | requests / success | 429s | completion | vs ideal N/R | p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for scenario in &scenarios {
        let ideal = scenario.ideal();
        for policy in Policy::ALL {
            let o = runtime.block_on(run(scenario, policy));
            println!(
                "| {} | {} | {}/{} | {:.2} | {} | {:.2} s | {:.2}x | {:.2} s | {:.2} s |",
                scenario.name,
                policy.name(),
                o.client.ok,
                scenario.calls(),
                o.requests as f64 / o.client.ok as f64,
                o.refused,
                o.client.wall.as_secs_f64(),
                o.client.wall.as_secs_f64() / ideal.as_secs_f64(),
                o.client.latency(0.5).as_secs_f64(),
                o.client.latency(0.99).as_secs_f64(),
            );
        }
    }
}
