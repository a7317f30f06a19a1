//! `retry-testkit`: serve the fault-injecting OpenAI/Anthropic server on loopback
//! for any client, official SDKs included.

use retry_testkit::{Config, RateLimit, TestServer, parse_script};
use std::process::ExitCode;

const HELP: &str = "\
retry-testkit: a fault-injecting OpenAI- and Anthropic-compatible server on 127.0.0.1

USAGE:
    retry-testkit [--port N] [--script FAULTS] [--rate N/s] [--burst N] [--reserve]
                  [--no-limit-header] [--latency D]

OPTIONS:
    --port N         listen on 127.0.0.1:N (default 8787; 0 picks a free port)
    --script FAULTS  one fault per request, comma-separated, then normal answers:
                     ok, 429, 429:retry-after=2, 429:retry-after-ms=1500,
                     429:retry-after-date=3, 429:openai-reset=1s, 429:anthropic-reset=2s,
                     429:retry-after-raw=VALUE, quota, too-large, spend-limit,
                     overloaded (529), STATUS (500, 503, ...), should-retry=false:STATUS,
                     hang=30s, drop, malformed, stream-dies=N
    --rate N         rate-limit mode: one bucket of N requests per second per API
                     key; a refused request is told when the bucket next has a
                     token (the same for every caller, nothing reserved), with
                     retry-after in whole seconds rounded up and the x-ratelimit-*
                     headers on every response
    --burst N        the rate limiter's bucket size (default: the rate, at least 1)
    --reserve        reserve the slot a refused caller is told (friendlier than
                     any real server), announced with retry-after-ms too
    --no-limit-header
                     leave x-ratelimit-limit-requests out: clients must learn the rate
    --latency D      delay every answer by D (e.g. 50ms)
    --then FAULT     what to do once the script is used up (default ok; e.g. 503
                     for an outage)
    --chaos SEED     chaos mode: every fault at random (seeded), absurd headers
                     included, once the script is used up
    -h, --help       this text

Point clients at it with OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 or
ANTHROPIC_BASE_URL=http://127.0.0.1:PORT. Each request is printed to stderr.";

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(Some(config)) => serve(config),
        Ok(None) => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("retry-testkit: {error}\n\n{HELP}");
            ExitCode::from(2)
        }
    }
}

fn serve(config: Config) -> ExitCode {
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
            Err(error) => {
                eprintln!("retry-testkit: cannot listen: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

/// `Ok(None)` asks for help.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Config>, String> {
    let mut config = Config {
        port: 8787,
        echo: true,
        ..Config::default()
    };
    let (mut rate, mut burst) = (None, None);
    let (mut reserve, mut limit_header) = (false, true);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => {
                config.port = value("--port")?
                    .parse()
                    .map_err(|_| "--port takes a number")?
            }
            "--script" => config.script = parse_script(&value("--script")?)?,
            "--rate" => {
                let text = value("--rate")?;
                let number = text
                    .trim_end_matches("/s")
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0);
                rate = Some(number.ok_or("--rate takes a positive number of requests per second")?);
            }
            "--chaos" => {
                let seed = value("--chaos")?
                    .parse()
                    .map_err(|_| "--chaos takes a number (the seed)")?;
                config.chaos = Some(retry_testkit::Chaos {
                    seed,
                    hang: std::time::Duration::from_secs(30),
                });
            }
            "--then" => config.fallback = Some(value("--then")?.parse()?),
            "--burst" => {
                burst = Some(
                    value("--burst")?
                        .parse::<u32>()
                        .map_err(|_| "--burst takes a number")?,
                )
            }
            "--reserve" => reserve = true,
            "--no-limit-header" => limit_header = false,
            "--latency" => {
                let text = value("--latency")?;
                config.latency = humantime::parse_duration(&text)
                    .map_err(|_| "--latency takes a duration such as 50ms")?;
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if let Some(per_second) = rate {
        let burst = burst.unwrap_or(per_second.ceil().max(1.0) as u32);
        config.rate_limit = Some(RateLimit {
            reserve,
            limit_header,
            ..RateLimit::new(per_second, burst)
        });
    }
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Config>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options() {
        let config = parse(&[
            "--port",
            "0",
            "--script",
            "429:retry-after=1,ok",
            "--rate",
            "50/s",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(config.port, 0);
        assert_eq!(config.script.len(), 2);
        assert_eq!(config.rate_limit, Some(RateLimit::new(50.0, 50)));
        let reserving = parse(&["--rate", "5", "--reserve", "--no-limit-header"])
            .unwrap()
            .unwrap();
        assert_eq!(
            reserving.rate_limit,
            Some(RateLimit::new(5.0, 5).reserving().without_limit_header())
        );
        assert!(parse(&["--help"]).unwrap().is_none());
        let chaos = parse(&["--chaos", "7", "--then", "503"]).unwrap().unwrap();
        assert_eq!(chaos.chaos.map(|c| c.seed), Some(7));
        assert_eq!(chaos.fallback, Some(retry_testkit::Fault::Status(503)));
        assert!(parse(&["--rate", "-1"]).is_err());
        assert!(parse(&["--script", "nonsense"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--port"]).is_err());
    }
}
