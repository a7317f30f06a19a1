use ai_retry::{Classify, ErrorClass, RateLimiter, Throttled, retry};

#[derive(Debug)]
struct ApiError;

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        ErrorClass::RateLimit
    }
}

impl From<Throttled> for ApiError {
    fn from(_: Throttled) -> ApiError {
        ApiError
    }
}

static OPENAI: RateLimiter = RateLimiter::new();

#[retry(limiter = OPENAI, cost = "a lot")]
fn call() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
