//! What the four example programs share: the prompt, the backend (the real API
//! when its key is set, else `retry-testkit` in-process), the retry log line,
//! and the exit code.

use std::process::ExitCode;
use std::time::Duration;

use ai_retry::{RateLimiter, RetryEvent};
use retry_testkit::{Config, Fault, Hint, TestServer};

use crate::{ANTHROPIC_LIMITER, ApiError, OPENAI_LIMITER};

/// The prompt when none is given on the command line.
pub const DEFAULT_PROMPT: &str = "In one sentence, why should API clients retry with jitter?";

/// The request timeout against a real API: long answers take a while.
pub const REAL_TIMEOUT: Duration = Duration::from_secs(120);
/// The request timeout against the local server.
pub const LOCAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The chat examples' command line: the prompt, and the request timeout.
#[derive(Debug, clap::Parser)]
#[command(version)]
pub struct ChatArgs {
    /// What to ask, in as many words as you like (default: a question about jitter).
    pub prompt: Vec<String>,

    /// Cut each request off after this long, e.g. 30s (default 120s against
    /// the real API, 10s against the local server).
    #[arg(long, env = "AI_RETRY_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,

    /// Hold at most this much of an answer, e.g. 1MiB; past it the call
    /// fails, and is not retried (error bodies are read up to 64 KiB).
    #[arg(long, env = "AI_RETRY_MAX_BODY", value_name = "SIZE", default_value = "16MiB", value_parser = ai_retry::body::parse_size)]
    pub max_body: usize,
}

impl ChatArgs {
    /// Parses the command line of an example that talks to `provider`, said in
    /// `about`; bad input exits 2 with clap's message.
    pub fn parse(provider: Provider, about: &'static str) -> ChatArgs {
        use clap::{CommandFactory, FromArgMatches};
        let (key, url, default_url, model, default_model) = provider.vars();
        let variables = [
            (
                key,
                "the API key; unset, the example runs against retry-testkit on 127.0.0.1"
                    .to_string(),
            ),
            (url, format!("the API's base URL (default {default_url})")),
            (model, format!("the model (default {default_model})")),
            ("AI_RETRY_TIMEOUT", "as --timeout".to_string()),
            ("AI_RETRY_MAX_BODY", "as --max-body".to_string()),
            (
                "REDIS_URL",
                "share the rate limiter with other processes (redis://…)".to_string(),
            ),
        ];
        let environment: String = variables
            .iter()
            .map(|(name, what)| format!("\n  {name:<20} {what}"))
            .collect();
        // `--version` and the usage line name the example, not its package.
        let name = std::env::args_os()
            .next()
            .and_then(|path| {
                Some(
                    std::path::Path::new(&path)
                        .file_stem()?
                        .to_string_lossy()
                        .into_owned(),
                )
            })
            .unwrap_or_else(|| "chat".into());
        let matches = ChatArgs::command()
            .name(name)
            .about(about)
            .after_help(format!("Environment:{environment}"))
            .get_matches();
        ChatArgs::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
    }

    /// The words as the prompt, or [`DEFAULT_PROMPT`].
    pub fn prompt(&self) -> String {
        if self.prompt.is_empty() {
            DEFAULT_PROMPT.to_string()
        } else {
            self.prompt.join(" ")
        }
    }
}

/// A duration in seconds as people write it: `2 s`, `0.3 s`, `2.31 s`.
pub fn seconds(duration: Duration) -> String {
    let text = format!("{:.2}", duration.as_secs_f64());
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} s")
}

/// One line on stderr per retry: which attempt of how many failed, its class
/// and the server's hint, the error, and the wait.
pub fn log_retry<E: std::fmt::Display>(event: &RetryEvent<'_, E>) {
    let class = event.class.map_or("unclassified", |c| c.name());
    let hint = event
        .server_hint
        .map(|hint| format!(", server asked {}", seconds(hint)))
        .unwrap_or_default();
    // The turn comes after the sleep, where the two overlap: say when the
    // limiter holds the call longer than its own delay.
    let limiter = match event.limiter_wait {
        Some(wait) if wait > event.delay => format!(
            " (the rate limiter holds every caller of the key for {})",
            seconds(wait)
        ),
        _ => String::new(),
    };
    let line = format!(
        "retry: attempt {}/{} failed ({class}{hint}): {}; next attempt in {}{limiter}",
        event.attempt,
        event.max_attempts,
        event.error,
        seconds(event.delay)
    );
    // Whatever error type the line quotes, a key in a URL never shows.
    eprintln!("{}", ai_retry::reqwest::redact_secrets(&line));
}

