//! `cargo bench -p ai-retry-contention-bench`: the optimistic-concurrency experiment of the
//! AWS Architecture Blog post "Exponential Backoff And Jitter" (Marc Brooker,
//! 2015), in virtual time. N clients each read a row, wait a network delay
//! (10 ms), and write it back only if nobody wrote in between; a conflict is
//! retried after the strategy's delay. Base 5 ms, cap 2 s, unlimited attempts.
//! Prints total calls and completion time per strategy and client count, and
//! draws `docs/contention.svg`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ai_retry::runtime::{Backoff, Policy, Retry};
use backon::BackoffBuilder;
use plotters::prelude::*;

const CLIENTS: [u32; 4] = [50, 100, 150, 190];
const NETWORK: Duration = Duration::from_millis(10);
const BASE: Duration = Duration::from_millis(5);
const CAP: Duration = Duration::from_secs(2);
const TRIALS: u64 = 5;

/// A delay schedule: ai-retry's own loop, or a peer's iterator of delays.
#[derive(Clone, Copy)]
enum Schedule {
    AiRetry(Backoff),
    /// backon's `ExponentialBuilder::default()`: 1 s doubling to 60 s, no jitter
    /// (its 3-attempt limit lifted so every client finishes).
    BackonDefault,
    /// backon's builder at the experiment's base and cap, with its jitter.
    BackonJitter,
    /// tokio-retry2's README strategy: `ExponentialBackoff::from_millis(10).map(jitter)`, capped.
    TokioRetry2,
    /// The official OpenAI/Anthropic SDKs: 0.5 s doubling to 8 s, times U[0.75, 1].
    Sdk,
}

impl Schedule {
    fn name(self) -> &'static str {
        match self {
            Schedule::AiRetry(backoff) => backoff.name(),
            Schedule::BackonDefault => "backon default",
            Schedule::BackonJitter => "backon jitter",
            Schedule::TokioRetry2 => "tokio-retry2",
            Schedule::Sdk => "official SDKs",
        }
    }

    /// The delays after each conflict, for the peers.
    fn delays(self) -> Box<dyn Iterator<Item = Duration> + Send> {
        match self {
            Schedule::AiRetry(_) => unreachable!("ai-retry runs its own loop"),
            Schedule::BackonDefault => Box::new(
                backon::ExponentialBuilder::default()
                    .without_max_times()
                    .build(),
            ),
            Schedule::BackonJitter => Box::new(
                backon::ExponentialBuilder::default()
                    .with_min_delay(BASE)
                    .with_max_delay(CAP)
                    .with_jitter()
                    .without_max_times()
                    .build(),
            ),
            Schedule::TokioRetry2 => Box::new(
                tokio_retry2::strategy::ExponentialBackoff::from_millis(10)
                    .max_delay(CAP)
                    .map(tokio_retry2::strategy::jitter),
            ),
            Schedule::Sdk => Box::new((0..).map(|n: u32| {
                let delay = Duration::from_millis(500)
                    .saturating_mul(1 << n.min(4))
                    .min(Duration::from_secs(8));
                delay.mul_f64(1.0 - 0.25 * rand::random::<f64>())
            })),
        }
    }
}

#[derive(Debug)]
struct Conflict;

/// One read-then-conditional-write: an attempt.
async fn write(row: &AtomicU64, calls: &AtomicU64) -> Result<(), Conflict> {
    calls.fetch_add(1, Ordering::Relaxed);
    let read = row.load(Ordering::SeqCst);
    tokio::time::sleep(NETWORK).await;
    row.compare_exchange(read, read + 1, Ordering::SeqCst, Ordering::SeqCst)
        .map(|_| ())
        .map_err(|_| Conflict)
}

async fn client(schedule: Schedule, row: Arc<AtomicU64>, calls: Arc<AtomicU64>) {
    match schedule {
        Schedule::AiRetry(backoff) => {
            let policy = Policy::new()
                .max_attempts(u32::MAX)
                .backoff(backoff)
                .initial(BASE)
                .max_delay(CAP);
            let done = Retry::new(policy).run_async(|| write(&row, &calls)).await;
            assert!(done.is_ok(), "unlimited attempts always finish");
        }
        peer => {
            let mut delays = peer.delays();
            while write(&row, &calls).await.is_err() {
                tokio::time::sleep(delays.next().unwrap_or(CAP)).await;
            }
        }
    }
}

