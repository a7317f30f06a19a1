use ai_retry::retry;

#[derive(Debug)]
struct ApiError;

#[retry(max = 3)]
fn call() -> Result<(), ApiError> {
    Err(ApiError)
}

fn main() {
    call().unwrap();
}
