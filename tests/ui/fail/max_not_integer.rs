use ai_retry::retry;

#[retry(max = "3")]
fn call() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    call().unwrap();
}
