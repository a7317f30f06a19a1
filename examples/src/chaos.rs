//! The chaos soak: many calls of the OpenAI client against `retry-testkit` in
//! chaos mode, checking that the library keeps its promises when the server is
//! at its worst. Driven by `cargo run --release --example chaos` and, short, by
//! the test suite.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_retry::{Classify, ErrorClass, retry};
use retry_testkit::{Chaos, Config, RequestRecord, TestServer};

use crate::openai::OpenAi;
use crate::{ApiError, Call};

/// Each request's timeout: a hang (1 s) always outlasts it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(250);
/// Each call's budget, as in the attribute below.
pub const DEADLINE: Duration = Duration::from_secs(3);
/// A call may pass its deadline by one request in flight, plus scheduling.
pub const SLACK: Duration = Duration::from_millis(REQUEST_TIMEOUT.as_millis() as u64 + 150);

/// The key the soak's client sends; no error may show it.
const API_KEY: &str = "sk-chaos-secret";

/// The call under test: the client's single attempt, retried with a deadline.
#[retry(max = 8, initial = "20ms", max_delay = "2s", deadline = "3s")]
pub async fn chaos_call(client: &OpenAi, prompt: &str, call: &Call) -> Result<String, ApiError> {
    client.attempt(prompt, call).await
}

/// How big a soak.
#[derive(Clone, Copy, Debug)]
pub struct Soak {
    /// Calls in all.
    pub calls: usize,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// The chaos seed.
    pub seed: u64,
    /// Print a line to stderr at each tenth of the run.
    pub progress: bool,
}

/// The run's memory is flat when the last tenth's resident memory is within
/// this share of the middle tenth's, plus [`MEMORY_SLACK_KIB`].
pub const MEMORY_GROWTH: f64 = 0.10;
/// Allocator noise allowed on top of [`MEMORY_GROWTH`], in KiB.
pub const MEMORY_SLACK_KIB: u64 = 4 * 1024;

/// What a soak saw. `problems()` lists every broken promise.
#[derive(Debug, Default)]
pub struct Report {
    /// Calls made.
    pub calls: usize,
    /// Calls that returned `Ok`.
    pub ok: usize,
    /// Failed calls by the class of their error.
    pub errors: BTreeMap<String, usize>,
    /// Requests the server saw, by what it did.
    pub faults: BTreeMap<String, usize>,
    /// Requests that came before the time the server had named.
    pub early: usize,
    /// Early requests by the answer their caller had been given.
    pub early_after: BTreeMap<String, usize>,
    /// Calls that ran past `DEADLINE + SLACK`.
    pub deadline_overruns: usize,
    /// The longest call past its deadline.
    pub worst_overrun: Duration,
    /// Calls whose task panicked.
    pub panics: usize,
    /// Calls whose error is not what their last attempt got.
    pub lost_errors: Vec<String>,
    /// Errors whose text shows the API key.
    pub leaked_secrets: usize,
    /// Resident memory after the first batch and at the end, in KiB.
    pub rss_kib: (u64, u64),
    /// Resident memory at each tenth of the run, in KiB.
    pub rss_trace: Vec<u64>,
    /// Wall time.
    pub elapsed: Duration,
}

impl Report {
    /// Every promise broken in the run; empty when all held.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.ok + self.errors.values().sum::<usize>() + self.panics != self.calls {
            problems.push("some calls never ended".into());
        }
        if self.deadline_overruns > 0 {
            problems.push(format!(
                "{} calls overran the deadline (worst {:?})",
                self.deadline_overruns, self.worst_overrun
            ));
        }
        if self.leaked_secrets > 0 {
            problems.push(format!("{} errors show the API key", self.leaked_secrets));
        }
        if self.panics > 0 {
            problems.push(format!("{} calls panicked", self.panics));
        }
        if self.early > 0 {
            problems.push(format!(
                "{} requests came before the server's hint",
                self.early
            ));
        }
        if let Some(why) = self.memory_growth() {
            problems.push(why);
        }
        problems.extend(self.lost_errors.iter().take(5).cloned());
        problems
    }

    /// Whether resident memory kept growing after its plateau: the last tenth
    /// against the middle one (by then the pools, the runtime and the
    /// server's bounded log have their size). `None` when flat, or when the
    /// run is too short to have ten tenths.
    pub fn memory_growth(&self) -> Option<String> {
        let (&plateau, &last) = (self.rss_trace.get(4)?, self.rss_trace.get(9)?);
        let allowed = plateau + (plateau as f64 * MEMORY_GROWTH) as u64 + MEMORY_SLACK_KIB;
        (last > allowed).then(|| {
            format!(
                "resident memory grew from {plateau} KiB at the middle of the run to {last} KiB at its end (allowed {allowed} KiB)"
            )
        })
    }
}

