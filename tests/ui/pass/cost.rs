#![deny(warnings, unused_qualifications)]

//! `cost = …` from the arguments, evaluated once per call: a token count, an
//! `(input, output)` pair, or a `Cost`; async and blocking; on a method.

use ai_retry::{Classify, Cost, ErrorClass, Limits, RateLimiter, Throttled, retry};

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

static OPENAI: RateLimiter = RateLimiter::with_limits(Limits::NONE.tokens(30_000));

fn estimate(prompt: &str) -> u32 {
    prompt.len().div_ceil(4) as u32 + 256
}

#[retry(limiter = OPENAI, cost = estimate(prompt))]
async fn chat(prompt: &str) -> Result<usize, ApiError> {
    Ok(prompt.len())
}

#[retry(limiter = OPENAI, cost = (prompt.len() as u32 / 4, max_tokens))]
fn blocking(prompt: &str, max_tokens: u32) -> Result<usize, ApiError> {
    Ok(prompt.len() + max_tokens as usize)
}

struct Client {
    limiter: RateLimiter,
    per_call: Cost,
}

impl Client {
    #[retry(limiter = self.limiter, cost = self.per_call, clone(prompt))]
    async fn ask(&mut self, prompt: String) -> Result<String, ApiError> {
        Ok(prompt)
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(chat("hello")).unwrap(), 5);
    assert_eq!(blocking("hello", 3).unwrap(), 8);
    let mut client = Client {
        limiter: RateLimiter::new(),
        per_call: Cost::tokens(10),
    };
    assert_eq!(runtime.block_on(client.ask("hi".into())).unwrap(), "hi");
}
