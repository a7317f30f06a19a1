use ai_retry::retry;

fn send(request: String) -> std::io::Result<String> {
    Ok(request)
}

// `send` takes the request by value, so the second attempt would have nothing to
// send: the fix is `#[retry(clone(request))]`.
#[retry]
fn call(request: String) -> std::io::Result<String> {
    send(request)
}

fn main() {
    call(String::new()).unwrap();
}
