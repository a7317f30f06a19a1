use ai_retry::retry;

#[retry(maxx = 3)]
fn call() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    call().unwrap();
}
