//! The README's "async-openai and tower" block, word for word: compiled by
//! `cargo test`, and `examples/tests/readme_blocks.rs` checks the two agree.

use ai_retry::runtime::Policy;
use ai_retry::{HttpRetry, RateLimiter};
use async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use async_openai::{Client, config::OpenAIConfig, middleware::ReqwestService};
use tower::Layer;

static OPENAI: RateLimiter = RateLimiter::new();

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let retry = HttpRetry::new(Policy::new().max_attempts(4)).limiter(&OPENAI);
    let client =
        Client::with_config(OpenAIConfig::new()) // OPENAI_API_KEY, OPENAI_BASE_URL
            .with_http_service(retry.layer(ReqwestService::new(reqwest::Client::new())));
    let request = CreateChatCompletionRequestArgs::default()
        .model("gpt-4o-mini")
        .messages([ChatCompletionRequestUserMessage::from("Say hello").into()])
        .build()?;
    let answer = client.chat().create(request).await?;
    println!("{:?}", answer.choices[0].message.content);
    Ok(())
}
