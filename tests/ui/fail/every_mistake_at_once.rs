use ai_retry::retry;

// Four mistakes, four errors; `call` still exists, so `main` has no error.
#[retry(max = 0, backoff = "fast", on = Sever, deadline = "1 minute")]
fn call() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    call().unwrap();
}
