use ai_retry::retry;

#[retry(backoff = "expo")]
fn call() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    call().unwrap();
}
