#![deny(warnings, unused_qualifications)]

use ai_retry::retry;
use std::io;

struct Client {
    sent: u32,
}

impl Client {
    #[retry(initial = "1ms")]
    fn get(&self) -> io::Result<u32> {
        Ok(self.sent)
    }

    #[retry(initial = "1ms")]
    fn bump(&mut self) -> io::Result<u32> {
        self.sent += 1;
        Ok(self.sent)
    }

    #[retry(initial = "1ms")]
    async fn bump_async(&mut self, by: u32) -> io::Result<u32> {
        self.sent += by;
        Ok(self.sent)
    }

    #[retry(initial = "1ms")]
    fn into_sent(self) -> io::Result<u32> {
        Ok(self.sent)
    }
}

trait Api {
    fn call(&self, prompt: &str) -> io::Result<String>;
    async fn call_async(&mut self, prompt: &str) -> io::Result<String>;
}

impl Api for Client {
    #[retry(max = 2)]
    fn call(&self, prompt: &str) -> io::Result<String> {
        Ok(format!("{prompt}{}", self.sent))
    }

    #[retry(max = 2)]
    async fn call_async(&mut self, prompt: &str) -> io::Result<String> {
        self.sent += 1;
        Ok(format!("{prompt}{}", self.sent))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut client = Client { sent: 0 };
    assert_eq!(client.bump().unwrap(), 1);
    assert_eq!(client.bump_async(2).await.unwrap(), 3);
    assert_eq!(client.get().unwrap(), 3);
    assert_eq!(client.call("a").unwrap(), "a3");
    assert_eq!(client.call_async("b").await.unwrap(), "b4");
    assert_eq!(client.into_sent().unwrap(), 4);
}
