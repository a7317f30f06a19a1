use ai_retry::retry;

#[derive(Clone)]
struct Request {
    prompt: String,
}

#[retry(clone(request))]
fn call(Request { prompt }: Request) -> std::io::Result<String> {
    Ok(prompt)
}

fn main() {
    let _ = call(Request { prompt: "hi".into() });
}
