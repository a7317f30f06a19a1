#![deny(warnings, unused_qualifications)]

//! The limiter as a static, as a field (shared or owned), on `&mut self`, in a
//! spawned (so `Send`) future, and on a blocking function.

use ai_retry::{Classify, ErrorClass, RateLimiter, Throttled, retry};
use std::sync::Arc;

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

#[retry(limiter = OPENAI)]
async fn free() -> Result<u32, ApiError> {
    Ok(1)
}

#[retry(limiter = OPENAI)]
fn blocking() -> Result<u32, ApiError> {
    Ok(2)
}

struct Client {
    shared: &'static RateLimiter,
    owned: Arc<RateLimiter>,
    calls: u32,
}

impl Client {
    #[retry(limiter = self.shared)]
    async fn by_reference(&self) -> Result<u32, ApiError> {
        Ok(3)
    }

    #[retry(limiter = self.owned)]
    async fn by_arc(&mut self) -> Result<u32, ApiError> {
        self.calls += 1;
        Ok(self.calls)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(tokio::spawn(free()).await.unwrap().unwrap(), 1);
    assert_eq!(blocking().unwrap(), 2);
    let mut client = Client {
        shared: &OPENAI,
        owned: Arc::new(RateLimiter::per_minute(60_000)),
        calls: 0,
    };
    assert_eq!(client.by_reference().await.unwrap(), 3);
    assert_eq!(client.by_arc().await.unwrap(), 1);
}
