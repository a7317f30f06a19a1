use ai_retry::retry;

#[retry(max = 3)]
struct Client;

fn main() {
    let _client = Client;
}
