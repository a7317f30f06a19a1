use ai_retry::{Classify, ErrorClass, RateLimiter, retry};

#[derive(Debug)]
struct ApiError;

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        ErrorClass::RateLimit
    }
}

static OPENAI: RateLimiter = RateLimiter::new();

#[retry(limiter = OPENAI)]
async fn call() -> Result<(), ApiError> {
    Ok(())
}

fn main() {
    let _ = call();
}
