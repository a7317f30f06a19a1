//! `retry-testkit`: serve the fault-injecting OpenAI/Anthropic server on loopback
//! for any client, official SDKs included.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use retry_testkit::{Chaos, Config, Fault, RateLimit, TestServer, TokenLimit, parse_script};

/// A fault-injecting OpenAI- and Anthropic-compatible server on 127.0.0.1.
///
/// Point clients at it with OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 or
/// ANTHROPIC_BASE_URL=http://127.0.0.1:PORT. Each request is printed to stderr:
/// time, path, attempt header, idempotency key, status and fault.
#[derive(Debug, Parser)]
#[command(name = "retry-testkit", version)]
struct Args {
    /// Listen on 127.0.0.1:PORT (0 picks a free port).
    #[arg(long, default_value_t = 8787)]
    port: u16,

    /// One fault per request, comma-separated, then normal answers: ok, 429,
    /// 429:retry-after=2, 429:retry-after-ms=1500, 429:retry-after-date=3,
    /// 429:openai-reset=1s, 429:anthropic-reset=2s, 429:retry-after-raw=VALUE,
    /// quota, too-large, spend-limit, overloaded (529), STATUS (400 to 599),
    /// should-retry=true|false:STATUS, hang=30s, drop, malformed, stream-dies=N.
    #[arg(long, value_name = "FAULTS", value_parser = script)]
    script: Option<Script>,

    /// What to answer once the script is used up (default ok; e.g. 503 for an outage).
    #[arg(long, value_name = "FAULT")]
    then: Option<Fault>,

    /// Chaos mode once the script is used up: every fault at random from this
    /// seed, absurd headers included.
    #[arg(long, value_name = "SEED")]
    chaos: Option<u64>,

    /// Rate-limit mode: one bucket of N requests per second per API key; a
    /// refused request is told when the bucket next has a token (the same for
    /// every caller, nothing reserved), with retry-after in whole seconds
    /// rounded up and the x-ratelimit-* headers on every response.
    #[arg(long, value_name = "N[/s]", value_parser = rate)]
    rate: Option<f64>,

    /// The rate limiter's bucket size (default: the rate, at least 1).
    #[arg(long, value_name = "N", requires = "rate", value_parser = clap::value_parser!(u32).range(1..))]
    burst: Option<u32>,

    /// Reserve the slot a refused caller is told (friendlier than any real
    /// server), announced with retry-after-ms too.
    #[arg(long, requires = "rate")]
    reserve: bool,

    /// Leave x-ratelimit-limit-requests out: clients must learn the rate.
    #[arg(long, requires = "rate")]
    no_limit_header: bool,

    /// Token mode: N tokens a minute per API key (OpenAI's TPM), counted as
    /// OpenAI counts them — ceil(prompt characters / 4) + max_tokens — with
    /// the x-ratelimit-*-tokens headers on every response and OpenAI's
    /// "Please try again in …" on a refusal.
    #[arg(long, value_name = "N")]
    tpm: Option<u64>,

    /// Token mode, Anthropic's: N input tokens a minute per API key.
    #[arg(long, value_name = "N")]
    input_tpm: Option<u64>,

    /// Token mode, Anthropic's: N output tokens (max_tokens) a minute per API key.
    #[arg(long, value_name = "N")]
    output_tpm: Option<u64>,

    /// How much of a minute a token bucket holds: 1s (a limit enforced per
    /// second, the default) up to 60s (a minute's bucket).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "1s")]
    token_window: Duration,

    /// Delay every answer by this long (e.g. 2s, the time a completion
    /// takes); refusals still come at once.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    latency: Option<Duration>,
}

/// A parsed `--script`.
#[derive(Clone, Debug)]
struct Script(Vec<Fault>);

fn script(text: &str) -> Result<Script, String> {
    parse_script(text).map(Script)
}

fn rate(text: &str) -> Result<f64, String> {
    text.trim_end_matches("/s")
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0)
        .ok_or_else(|| format!("`{text}` is not a positive number of requests per second"))
}

impl Args {
    fn config(self) -> Config {
        let rate_limit = self.rate.map(|per_second| {
            let burst = self.burst.unwrap_or(per_second.ceil().max(1.0) as u32);
            RateLimit {
                reserve: self.reserve,
                limit_header: !self.no_limit_header,
                ..RateLimit::new(per_second, burst)
            }
        });
        let tokens = self.tokens();
        Config {
            port: self.port,
            echo: true,
            script: self.script.map(|s| s.0).unwrap_or_default(),
            fallback: self.then,
            chaos: self.chaos.map(|seed| Chaos {
                seed,
                hang: Duration::from_secs(30),
            }),
            rate_limit,
            tokens,
            latency: self.latency.unwrap_or_default(),
        }
    }

    fn tokens(&self) -> Option<TokenLimit> {
        let limits = [self.tpm, self.input_tpm, self.output_tpm];
        if limits.iter().all(Option::is_none) {
            return None;
        }
        let limit = TokenLimit {
            tokens_per_minute: self.tpm.unwrap_or(0),
            input_per_minute: self.input_tpm.unwrap_or(0),
            output_per_minute: self.output_tpm.unwrap_or(0),
            window: self.token_window,
        };
        Some(limit.window(self.token_window))
    }
}

fn main() -> ExitCode {
    let config = Args::parse().config();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("retry-testkit: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let port = config.port;
    runtime.block_on(async {
        match TestServer::start(config).await {
            Ok(server) => {
                eprintln!(
                    "retry-testkit listening on {}\n  OPENAI_BASE_URL={}\n  ANTHROPIC_BASE_URL={}",
                    server.url(),
                    server.openai_base_url(),
                    server.anthropic_base_url()
                );
                std::future::pending::<()>().await;
                ExitCode::SUCCESS
            }
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                eprintln!(
                    "retry-testkit: cannot listen on 127.0.0.1:{port}: it is in use; --port 0 picks a free port"
                );
                ExitCode::FAILURE
            }
            Err(error) => {
                eprintln!("retry-testkit: cannot listen on 127.0.0.1:{port}: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let args = std::iter::once("retry-testkit").chain(args.iter().copied());
        Args::try_parse_from(args).map(Args::config)
    }

    #[test]
    fn options() {
        Args::command().debug_assert();
        let config = parse(&[
            "--port",
            "0",
            "--script",
            "429:retry-after=1,ok",
            "--rate",
            "50/s",
        ])
        .unwrap();
        assert_eq!(config.port, 0);
        assert_eq!(config.script.len(), 2);
        assert_eq!(config.rate_limit, Some(RateLimit::new(50.0, 50)));
        let reserving = parse(&["--rate", "5", "--reserve", "--no-limit-header"]).unwrap();
        assert_eq!(
            reserving.rate_limit,
            Some(RateLimit::new(5.0, 5).reserving().without_limit_header())
        );
        let chaos = parse(&["--chaos", "7", "--then", "503"]).unwrap();
        assert_eq!(chaos.chaos.map(|c| c.seed), Some(7));
        assert_eq!(chaos.fallback, Some(Fault::Status(503)));
        for bad in [
            &["--rate", "-1"][..],
            &["--script", "nonsense"],
            &["--script", "100"],
            &["--bogus"],
            &["--port"],
            &["--port", "99999"],
            &["--burst", "5"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let error = parse(&["--port", "99999"]).unwrap_err().to_string();
        assert!(error.contains("99999 is not in 0..=65535"), "{error}");
    }
}
