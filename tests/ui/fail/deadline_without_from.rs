use ai_retry::{Classify, ErrorClass, retry};

#[derive(Debug)]
struct ApiError;

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Server
    }
}

// An async fn's deadline cuts the attempt in flight: the error type must take `TimedOut`.
#[retry(deadline = "30s")]
async fn call() -> Result<(), ApiError> {
    Ok(())
}

// A blocking fn cannot be cut: its deadline bounds sleeps only and needs nothing.
#[retry(deadline = "30s")]
fn blocking() -> Result<(), ApiError> {
    Ok(())
}

fn main() {
    let _ = call();
    let _ = blocking();
}
