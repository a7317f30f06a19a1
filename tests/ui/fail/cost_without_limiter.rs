use ai_retry::retry;

#[retry(cost = 1000u32)]
fn call() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