/// Why the example's call stopped retrying, said by [`finish`] beside the error.
static GAVE_UP: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Notes after which attempt the call stopped, and why, for [`finish`] to say
/// with the error (an example makes one call: the last give-up is its own).
pub fn log_give_up<E>(event: &RetryEvent<'_, E>) {
    let Some(reason) = event.give_up else {
        return;
    };
    let why = match (reason, event.server_hint) {
        (ai_retry::GiveUp::HintBeyondMaxDelay, Some(hint)) => {
            format!("the server asks for {}, above max_delay", seconds(hint))
        }
        _ => reason.to_string(),
    };
    let said = format!(
        "gave up after attempt {} of {}: {why}",
        event.attempt, event.max_attempts
    );
    *GAVE_UP.lock().unwrap_or_else(|e| e.into_inner()) = Some(said);
}

/// Where the example sends its requests.
pub struct Backend {
    /// The API's base URL.
    pub base_url: String,
    /// The key, when talking to the real API.
    pub api_key: Option<String>,
    /// The model to ask.
    pub model: String,
    /// The request timeout.
    pub timeout: Duration,
    /// The most of an answer a client holds.
    pub max_body: usize,
    /// The in-process server, kept alive while the example runs.
    pub server: Option<TestServer>,
}

/// Which API, with the official SDKs' variable names and defaults.
#[derive(Clone, Copy, Debug)]
pub enum Provider {
    /// `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_MODEL`.
    OpenAi,
    /// `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`, `ANTHROPIC_MODEL`.
    Anthropic,
}

impl Provider {
    fn vars(
        self,
    ) -> (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ) {
        match self {
            Provider::OpenAi => (
                "OPENAI_API_KEY",
                "OPENAI_BASE_URL",
                "https://api.openai.com/v1",
                "OPENAI_MODEL",
                "gpt-4o-mini",
            ),
            Provider::Anthropic => (
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_BASE_URL",
                "https://api.anthropic.com",
                "ANTHROPIC_MODEL",
                "claude-3-5-haiku-latest",
            ),
        }
    }

    /// The limiter every client of this provider takes turns from.
    pub fn limiter(self) -> &'static RateLimiter {
        match self {
            Provider::OpenAi => &OPENAI_LIMITER,
            Provider::Anthropic => &ANTHROPIC_LIMITER,
        }
    }

    /// The demo's fault script: a 429 with Retry-After, an overload, then the answer.
    pub fn demo_script(self) -> Vec<Fault> {
        let overload = match self {
            Provider::OpenAi => Fault::Status(503),
            Provider::Anthropic => Fault::OVERLOADED,
        };
        vec![
            Fault::RateLimit(Hint::RetryAfterSecs(1.0)),
            overload,
            Fault::Ok,
        ]
    }
}

/// The real API, when its key is set in the environment.
pub fn real_api(provider: Provider) -> Option<Backend> {
    let (key_var, url_var, default_url, model_var, default_model) = provider.vars();
    let api_key = std::env::var(key_var)
        .ok()
        .filter(|k| !k.trim().is_empty())?;
    Some(Backend {
        base_url: or_default(std::env::var(url_var).ok(), default_url),
        api_key: Some(api_key),
        model: std::env::var(model_var).unwrap_or_else(|_| default_model.to_string()),
        timeout: REAL_TIMEOUT,
        max_body: crate::DEFAULT_MAX_BODY,
        server: None,
    })
}

