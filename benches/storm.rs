//! `cargo bench --bench storm`: 429 storms against `retry-testkit`'s realistic
//! rate-limit mode (one bucket per key and limit, the same `retry-after` to
//! every refused caller, nothing reserved), on loopback, each under several
//! policies with `openai_chat`'s numbers (4 attempts, 250 ms initial): ai-retry
//! without a limiter, with a limiter that knows only requests, with the
//! token-aware limiter (each call pays its estimated tokens), backon with
//! jitter, and plain exponential backoff.
//!
//! Requests, burst 1: (a) 100 callers at once, 20 req/s, the limit header
//! sent; (b) 200 callers arriving 30/s; (c) (a) without the limit header
//! (adaptation alone); (d) two keys with different limits (20/s and 5/s, 50
//! callers each), sharing nothing; (e) (b) with answers that take 2 s.
//! Tokens, prompts of 200 to 2,000 tokens, 100 callers at once: (f) OpenAI
//! 600k tokens a minute enforced per second; (g) 60k a minute, a minute's
//! bucket; (h) Anthropic 600k input and 300k output tokens a minute, each call
//! asking up to 1,024 output tokens; (i) (f) with answers that take 3 s.

use std::sync::Arc;
use std::time::Duration;

use ai_retry::retry;
use ai_retry_examples::anthropic::Anthropic;
use ai_retry_examples::load::{self, Client, Load, LoadReport};
use ai_retry_examples::openai::OpenAi;
use ai_retry_examples::{ApiError, Call, own_limiter};
use backon::Retryable;
use retry_testkit::{Config, RateLimit, TestServer, TokenLimit};

mod hintless;
mod support;
use hintless::{Hintless, is_transient as transient};

/// Plain exponential backoff, no jitter, no hints.
#[retry(max = 4, backoff = "exp", initial = "250ms", max_delay = "60s", when = hintless::transient)]
async fn plain_exponential(
    client: &impl Client,
    prompt: &str,
    call: &Call,
) -> Result<String, Hintless> {
    Ok(client.attempt(prompt, call).await?)
}

/// backon's exponential backoff with jitter, from the same 250 ms, no hints.
async fn backon_jitter(
    client: &impl Client,
    prompt: &str,
    call: &Call,
) -> Result<String, ApiError> {
    let policy = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(60))
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
    RequestsOnly,
    Limiter,
    BackonJitter,
    PlainExponential,
}

/// The policies of a storm of requests: the limiter knows no token limit there.
const REQUEST_POLICIES: &[Policy] = &[
    Policy::NoLimiter,
    Policy::Limiter,
    Policy::BackonJitter,
    Policy::PlainExponential,
];

/// The policies of a storm of tokens: no limiter, one that paces requests
/// only, and one that pays each call's tokens.
const TOKEN_POLICIES: &[Policy] = &[Policy::NoLimiter, Policy::RequestsOnly, Policy::Limiter];

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Policy::NoLimiter => "ai-retry, no limiter",
            Policy::RequestsOnly => "ai-retry + RateLimiter, requests only",
            Policy::Limiter => "ai-retry + RateLimiter",
            Policy::BackonJitter => "backon with jitter",
            Policy::PlainExponential => "plain exponential",
        }
    }

    async fn call(
        self,
        client: impl Client,
        prompt: String,
        call: Arc<Call>,
    ) -> Result<String, ApiError> {
        match self {
            Policy::NoLimiter => load::unpaced(&client, &prompt, &call).await,
            Policy::RequestsOnly => load::paced_by_requests(&client, &prompt, &call).await,
            Policy::Limiter => load::paced(&client, &prompt, &call).await,
            Policy::BackonJitter => backon_jitter(&client, &prompt, &call).await,
            Policy::PlainExponential => plain_exponential(&client, &prompt, &call)
                .await
                .map_err(|hintless| hintless.0),
        }
    }
}

/// The API a key speaks.
#[derive(Clone, Copy)]
enum Api {
    OpenAi,
    Anthropic,
}

/// One key: its server, the API, the callers on it and their prompt sizes.
#[derive(Clone)]
struct Key {
    server: Config,
    api: Api,
    load: Load,
    sizes: Option<(u32, u32)>,
}

impl Key {
    fn requests(limit: RateLimit, load: Load) -> Key {
        Key {
            server: Config::rate_limited(limit),
            api: Api::OpenAi,
            load,
            sizes: None,
        }
    }

    fn tokens(api: Api, limit: TokenLimit, calls: usize) -> Key {
        Key {
            server: Config::token_limited(limit),
            api,
            load: Load {
                calls,
                arrival: None,
            },
            sizes: Some((200, 2000)),
        }
    }

    fn answering_after(mut self, latency: Duration) -> Key {
        self.server = self.server.with_latency(latency);
        self
    }

    fn prompt(&self, i: usize) -> String {
        load::prompt(i, self.sizes)
    }

    /// The least time the key's limits allow: for each limit, what the calls
    /// spend of it beyond its first bucket, at its rate (N / R for requests,
    /// whose bucket holds one); then the last answer's time once.
    fn ideal(&self) -> Duration {
        let latency = self.server.latency;
        if let Some(limit) = self.server.rate_limit {
            return Duration::from_secs_f64(self.load.calls as f64 / limit.per_second) + latency;
        }
        let limit = self
            .server
            .tokens
            .expect("a storm limits requests or tokens");
        let client = self.client("http://127.0.0.1:9");
        let costs: Vec<ai_retry::Cost> = (0..self.load.calls)
            .map(|i| client.cost_of(&self.prompt(i)))
            .collect();
        load::token_ideal(&limit, &costs) + latency
    }

