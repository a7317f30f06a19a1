#![deny(warnings, unused_qualifications)]

use ai_retry::retry;
use std::io;
use std::sync::Arc;

struct Client {
    base: String,
}

impl Client {
    #[retry(max = 2, initial = "1ms", timeout = "1s")]
    async fn chat(&self, prompt: &str) -> io::Result<String> {
        tokio::task::yield_now().await;
        Ok(format!("{}/{prompt}", self.base))
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::main]
async fn main() {
    let client = Arc::new(Client { base: "http://127.0.0.1".into() });
    let task = {
        let client = client.clone();
        tokio::spawn(async move { client.chat("hello").await })
    };
    assert_eq!(task.await.unwrap().unwrap(), "http://127.0.0.1/hello");
    let _future = assert_send(client.chat("again"));
}
