//! Many `openai_chat` calls from one process, all at once or arriving at a
//! steady rate: what the `load` example runs and the `storm` benchmark measures.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_retry::{Classify, Cost, ErrorClass, RateLimiter, retry};

use crate::anthropic::Anthropic;
use crate::openai::OpenAi;
use crate::{ApiError, Call};

/// A chat client a load drives: one attempt at a time, under the policies below.
pub trait Client: Sync {
    /// The limiter its calls take turns from.
    fn limiter(&self) -> &'static RateLimiter;
    /// What asking `prompt` costs of the key's limits.
    fn cost_of(&self, prompt: &str) -> Cost;
    /// One attempt, not retried; a 429 is counted on `call`.
    fn attempt(
        &self,
        prompt: &str,
        call: &Call,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;
}

impl Client for OpenAi {
    fn limiter(&self) -> &'static RateLimiter {
        OpenAi::limiter(self)
    }
    fn cost_of(&self, prompt: &str) -> Cost {
        OpenAi::cost_of(self, prompt)
    }
    fn attempt(
        &self,
        prompt: &str,
        call: &Call,
    ) -> impl Future<Output = Result<String, ApiError>> + Send {
        OpenAi::attempt(self, prompt, call)
    }
}

impl Client for Anthropic {
    fn limiter(&self) -> &'static RateLimiter {
        Anthropic::limiter(self)
    }
    fn cost_of(&self, prompt: &str) -> Cost {
        Anthropic::cost_of(self, prompt)
    }
    fn attempt(
        &self,
        prompt: &str,
        call: &Call,
    ) -> impl Future<Output = Result<String, ApiError>> + Send {
        Anthropic::attempt(self, prompt, call)
    }
}

/// How the calls arrive.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Calls in all.
    pub calls: usize,
    /// Calls started per second; `None` starts them all at once.
    pub arrival: Option<f64>,
}

/// What a load saw from the client's side.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Calls that returned `Ok`.
    pub ok: usize,
    /// Calls that returned an error.
    pub failed: usize,
    /// Requests sent, every attempt of every call.
    pub requests: usize,
    /// Requests refused with 429.
    pub refused: usize,
    /// From the first call's start to the last call's end.
    pub wall: Duration,
    /// Each call's latency, sorted.
    pub latencies: Vec<Duration>,
}

impl LoadReport {
    /// Requests sent per successful call (∞ when none succeeded).
    pub fn requests_per_success(&self) -> f64 {
        self.requests as f64 / self.ok as f64
    }

    /// The latency at quantile `q` (0.5 for the median).
    pub fn latency(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let at = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[at]
    }

    /// Adds another load's counts, run beside this one.
    pub fn merge(mut self, other: LoadReport) -> LoadReport {
        self.ok += other.ok;
        self.failed += other.failed;
        self.requests += other.requests;
        self.refused += other.refused;
        self.wall = self.wall.max(other.wall);
        self.latencies.extend(other.latencies);
        self.latencies.sort();
        self
    }

    /// One line for stderr.
    pub fn summary(&self) -> String {
        format!(
            "ok {} of {}, {} requests ({:.2} per success), {} refused with 429, wall {:.2}s, p50 {:.2}s, p99 {:.2}s",
            self.ok,
            self.ok + self.failed,
            self.requests,
            self.requests_per_success(),
            self.refused,
            self.wall.as_secs_f64(),
            self.latency(0.5).as_secs_f64(),
            self.latency(0.99).as_secs_f64(),
        )
    }
}

/// The examples' policy, taking turns from the client's limiter and paying
/// each call's estimated tokens.
#[retry(max = 4, backoff = "exp_jitter", initial = "250ms", max_delay = "60s", deadline = "3m", limiter = client.limiter(), cost = client.cost_of(prompt))]
pub async fn paced(client: &impl Client, prompt: &str, call: &Call) -> Result<String, ApiError> {
    client.attempt(prompt, call).await
}

/// The same policy taking turns for requests only: a limiter that does not
/// know what a call costs (the request-only row of the storm bench).
#[retry(max = 4, backoff = "exp_jitter", initial = "250ms", max_delay = "60s", deadline = "3m", limiter = client.limiter())]
pub async fn paced_by_requests(
    client: &impl Client,
    prompt: &str,
    call: &Call,
) -> Result<String, ApiError> {
    client.attempt(prompt, call).await
}