/// (total calls, completion time) for `clients` contending clients.
fn run(schedule: Schedule, clients: u32) -> (u64, Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let (row, calls) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let start = tokio::time::Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| tokio::spawn(client(schedule, row.clone(), calls.clone())))
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            row.load(Ordering::SeqCst),
            u64::from(clients),
            "every client wrote once"
        );
        (calls.load(Ordering::Relaxed), start.elapsed())
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut schedules: Vec<Schedule> = Backoff::NAMES
        .iter()
        .map(|&(_, b)| Schedule::AiRetry(b))
        .collect();
    schedules.extend([
        Schedule::BackonDefault,
        Schedule::BackonJitter,
        Schedule::TokioRetry2,
        Schedule::Sdk,
    ]);

    println!("Contention (virtual time, mean of {TRIALS} trials): total calls / completion time");
    print!("| strategy |");
    CLIENTS.iter().for_each(|c| print!(" {c} clients |"));
    println!("\n|---|{}", "---|".repeat(CLIENTS.len()));
    let mut results = Vec::new();
    for schedule in &schedules {
        let cells: Vec<(f64, f64)> = CLIENTS
            .iter()
            .map(|&clients| {
                let trials: Vec<(u64, Duration)> =
                    (0..TRIALS).map(|_| run(*schedule, clients)).collect();
                let calls = trials.iter().map(|t| t.0 as f64).sum::<f64>() / TRIALS as f64;
                let secs = trials.iter().map(|t| t.1.as_secs_f64()).sum::<f64>() / TRIALS as f64;
                (calls, secs)
            })
            .collect();
        print!("| {} |", schedule.name());
        cells
            .iter()
            .for_each(|(calls, secs)| print!(" {calls:.0} / {secs:.2} s |"));
        println!();
        results.push((schedule.name(), cells));
    }

    let find = |name: &str| {
        results
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, cells)| cells.clone())
            .unwrap()
    };
    let (exp, full) = (find("exp"), find("exp_jitter"));
    let last = CLIENTS.len() - 1;
    println!(
        "\nAt {} clients, full jitter makes {:.1}x fewer calls than plain exponential and finishes {:.1}x sooner.",
        CLIENTS[last],
        exp[last].0 / full[last].0,
        exp[last].1 / full[last].1,
    );
    match draw(&results) {
        Ok(path) => println!("chart: {path}"),
        Err(error) => println!("chart not drawn: {error}"),
    }
}

type Results = Vec<(&'static str, Vec<(f64, f64)>)>;

fn draw(results: &Results) -> Result<String, Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("docs");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("contention.svg");
    let root = SVGBackend::new(&path, (1100, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(550);
    let panels = [
        (left, "total calls", 0usize, true),
        (right, "completion time (s)", 1usize, true),
    ];
    for (area, label, index, log) in panels {
        let value = |cell: &(f64, f64)| if index == 0 { cell.0 } else { cell.1 };
        let max = results
            .iter()
            .flat_map(|(_, cells)| cells.iter().map(value))
            .fold(1.0, f64::max);
        let min = results
            .iter()
            .flat_map(|(_, cells)| cells.iter().map(value))
            .fold(f64::MAX, f64::min)
            .max(1e-3);
        let mut chart = ChartBuilder::on(&area)
            .caption(format!("{label} vs clients"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(40u32..200u32, (min * 0.8..max * 1.25).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("clients")
            .y_desc(label)
            .draw()?;
        let _ = log;
        for (i, (name, cells)) in results.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points: Vec<(u32, f64)> = CLIENTS
                .iter()
                .zip(cells)
                .map(|(&c, cell)| (c, value(cell)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        if index == 0 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 11))
                .draw()?;
        }
    }
    root.present()?;
    Ok("docs/contention.svg".to_string())
}
