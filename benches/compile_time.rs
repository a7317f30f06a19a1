//! `cargo bench --bench compile_time`: `cargo check` wall time of a generated
//! crate with 200 functions (100 blocking, 100 async) under `#[retry]`, against
//! the same 200 without the attribute; prints both and the ratio.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const FUNCTIONS: usize = 200;
const RUNS: usize = 3;

fn source(retried: bool) -> String {
    let mut code = String::from("#![allow(dead_code)]\nuse std::io;\n\n");
    for i in 0..FUNCTIONS {
        let attribute = if retried {
            "#[ai_retry::retry(max = 4, initial = \"100ms\", on = RateLimit | Timeout | Connection)]\n"
        } else {
            ""
        };
        let asyncness = if i % 2 == 0 { "async " } else { "" };
        code.push_str(&format!(
            "{attribute}pub {asyncness}fn call_{i}(input: &str, n: u64) -> io::Result<String> {{\n    \
             let parsed: u64 = input.trim().parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, \"not a number\"))?;\n    \
             if parsed == n {{\n        return Err(io::ErrorKind::ConnectionReset.into());\n    }}\n    \
             Ok(format!(\"{{}}-{{}}\", parsed + n, {i}))\n}}\n\n"
        ));
    }
    code
}

fn write_crate(dir: &Path, retried: bool, root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    let manifest = format!(
        "[package]\nname = \"compile-bench-{}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nai-retry = {{ path = {:?} }}\n\n[workspace]\n",
        if retried { "retried" } else { "plain" },
        root.display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest)?;
    std::fs::write(dir.join("src/lib.rs"), source(retried))
}

/// One `cargo check` of the crate's own code (dependencies already built).
fn check(dir: &Path, target: &Path) -> Duration {
    // Touch the source so only this crate is checked again.
    let lib = dir.join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).expect("generated source");
    std::fs::write(&lib, text).expect("rewrite source");
    let start = Instant::now();
    let status = Command::new(env!("CARGO"))
        .args(["check", "--quiet", "--lib"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo check failed in {}", dir.display());
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("workspace root");
    let work = root.join("target").join("compile-bench");
    let target = work.join("target");
    let (plain, retried) = (work.join("plain"), work.join("retried"));
    write_crate(&plain, false, &root).expect("write plain crate");
    write_crate(&retried, true, &root).expect("write retried crate");
    // Warm-up: build the dependencies once for both.
    check(&plain, &target);
    check(&retried, &target);
    let plain_time = median((0..RUNS).map(|_| check(&plain, &target)).collect());
    let retried_time = median((0..RUNS).map(|_| check(&retried, &target)).collect());
    println!("`cargo check` of {FUNCTIONS} functions (100 blocking, 100 async), median of {RUNS}:");
    println!("| crate | check time |");
    println!("|---|---|");
    println!(
        "| without the attribute | {:.2} s |",
        plain_time.as_secs_f64()
    );
    println!(
        "| with `#[retry]` on each | {:.2} s |",
        retried_time.as_secs_f64()
    );
    println!(
        "ratio {:.2}x, {:.1} ms per annotated function",
        retried_time.as_secs_f64() / plain_time.as_secs_f64(),
        (retried_time.as_secs_f64() - plain_time.as_secs_f64()) * 1000.0 / FUNCTIONS as f64
    );
}
