use ai_retry::retry;

// The name `Policy` (and backon, tenacity) use: the error names ours.
#[retry(max_attempts = 4)]
fn call() -> std::io::Result<()> {
    Ok(())
}

#[retry(retries = 3)]
fn again() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    call().unwrap();
    again().unwrap();
}
