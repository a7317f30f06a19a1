use ai_retry::retry;

#[retry(on = RateLimit, Timeout)]
fn call() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    let _ = call();
}
