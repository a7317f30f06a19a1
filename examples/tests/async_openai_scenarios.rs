//! async-openai 0.43 against the testkit's fourteen fault scenarios — the ones
//! `openai_chat` gets right — with ai-retry's tower layer (`async_openai_chat`),
//! and, for the record, with async-openai's own retries
//! (`cargo test -p ai-retry-examples --test async_openai_scenarios -- --ignored --nocapture`).

use std::time::Duration;

use ai_retry_examples::openai_sdk::{self, Client, GatewayConfig};
use retry_testkit::{Config, Fault, Hint, TestServer};

/// Each request is cut off after this: the hang scenario's timeout.
const TIMEOUT: Duration = Duration::from_secs(1);
/// A scenario still running after this is wrong: it slept on a hint it
/// should have refused, or backed off far too long.
const BOUND: Duration = Duration::from_secs(8);

struct Scenario {
    name: &'static str,
    script: Vec<Fault>,
    /// Whether the call should end with the answer.
    answer: bool,
    /// How many requests the server should see.
    requests: usize,
}

fn scenarios() -> Vec<Scenario> {
    let rate_limit = |hint| vec![Fault::RateLimit(hint), Fault::Ok];
    let scenario = |name, script, answer, requests| Scenario {
        name,
        script,
        answer,
        requests,
    };
    vec![
        scenario(
            "retry-after: 1",
            rate_limit(Hint::RetryAfterSecs(1.0)),
            true,
            2,
        ),
        scenario(
            "retry-after-ms: 300",
            rate_limit(Hint::RetryAfterMs(300.0)),
            true,
            2,
        ),
        scenario(
            "retry-after as an HTTP date",
            rate_limit(Hint::RetryAfterDate(1)),
            true,
            2,
        ),
        scenario(
            "x-ratelimit-reset-requests only",
            rate_limit(Hint::OpenAiReset("400ms".into())),
            true,
            2,
        ),
        scenario(
            "retry-after: 3600 (fail fast)",
            rate_limit(Hint::RawRetryAfter("3600".into())),
            false,
            1,
        ),
        scenario(
            "garbage retry-after: -5",
            rate_limit(Hint::RawRetryAfter("-5".into())),
            true,
            2,
        ),
        scenario(
            "insufficient_quota 429",
            vec![Fault::Quota, Fault::Ok],
            false,
            1,
        ),
        scenario(
            "request too large",
            vec![Fault::TooLarge, Fault::Ok],
            false,
            1,
        ),
        scenario(
            "x-should-retry: false on a 500",
            vec![Fault::ShouldRetry(500, false), Fault::Ok],
            false,
            1,
        ),
        scenario(
            "x-should-retry: true on a 400",
            vec![Fault::ShouldRetry(400, true), Fault::Ok],
            true,
            2,
        ),
        scenario(
            "500 then 502",
            vec![Fault::Status(500), Fault::Status(502), Fault::Ok],
            true,
            3,
        ),
        scenario(
            "a hang past the timeout",
            vec![Fault::Hang(Duration::from_secs(3)), Fault::Ok],
            true,
            2,
        ),
        scenario("a reset connection", vec![Fault::Drop, Fault::Ok], true, 2),
        scenario(
            "a malformed 200",
            vec![Fault::Malformed, Fault::Ok],
            false,
            1,
        ),
    ]
}

/// Runs one scenario with the client `make` builds for the server's base URL;
/// `None` if it went right, else what went wrong.
async fn check(scenario: Scenario, make: fn(&str) -> Client) -> Option<String> {
    let server = TestServer::start(Config::script(scenario.script))
        .await
        .expect("loopback server");
    let client = make(&server.openai_base_url());
    let ask = openai_sdk::ask(&client, "gpt-4o-mini", "hello");
    let Ok(result) = tokio::time::timeout(BOUND, ask).await else {
        return Some(format!("{}: still running after {BOUND:?}", scenario.name));
    };
    let requests = server.requests();
    let mut wrong = Vec::new();
    if result.is_ok() != scenario.answer {
        wrong.push(format!("ended with {result:?}"));
    }
    if requests.len() != scenario.requests {
        wrong.push(format!(
            "{} requests, not {}",
            requests.len(),
            scenario.requests
        ));
    }
    if let Some(early) = requests.iter().find(|r| r.early) {
        let first = requests[0].at;
        wrong.push(format!(
            "a request {:?} after the first came before the time the server gave",
            early.at - first
        ));
    }
    (!wrong.is_empty()).then(|| format!("{}: {}", scenario.name, wrong.join("; ")))
}

/// One scorecard at a time: a client still sending after its scenario's
/// server closed could reach a new server that reused the port.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every scenario at once, each against a server of its own.
async fn score(make: fn(&str) -> Client) -> Vec<String> {
    let _alone = ONE_AT_A_TIME.lock().await;
    let checks: Vec<_> = scenarios()
        .into_iter()
        .map(|scenario| tokio::spawn(check(scenario, make)))
        .collect();
    let mut wrong = Vec::new();
    for check in checks {
        wrong.extend(check.await.expect("scenario task"));
    }
    wrong
}

fn with_ai_retry(base_url: &str) -> Client {
    // A limiter of its own per client: each scenario is its own API key.
    openai_sdk::client(
        base_url,
        Some("sk-test"),
        TIMEOUT,
        ai_retry_examples::own_limiter(),
        ai_retry_examples::DEFAULT_MAX_BODY,
    )
    .expect("client")
}

fn async_openai_alone(base_url: &str) -> Client {
    let http = ai_retry_examples::http_client(reqwest::Client::builder().timeout(TIMEOUT))
        .expect("client");
    let config = GatewayConfig::new(base_url, "sk-test");
    Client::with_config(config).with_http_client(http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_openai_with_the_tower_layer_gets_every_scenario_right() {
    let wrong = score(with_ai_retry).await;
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement of another crate, printed: run with --ignored --nocapture"]
async fn scorecard_against_async_openai_alone() {
    let total = scenarios().len();
    for (name, make) in [
        (
            "async-openai + ai-retry layer",
            with_ai_retry as fn(&str) -> Client,
        ),
        ("async-openai alone", async_openai_alone),
    ] {
        let wrong = score(make).await;
        println!("{name}: {}/{total} right", total - wrong.len());
        for line in wrong {
            println!("  wrong: {line}");
        }
    }
}
