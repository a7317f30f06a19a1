#![deny(dead_code)]

use ai_retry::retry;

#[retry]
fn never_called() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
