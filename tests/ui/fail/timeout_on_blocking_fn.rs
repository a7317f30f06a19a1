use ai_retry::retry;

#[retry(timeout = "10s")]
fn call() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    call().unwrap();
}