/// The prompt of call `i`: about `tokens` of a range long, as OpenAI counts
/// (four characters a token), its size spread over the range by `i` alone —
/// the same sizes in every run.
pub fn prompt(i: usize, tokens: Option<(u32, u32)>) -> String {
    let Some((low, high)) = tokens else {
        return format!("load call {i}");
    };
    let span = u64::from(high.saturating_sub(low)) + 1;
    let size = u64::from(low) + (i as u64).wrapping_mul(7919) % span;
    let text = format!("load call {i} ");
    let mut prompt = text.repeat((size as usize * 4).div_ceil(text.len()).max(1));
    prompt.truncate((size as usize * 4).max(text.len()));
    prompt
}

/// The least time `limit` allows for calls costing `costs`: for each of its
/// limits, what the calls spend of it beyond its first bucket, at its rate —
/// the ideal the storms measure against.
pub fn token_ideal(limit: &retry_testkit::TokenLimit, costs: &[Cost]) -> Duration {
    let beyond_the_first_bucket = |per_minute: u64, part: fn(&Cost) -> u32| {
        if per_minute == 0 {
            return 0.0;
        }
        let rate = per_minute as f64 / 60.0;
        let spent: f64 = costs.iter().map(|cost| f64::from(part(cost))).sum();
        (spent - rate * limit.window.as_secs_f64()).max(0.0) / rate
    };
    let slowest = [
        beyond_the_first_bucket(limit.tokens_per_minute, |c| c.total_tokens()),
        beyond_the_first_bucket(limit.input_per_minute, |c| c.input_tokens()),
        beyond_the_first_bucket(limit.output_per_minute, |c| c.output_tokens()),
    ]
    .into_iter()
    .fold(0.0, f64::max);
    Duration::from_secs_f64(slowest)
}

/// Parses `LO..HI` (or a single `N`): a range of token counts.
pub fn token_range(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{text}` is not a range of tokens such as 200..2000");
    let (low, high) = match text.split_once("..") {
        Some((low, high)) => (low, high.trim_start_matches('=')),
        None => (text, text),
    };
    let (low, high): (u32, u32) = (
        low.trim().parse().map_err(|_| bad())?,
        high.trim().parse().map_err(|_| bad())?,
    );
    match low <= high && high > 0 {
        true => Ok((low, high)),
        false => Err(bad()),
    }
}

/// The same policy with no limiter: each call on its own, as before.
#[retry(
    max = 4,
    backoff = "exp_jitter",
    initial = "250ms",
    max_delay = "60s",
    deadline = "3m"
)]
pub async fn unpaced(client: &impl Client, prompt: &str, call: &Call) -> Result<String, ApiError> {
    client.attempt(prompt, call).await
}

/// Runs `load`, each call through `one(i, call)`; a call's attempts and 429s are
/// counted on its [`Call`].
pub async fn drive<F, Fut>(load: Load, one: F) -> LoadReport
where
    F: Fn(usize, Arc<Call>) -> Fut,
    Fut: Future<Output = Result<String, ApiError>> + Send + 'static,
{
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(load.calls);
    for i in 0..load.calls {
        if let Some(per_second) = load.arrival {
            let at = start + Duration::from_secs_f64(i as f64 / per_second);
            tokio::time::sleep_until(at.into()).await;
        }
        let call = Arc::new(Call::new());
        let attempt = one(i, call.clone());
        tasks.push(tokio::spawn(async move {
            let began = Instant::now();
            let result = attempt.await;
            (result.is_ok(), began.elapsed(), call)
        }));
    }
    let mut report = LoadReport::default();
    for task in tasks {
        let Ok((ok, latency, call)) = task.await else {
            report.failed += 1;
            continue;
        };
        if ok {
            report.ok += 1;
        } else {
            report.failed += 1;
        }
        report.requests += call.attempts() as usize;
        report.refused += call.refusals() as usize;
        report.latencies.push(latency);
    }
    report.wall = start.elapsed();
    report.latencies.sort();
    report
}

/// Counts a 429 on the call: the load's own tally, with no server to ask.
pub(crate) fn tally(call: &Call, result: &Result<String, ApiError>) {
    if let Err(error) = result
        && matches!(error, ApiError::Status { .. })
        && error.class() == ErrorClass::RateLimit
    {
        call.note_refusal();
    }
}
