use ai_retry::retry;

fn always(_: &std::io::Error) -> bool {
    true
}

#[retry(on = Timeout, when = always)]
fn call() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    call().unwrap();
}
