#![deny(warnings, unused_qualifications)]

use ai_retry::retry;
use async_trait::async_trait;
use std::io;

#[async_trait]
trait Chat {
    async fn chat(&self, prompt: String, attempts: &std::sync::atomic::AtomicU32) -> io::Result<String>;
}

struct Bot;

#[async_trait]
impl Chat for Bot {
    #[retry(max = 3, initial = "1ms")]
    async fn chat(&self, prompt: String, attempts: &std::sync::atomic::AtomicU32) -> io::Result<String> {
        let n = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n == 0 {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        Ok(format!("{prompt} after {} attempts", n + 1))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let bot: Box<dyn Chat + Send + Sync> = Box::new(Bot);
    assert_eq!(bot.chat("hi".to_string(), &attempts).await.unwrap(), "hi after 2 attempts");
}
