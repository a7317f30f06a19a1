use ai_retry::retry;

#[retry(on = RateLimited | Timeout)]
fn call() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    call().unwrap();
}
