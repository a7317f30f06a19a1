use ai_retry::retry;

#[retry]
const fn call() -> Result<(), ()> {
    Ok(())
}

fn main() {
    call().unwrap();
}
