use ai_retry::retry;

#[retry(initial = "5 seconds")]
fn call() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    call().unwrap();
}
