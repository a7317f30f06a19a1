use ai_retry::retry;

#[retry(clone(prompt))]
fn call(prompt: &str) -> std::io::Result<String> {
    Ok(prompt.to_string())
}

fn main() {
    call("hi").unwrap();
}
