use ai_retry::retry;

#[retry(on = any)]
fn call() -> Option<u32> {
    Some(1)
}

fn main() {
    call().unwrap();
}