/// A variable's value, or `default` when it is unset or empty: an empty
/// `OPENAI_BASE_URL` means the default, as an unset one does.
pub fn or_default(value: Option<String>, default: &str) -> String {
    value
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// The real API when its key is set; else `retry-testkit` on 127.0.0.1 with the
/// demo script, said on stderr. `in_thread` serves it from a thread of its own,
/// for blocking clients; `args` give the request timeout and the most of an
/// answer to hold.
pub async fn backend(
    provider: Provider,
    in_thread: bool,
    args: &ChatArgs,
) -> Result<Backend, ApiError> {
    let mut backend = local_or_real(provider, in_thread).await?;
    if let Some(timeout) = args.timeout {
        backend.timeout = timeout;
    }
    backend.max_body = args.max_body;
    match in_thread {
        false => share_limiter(provider.limiter(), &backend).await?,
        true if std::env::var_os("REDIS_URL").is_some() => eprintln!(
            "REDIS_URL is set, but blocking calls take turns from this process's limiter only"
        ),
        true => {}
    }
    Ok(backend)
}

/// With `REDIS_URL` set, shares `limiter` with every process calling the same
/// API with the same key, under a name made of the base URL and a hash of the
/// key (never the key itself); says so on stderr.
pub async fn share_limiter(limiter: &RateLimiter, backend: &Backend) -> Result<(), ApiError> {
    let Ok(url) = std::env::var("REDIS_URL") else {
        return Ok(());
    };
    let key = limiter_key(&backend.base_url, backend.api_key.as_deref());
    limiter
        .share_redis(&url, &key)
        .await
        .map_err(|e| ApiError::Setup(format!("REDIS_URL: {e}")))?;
    eprintln!(
        "sharing the rate limiter through REDIS_URL as `{key}` ({:?})",
        limiter.snapshot().store
    );
    Ok(())
}

/// The Redis name of a key's limit: the API's base URL and the first 16 hex
/// digits of the key's SHA-1, so processes with the same key meet and the key
/// itself never leaves the process.
pub fn limiter_key(base_url: &str, api_key: Option<&str>) -> String {
    let digest = sha1_smol::Sha1::from(api_key.unwrap_or(""))
        .digest()
        .to_string();
    format!("{}#{}", base_url.trim_end_matches('/'), &digest[..16])
}

async fn local_or_real(provider: Provider, in_thread: bool) -> Result<Backend, ApiError> {
    if let Some(real) = real_api(provider) {
        return Ok(real);
    }
    let (key_var, _, _, model_var, default_model) = provider.vars();
    let model = std::env::var(model_var).unwrap_or_else(|_| default_model.to_string());
    let config = Config::script(provider.demo_script());
    let server = if in_thread {
        TestServer::start_in_thread(config)
    } else {
        TestServer::start(config).await
    };
    let server =
        server.map_err(|e| ApiError::Setup(format!("cannot start the local server: {e}")))?;
    let base_url = match provider {
        Provider::OpenAi => server.openai_base_url(),
        Provider::Anthropic => server.anthropic_base_url(),
    };
    eprintln!(
        "no {key_var} set: using retry-testkit at {base_url} with a short fault script (429 + Retry-After, overload, then the answer)"
    );
    Ok(Backend {
        base_url,
        api_key: None,
        model,
        timeout: LOCAL_TIMEOUT,
        max_body: crate::DEFAULT_MAX_BODY,
        server: Some(server),
    })
}

/// The answer on stdout and exit 0, or one line on stderr and exit 1: the
/// error, with after how many attempts and why the call stopped.
pub fn finish<E: std::fmt::Display>(result: Result<String, E>) -> ExitCode {
    match result {
        Ok(answer) => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            fail(&error);
            ExitCode::FAILURE
        }
    }
}

/// The one error line: whatever the error's text (a client that quotes a
/// whole HTML page in it), on one line of at most 400 characters, a key in a
/// URL never shown.
pub fn fail(error: &dyn std::fmt::Display) {
    let said = one_line(&error.to_string(), 400);
    let line = match GAVE_UP.lock().unwrap_or_else(|e| e.into_inner()).take() {
        Some(why) => format!("error: {said} ({why})"),
        None => format!("error: {said}"),
    };
    eprintln!("{}", ai_retry::reqwest::redact_secrets(&line));
}

/// `text` on one line, its whitespace runs one space, at most `chars` long.
pub fn one_line(text: &str, chars: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.chars().count() > chars {
        true => line.chars().take(chars).chain(['…']).collect(),
        false => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_unset() {
        let default = "https://api.openai.com/v1";
        assert_eq!(or_default(None, default), default);
        assert_eq!(or_default(Some(String::new()), default), default);
        assert_eq!(or_default(Some("  ".into()), default), default);
        assert_eq!(
            or_default(Some("http://127.0.0.1:1/v1".into()), default),
            "http://127.0.0.1:1/v1"
        );
    }
}
