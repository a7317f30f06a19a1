use ai_retry::{Classify, ErrorClass, retry};

#[derive(Debug)]
struct ApiError;

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Server
    }
}

#[retry(timeout = "5s")]
async fn call() -> Result<(), ApiError> {
    Ok(())
}

fn main() {
    let _ = call();
}
