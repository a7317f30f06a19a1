//! `cargo run --release --example chaos -- --calls N --concurrency C [--seed S]`:
//! the chaos soak. Drives the OpenAI client through `retry-testkit`'s chaos mode
//! (every fault, absurd headers included) and checks that every call ended in
//! `Ok` or its last attempt's error, within its deadline, with no panic, no
//! early retry, and flat memory. Exit 1 if any promise broke.

use std::process::ExitCode;

use ai_retry_examples::chaos::{DEADLINE, SLACK, Soak, soak};

fn main() -> ExitCode {
    let plan = match parse(std::env::args().skip(1)) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("chaos: {error}\nusage: chaos [--calls N] [--concurrency C] [--seed S]");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("chaos: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(soak(plan)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("chaos: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "calls: {} ({} concurrent, seed {}) in {:.1?}",
        report.calls, plan.concurrency, plan.seed, report.elapsed
    );
    println!("ok: {}   errors by class: {:?}", report.ok, report.errors);
    println!("requests by fault: {:?}", report.faults);
    println!(
        "early requests: {} {:?}   panics: {}",
        report.early, report.early_after, report.panics
    );
    println!(
        "deadline {DEADLINE:?} + slack {SLACK:?}: overruns {}, worst past the deadline {:?}",
        report.deadline_overruns, report.worst_overrun
    );
    println!(
        "lost errors: {}   errors showing the API key: {}",
        report.lost_errors.len(),
        report.leaked_secrets
    );
    println!(
        "resident memory: {} KiB after the first batch, {} KiB at the end",
        report.rss_kib.0, report.rss_kib.1
    );
    println!("resident memory at each tenth, KiB: {:?}", report.rss_trace);
    let problems = report.problems();
    if problems.is_empty() {
        println!("all promises held");
        ExitCode::SUCCESS
    } else {
        problems.iter().for_each(|p| eprintln!("BROKEN: {p}"));
        ExitCode::FAILURE
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Soak, String> {
    let mut plan = Soak {
        calls: 500,
        concurrency: 50,
        seed: 1,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = value
            .parse::<u64>()
            .map_err(|_| format!("{flag} takes a number, not {value:?}"))?;
        match flag.as_str() {
            "--calls" => plan.calls = number as usize,
            "--concurrency" => plan.concurrency = (number as usize).max(1),
            "--seed" => plan.seed = number,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(plan)
}
