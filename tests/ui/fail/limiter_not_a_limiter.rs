use ai_retry::{RetryBudget, retry};

static BUDGET: RetryBudget = RetryBudget::new(0.1, 10);

#[retry(on = any, limiter = BUDGET)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {
    let _ = call();
}
