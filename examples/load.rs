//! `cargo run --release --example load -- --calls N [--arrival PER_SEC] [--no-limiter]
//! [--requests-only] [--prompt-tokens LO..HI] [--max-tokens N] [--tpm N]
//! [--token-window 60s] [--latency 2s] [--anthropic --input-tpm N --output-tpm N]
//! [--start-at UNIX_MS]`:
//! N `openai_chat` (or `anthropic_chat`) calls from one process, all at once or
//! starting PER_SEC a second, sharing one rate limiter (or, with
//! `--no-limiter`, each on its own), each paying its estimated tokens.
//!
//! With `OPENAI_API_KEY` (`ANTHROPIC_API_KEY`) set it calls the real API;
//! without, an in-process `retry-testkit` in its realistic rate-limit mode
//! (one bucket of `--rate` requests per second for the key, or token buckets,
//! the same `retry-after` to every refused caller). A summary goes to stderr;
//! the last line of stdout is the number of successful calls.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ai_retry_examples::ApiError;
use ai_retry_examples::anthropic::Anthropic;
use ai_retry_examples::demo::{self, Backend, Provider};
use ai_retry_examples::load::{self, Client, Load, LoadReport};
use ai_retry_examples::openai::OpenAi;
use clap::Parser;
use retry_testkit::{Config, RateLimit, TestServer, TokenLimit};

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

    /// Prompts of LO to HI tokens (four characters each), call i's size a
    /// function of i alone (default: a few words).
    #[arg(long, value_name = "LO..HI", value_parser = load::token_range)]
    prompt_tokens: Option<(u32, u32)>,

    /// The index of this process's first call, when several processes share
    /// a load: call i's prompt is that of call FIRST + i.
    #[arg(long, value_name = "FIRST", default_value_t = 0)]
    first: usize,

    /// Send max_tokens with every call (counted against token limits).
    #[arg(long, value_name = "N")]
    max_tokens: Option<u32>,

    /// Only tokens limit the local server: N tokens a minute (OpenAI's TPM)
    /// instead of --rate requests a second.
    #[arg(long, value_name = "N", conflicts_with = "anthropic")]
    tpm: Option<u64>,

    /// Call the Anthropic Messages API (`anthropic_chat`'s client, which
    /// sends max_tokens 1024) instead of OpenAI's.
    #[arg(long)]
    anthropic: bool,

    /// With --anthropic, only tokens limit the local server: N input tokens a
    /// minute (and --output-tpm output tokens).
    #[arg(long, value_name = "N", requires_all = ["anthropic", "output_tpm"])]
    input_tpm: Option<u64>,

    /// With --anthropic: N output tokens a minute.
    #[arg(long, value_name = "N", requires_all = ["anthropic", "input_tpm"])]
    output_tpm: Option<u64>,

    /// How much of a minute the local server's token bucket holds: 1s
    /// (enforced per second) up to 60s (a minute's bucket).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "1s")]
    token_window: Duration,

    /// The local server's answers take this long (refusals stay instant).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    latency: Option<Duration>,

    /// Take turns for requests only: the limiter is not told what calls cost.
    #[arg(long, conflicts_with = "no_limiter")]
    requests_only: bool,

    /// Set up (client, Redis connection), then start the calls at this Unix
    /// time in milliseconds, at once if it has passed: a fleet's processes
    /// are running when a storm hits them, not starting all together.
    #[arg(long, value_name = "UNIX_MS")]
    start_at: Option<u64>,
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
    let provider = match args.anthropic {
        true => Provider::Anthropic,
        false => Provider::OpenAi,
    };
    let backend = match demo::real_api(provider) {
        Some(real) => real,
        None => local(args, provider).await?,
    };
    demo::share_limiter(provider.limiter(), &backend).await?;
    // The client (its TLS roots) is made before the start, with the rest of
    // the set-up.
    let report = match provider {
        Provider::OpenAi => {
            let mut client = OpenAi::for_backend(&backend)?;
            if let Some(tokens) = args.max_tokens {
                client = client.max_tokens(tokens);
            }
            start(args.start_at).await;
            drive(args, client).await
        }
        Provider::Anthropic => {
            let client = Anthropic::for_backend(&backend)?;
            start(args.start_at).await;
            drive(args, client).await
        }
    };
    eprintln!(
        "{} calls{}, {}: {}",
        args.calls,
        args.arrival
            .map_or(" at once".to_string(), |r| format!(" arriving {r}/s")),
        match (args.no_limiter, args.requests_only) {
            (true, _) => "no limiter",
            (false, true) => "shared limiter, requests only",
            (false, false) => "shared limiter",
        },
        report.summary()
    );
    Ok(report.ok)
}

