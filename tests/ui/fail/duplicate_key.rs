use ai_retry::retry;

#[retry(max = 3, max = 4)]
fn call() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    call().unwrap();
}
