//! `cargo run --release --example load -- --calls N [--arrival PER_SEC] [--no-limiter]`:
//! N `openai_chat` calls from one process, all at once or starting PER_SEC a
//! second, sharing one rate limiter (or, with `--no-limiter`, each on its own).
//!
//! With `OPENAI_API_KEY` set it calls the real API at `OPENAI_BASE_URL`; without,
//! an in-process `retry-testkit` in its realistic rate-limit mode (one bucket of
//! `--rate` requests per second for the key, the same `retry-after` to every
//! refused caller). A summary goes to stderr; the last line of stdout is the
//! number of successful calls.

use std::process::ExitCode;

use ai_retry_examples::ApiError;
use ai_retry_examples::demo::{self, Backend, Provider};
use ai_retry_examples::load::{self, Load};
use ai_retry_examples::openai::OpenAi;
use clap::Parser;
use retry_testkit::{Config, RateLimit, TestServer};

/// N openai_chat calls from one process, sharing one rate limiter.
#[derive(Parser, Debug)]
#[command(name = "load", version)]
struct Args {
    /// Calls in all.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    calls: u64,
    /// Start this many calls a second (default: all at once).
    #[arg(long, value_name = "PER_SEC", value_parser = positive)]
    arrival: Option<f64>,
    /// Each call on its own: no shared limiter.
    #[arg(long)]
    no_limiter: bool,
    /// The local server's limit, requests per second, when no key is set.
    #[arg(long, default_value_t = 20.0, value_parser = positive)]
    rate: f64,
    /// The local server's bucket size (1: no bursts, as a per-minute limit
    /// enforced per second behaves).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    burst: u32,
    /// The local server leaves x-ratelimit-limit-requests out: the limiter must learn the rate.
    #[arg(long)]
    no_limit_header: bool,
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!("`{text}` is not a positive number")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(ok) => {
            println!("{ok}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<usize, ApiError> {
    let backend = match demo::real_api(Provider::OpenAi) {
        Some(real) => real,
        None => {
            let mut limit = RateLimit::new(args.rate, args.burst);
            if args.no_limit_header {
                limit = limit.without_limit_header();
            }
            let server = TestServer::start(Config::rate_limited(limit))
                .await
                .map_err(|e| ApiError::Setup(format!("cannot start the local server: {e}")))?;
            eprintln!(
                "no OPENAI_API_KEY set: using retry-testkit at {} limited to {} requests/s for the key",
                server.openai_base_url(),
                args.rate
            );
            Backend {
                base_url: server.openai_base_url(),
                api_key: Some("sk-load".to_string()),
                model: "gpt-4o-mini".to_string(),
                timeout: demo::LOCAL_TIMEOUT,
                max_body: ai_retry_examples::DEFAULT_MAX_BODY,
                server: Some(server),
            }
        }
    };
    demo::share_limiter(Provider::OpenAi.limiter(), &backend).await?;
    let client = OpenAi::for_backend(&backend)?;
    let load = Load {
        calls: args.calls as usize,
        arrival: args.arrival,
    };
    let no_limiter = args.no_limiter;
    let report = load::drive(load, |i, call| {
        let client = client.clone();
        async move {
            let prompt = format!("load call {i}");
            match no_limiter {
                true => load::unpaced(&client, &prompt, &call).await,
                false => load::paced(&client, &prompt, &call).await,
            }
        }
    })
    .await;
    eprintln!(
        "{} calls{}, {}: {}",
        args.calls,
        args.arrival
            .map_or(" at once".to_string(), |r| format!(" arriving {r}/s")),
        if no_limiter {
            "no limiter"
        } else {
            "shared limiter"
        },
        report.summary()
    );
    Ok(report.ok)
}