    /// A client of this key's API at `base_url`, with a limiter of its own.
    fn client(&self, base_url: &str) -> Either {
        let timeout = Duration::from_secs(30);
        match self.api {
            Api::OpenAi => Either::OpenAi(
                OpenAi::with_limiter(
                    base_url,
                    Some("sk-storm".into()),
                    "gpt-4o-mini",
                    timeout,
                    own_limiter(),
                )
                .expect("client"),
            ),
            Api::Anthropic => Either::Anthropic(
                Anthropic::with_limiter(
                    base_url,
                    Some("sk-storm".into()),
                    "claude-3-5-haiku-latest",
                    timeout,
                    own_limiter(),
                )
                .expect("client"),
            ),
        }
    }
}

/// A client of either API.
#[derive(Clone)]
enum Either {
    OpenAi(OpenAi),
    Anthropic(Anthropic),
}

impl Client for Either {
    fn limiter(&self) -> &'static ai_retry::RateLimiter {
        match self {
            Either::OpenAi(client) => Client::limiter(client),
            Either::Anthropic(client) => Client::limiter(client),
        }
    }

    fn cost_of(&self, prompt: &str) -> ai_retry::Cost {
        match self {
            Either::OpenAi(client) => Client::cost_of(client, prompt),
            Either::Anthropic(client) => Client::cost_of(client, prompt),
        }
    }

    async fn attempt(&self, prompt: &str, call: &Call) -> Result<String, ApiError> {
        match self {
            Either::OpenAi(client) => Client::attempt(client, prompt, call).await,
            Either::Anthropic(client) => Client::attempt(client, prompt, call).await,
        }
    }
}

struct Scenario {
    name: &'static str,
    keys: Vec<Key>,
    policies: &'static [Policy],
}

impl Scenario {
    /// The time the slowest key needs at its limits.
    fn ideal(&self) -> Duration {
        self.keys.iter().map(Key::ideal).max().unwrap_or_default()
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
    for key in &scenario.keys {
        let server = TestServer::start(key.server.clone())
            .await
            .expect("loopback server");
        // Each key its own limiter: keys share nothing.
        let base_url = match key.api {
            Api::OpenAi => server.openai_base_url(),
            Api::Anthropic => server.anthropic_base_url(),
        };
        let client = key.client(&base_url);
        let key = key.clone();
        runs.push(tokio::spawn(async move {
            let report = load::drive(key.load, |i, call| {
                policy.call(client.clone(), key.prompt(i), call)
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
    let arriving = Load {
        calls: 200,
        arrival: Some(30.0),
    };
    let per_second = TokenLimit::tokens(600_000);
    let scenarios = [
        Scenario {
            name: "(a) 100 at once, 20/s, limit header",
            keys: vec![Key::requests(RateLimit::new(20.0, 1), at_once(100))],
            policies: REQUEST_POLICIES,
        },
        Scenario {
            name: "(b) 200 arriving 30/s, 20/s",
            keys: vec![Key::requests(RateLimit::new(20.0, 1), arriving)],
            policies: REQUEST_POLICIES,
        },
        Scenario {
            name: "(c) 100 at once, 20/s, no limit header",
            keys: vec![Key::requests(
                RateLimit::new(20.0, 1).without_limit_header(),
                at_once(100),
            )],
            policies: REQUEST_POLICIES,
        },
        Scenario {
            name: "(d) two keys: 50 at 20/s + 50 at 5/s",
            keys: vec![
                Key::requests(RateLimit::new(20.0, 1), at_once(50)),
                Key::requests(RateLimit::new(5.0, 1), at_once(50)),
            ],
            policies: REQUEST_POLICIES,
        },
        Scenario {
            name: "(e) 200 arriving 30/s, 20/s, answers in 2 s",
            keys: vec![
                Key::requests(RateLimit::new(20.0, 1), arriving)
                    .answering_after(Duration::from_secs(2)),
            ],
            policies: REQUEST_POLICIES,
        },
        Scenario {
            name: "(f) OpenAI 600k TPM per second, 100 at once",
            keys: vec![Key::tokens(Api::OpenAi, per_second, 100)],
            policies: TOKEN_POLICIES,
        },
        Scenario {
            name: "(g) OpenAI 60k TPM, a minute's bucket, 100 at once",
            keys: vec![Key::tokens(
                Api::OpenAi,
                TokenLimit::tokens(60_000).window(Duration::from_secs(60)),
                100,
            )],
            policies: TOKEN_POLICIES,
        },
        Scenario {
            name: "(h) Anthropic 600k in + 300k out per minute, 100 at once",
            keys: vec![Key::tokens(
                Api::Anthropic,
                TokenLimit::input_output(600_000, 300_000),
                100,
            )],
            policies: TOKEN_POLICIES,
        },
        Scenario {
            name: "(i) (f), answers in 3 s",
            keys: vec![
                Key::tokens(Api::OpenAi, per_second, 100).answering_after(Duration::from_secs(3)),
            ],
            policies: TOKEN_POLICIES,
        },
    ];
    println!(
        "retry-testkit realistic rate-limit mode (request buckets of 1, token buckets of a second or a minute, retry-after in whole seconds, nothing reserved), loopback"
    );
    println!(
        "| scenario | policy | ok | requests / success | 429s | completion | vs ideal | p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    // `cargo bench -p ai-retry-benches --bench storm -- e i` runs (e) and (i) only.
    let wanted: Vec<String> = support::named_args()
        .iter()
        .map(|arg| format!("({arg})"))
        .collect();
    for scenario in &scenarios {
        if !wanted.is_empty() && !wanted.iter().any(|w| scenario.name.starts_with(w)) {
            continue;
        }
        let ideal = scenario.ideal();
        for &policy in scenario.policies {
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
