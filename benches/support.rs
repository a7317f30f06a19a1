//! Shared by the benches: criterion's estimates read back for the ratio tables.

#![allow(dead_code, reason = "each bench uses part of this")]

use std::path::PathBuf;

/// The names given after `--` (`cargo bench --bench fleet -- stall hint`):
/// the arguments that are not flags. Each bench says what a name picks.
pub fn named_args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect()
}

/// criterion's mean estimate for `group/function`, in nanoseconds.
pub fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.pointer("/mean/point_estimate")?.as_f64()
}

fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    target.join("criterion")
}
