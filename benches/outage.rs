//! `cargo bench --bench outage`: 1,000 calls against a server that always fails
//! (503 over loopback), with and without a shared `RetryBudget`; reports
//! attempts per call. Without a budget every call makes `max` attempts; with
//! `RetryBudget::new(0.1, …)` a fleet adds about 10% load (the SRE book's figure).

use std::time::{Duration, Instant};

use ai_retry::{RetryBudget, retry};
use ai_retry_examples::openai::OpenAi;
use ai_retry_examples::{ApiError, Call};
use retry_testkit::{Config, Fault, TestServer};

const CALLS: usize = 1000;

static WITH_FLOOR: RetryBudget = RetryBudget::new(0.1, 10);
static NO_FLOOR: RetryBudget = RetryBudget::new(0.1, 0);

#[retry(max = 3, initial = "50ms")]
async fn unbudgeted(client: &OpenAi, call: &Call) -> Result<String, ApiError> {
    client.attempt("status?", call).await
}

#[retry(max = 3, initial = "50ms", budget = WITH_FLOOR)]
async fn budget_with_floor(client: &OpenAi, call: &Call) -> Result<String, ApiError> {
    client.attempt("status?", call).await
}

#[retry(max = 3, initial = "50ms", budget = NO_FLOOR)]
async fn budget_no_floor(client: &OpenAi, call: &Call) -> Result<String, ApiError> {
    client.attempt("status?", call).await
}

#[derive(Clone, Copy)]
enum Variant {
    Unbudgeted,
    WithFloor,
    NoFloor,
}

async fn run(variant: Variant) -> (usize, usize, Duration) {
    let config = Config {
        fallback: Some(Fault::Status(503)),
        ..Config::default()
    };
    let server = TestServer::start(config).await.unwrap();
    let client = OpenAi::new(
        &server.openai_base_url(),
        None,
        "gpt-4o-mini",
        Duration::from_secs(30),
    )
    .unwrap();
    let start = Instant::now();
    // 100 at a time: a steady stream of calls rather than one burst.
    let mut failed = 0;
    for chunk in 0..CALLS / 100 {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    let call = Call::new();
                    match variant {
                        Variant::Unbudgeted => unbudgeted(&client, &call).await,
                        Variant::WithFloor => budget_with_floor(&client, &call).await,
                        Variant::NoFloor => budget_no_floor(&client, &call).await,
                    }
                })
            })
            .collect();
        for task in tasks {
            failed += usize::from(task.await.unwrap().is_err());
        }
        let _ = chunk;
    }
    (server.requests().len(), failed, start.elapsed())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("{CALLS} calls against a server answering 503 to everything, max = 3");
    println!("| retry budget | requests | attempts / call | failed calls | time |");
    println!("|---|---|---|---|---|");
    for (name, variant) in [
        ("none", Variant::Unbudgeted),
        ("RetryBudget::new(0.1, 10)", Variant::WithFloor),
        ("RetryBudget::new(0.1, 0)", Variant::NoFloor),
    ] {
        let (requests, failed, elapsed) = runtime.block_on(run(variant));
        println!(
            "| {name} | {requests} | {:.3} | {failed} | {:.2} s |",
            requests as f64 / CALLS as f64,
            elapsed.as_secs_f64()
        );
    }
}