/// Runs the soak on the current runtime.
pub async fn soak(plan: Soak) -> Result<Report, ApiError> {
    let chaos = Chaos {
        seed: plan.seed,
        hang: Duration::from_secs(1),
    };
    let server = TestServer::start(Config {
        chaos: Some(chaos),
        ..Config::default()
    })
    .await
    .map_err(|e| ApiError::Setup(format!("cannot start the local server: {e}")))?;
    let client = Arc::new(OpenAi::new(
        &server.openai_base_url(),
        Some(API_KEY.into()),
        "gpt-4o-mini",
        REQUEST_TIMEOUT,
    )?);
    let mut report = Report {
        calls: plan.calls,
        ..Report::default()
    };
    let start = Instant::now();
    let batch = plan.concurrency.max(1);
    let mut done = 0;
    while done < plan.calls {
        let size = batch.min(plan.calls - done);
        let tasks: Vec<_> = (0..size)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    let call = Call::new();
                    let began = Instant::now();
                    let result = chaos_call(&client, &format!("call {}", done + i), &call).await;
                    (call.idempotency_key().to_string(), result, began.elapsed())
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            match task.await {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) if error.is_panic() => report.panics += 1,
                Err(_) => {}
            }
        }
        record(&mut report, outcomes, server.take_requests());
        done += size;
        if report.rss_kib.0 == 0 {
            report.rss_kib.0 = rss_kib();
        }
        // One reading per tenth of the run (a batch may span several tenths).
        let tenths = done * 10 / plan.calls.max(1);
        if tenths > report.rss_trace.len() {
            let rss = rss_kib();
            report.rss_trace.resize(tenths, rss);
            if plan.progress {
                eprintln!(
                    "chaos: {done}/{} calls in {:.1?}, {} ok, resident memory {} KiB",
                    plan.calls,
                    start.elapsed(),
                    report.ok,
                    rss
                );
            }
        }
    }
    report.rss_kib.1 = rss_kib();
    report.elapsed = start.elapsed();
    Ok(report)
}

fn record(
    report: &mut Report,
    outcomes: Vec<(String, Result<String, ApiError>, Duration)>,
    requests: Vec<RequestRecord>,
) {
    let mut last: HashMap<&str, &RequestRecord> = HashMap::new();
    for request in &requests {
        // `429:retry-after=2` counts as `429`, `hang=1s` as `hang`.
        let kind = request
            .fault
            .split([':', '='])
            .next()
            .unwrap_or("")
            .to_string();
        *report.faults.entry(kind).or_default() += 1;
        report.early += usize::from(request.early);
        if let Some(key) = &request.idempotency_key {
            if request.early
                && let Some(told) = last.get(key.as_str())
            {
                // Which answer the caller did not wait for: the problem to chase.
                *report.early_after.entry(told.fault.clone()).or_default() += 1;
            }
            last.insert(key, request);
        }
    }
    for (key, result, elapsed) in outcomes {
        if elapsed > DEADLINE + SLACK {
            report.deadline_overruns += 1;
        }
        report.worst_overrun = report.worst_overrun.max(elapsed.saturating_sub(DEADLINE));
        let Some(last) = last.get(key.as_str()) else {
            report
                .lost_errors
                .push(format!("call {key}: the server saw no request"));
            continue;
        };
        match &result {
            Ok(_) => report.ok += 1,
            Err(error) => {
                *report
                    .errors
                    .entry(error.class().name().to_string())
                    .or_default() += 1
            }
        }
        if let Some(why) = mismatch(&result, last) {
            report.lost_errors.push(format!("call {key}: {why}"));
        }
    }
}

/// Why `result` is not what the call's last attempt got, if it is not.
fn mismatch(result: &Result<String, ApiError>, last: &RequestRecord) -> Option<String> {
    let fault = last.fault.as_str();
    let fine = match result {
        Ok(_) => fault == "ok" && last.status == 200,
        Err(ApiError::Status { status, .. }) => *status == last.status,
        Err(ApiError::Malformed(_)) => fault == "malformed",
        Err(error @ ApiError::Transport(_)) => match error.class() {
            ErrorClass::Timeout => fault.starts_with("hang"),
            ErrorClass::Connection => last.status == 0,
            _ => false,
        },
        Err(_) => false,
    };
    (!fine).then(|| {
        format!(
            "returned {result:?} after its last request got {fault} ({})",
            last.status
        )
    })
}

/// This process's resident memory, in KiB (0 where /proc is missing).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}
