use ai_retry::retry;

#[retry(clone(reqest))]
fn call(request: String) -> std::io::Result<String> {
    Ok(request)
}

fn main() {
    call(String::new()).unwrap();
}