/// Waits for `--start-at`, if given and still ahead.
async fn start(at: Option<u64>) {
    if let Some(at) = at {
        let at = UNIX_EPOCH + Duration::from_millis(at);
        tokio::time::sleep(at.duration_since(SystemTime::now()).unwrap_or_default()).await;
    }
}

/// The in-process server when no key is set: `--rate` requests a second, or
/// token limits.
async fn local(args: &Args, provider: Provider) -> Result<Backend, ApiError> {
    let mut limit = RateLimit::new(args.rate, args.burst);
    if args.no_limit_header {
        limit = limit.without_limit_header();
    }
    let tokens = match (args.tpm, args.input_tpm.zip(args.output_tpm)) {
        (Some(tpm), _) => Some(TokenLimit::tokens(tpm)),
        (None, Some((input, output))) => Some(TokenLimit::input_output(input, output)),
        (None, None) => None,
    };
    let (config, limited) = match tokens {
        Some(tokens) => (
            Config::token_limited(tokens.window(args.token_window)),
            match (args.tpm, args.input_tpm, args.output_tpm) {
                (Some(tpm), _, _) => format!("{tpm} tokens a minute"),
                (_, Some(input), Some(output)) => {
                    format!("{input} input and {output} output tokens a minute")
                }
                _ => unreachable!("tokens come from --tpm or --input-tpm and --output-tpm"),
            },
        ),
        None => (
            Config::rate_limited(limit),
            format!("{} requests/s", args.rate),
        ),
    };
    let config = config.with_latency(args.latency.unwrap_or_default());
    let server = TestServer::start(config)
        .await
        .map_err(|e| ApiError::Setup(format!("cannot start the local server: {e}")))?;
    let (base_url, key_var, model) = match provider {
        Provider::OpenAi => (server.openai_base_url(), "OPENAI_API_KEY", "gpt-4o-mini"),
        Provider::Anthropic => (
            server.anthropic_base_url(),
            "ANTHROPIC_API_KEY",
            "claude-3-5-haiku-latest",
        ),
    };
    eprintln!(
        "no {key_var} set: using retry-testkit at {base_url} limited to {limited} for the key"
    );
    Ok(Backend {
        base_url,
        api_key: Some("sk-load".to_string()),
        model: model.to_string(),
        timeout: demo::LOCAL_TIMEOUT,
        max_body: ai_retry_examples::DEFAULT_MAX_BODY,
        server: Some(server),
    })
}

/// The calls, each with its own prompt, through the policy the flags name.
async fn drive(args: &Args, client: impl Client + Clone + Send + 'static) -> LoadReport {
    let load = Load {
        calls: args.calls as usize,
        arrival: args.arrival,
    };
    let (no_limiter, requests_only, sizes) =
        (args.no_limiter, args.requests_only, args.prompt_tokens);
    let first = args.first;
    load::drive(load, |i, call| {
        let client = client.clone();
        async move {
            let prompt = load::prompt(first + i, sizes);
            match (no_limiter, requests_only) {
                (true, _) => load::unpaced(&client, &prompt, &call).await,
                (false, true) => load::paced_by_requests(&client, &prompt, &call).await,
                (false, false) => load::paced(&client, &prompt, &call).await,
            }
        }
    })
    .await
}
