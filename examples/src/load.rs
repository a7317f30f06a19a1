//! Many `openai_chat` calls from one process, all at once or arriving at a
//! steady rate: what the `load` example runs and the `storm` benchmark measures.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_retry::{Classify, ErrorClass, retry};

use crate::openai::OpenAi;
use crate::{ApiError, Call};

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

/// The `openai_chat` policy, taking turns from the client's limiter.
#[retry(max = 4, backoff = "exp_jitter", initial = "250ms", max_delay = "30s", deadline = "3m", limiter = client.limiter())]
pub async fn paced(client: &OpenAi, prompt: &str, call: &Call) -> Result<String, ApiError> {
    client.attempt(prompt, call).await
}

/// The same policy with no limiter: each call on its own, as before.
#[retry(
    max = 4,
    backoff = "exp_jitter",
    initial = "250ms",
    max_delay = "30s",
    deadline = "3m"
)]
pub async fn unpaced(client: &OpenAi, prompt: &str, call: &Call) -> Result<String, ApiError> {
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
