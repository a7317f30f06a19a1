//! `cargo run --example anthropic_chat -- "prompt"`: one call to
//! `{ANTHROPIC_BASE_URL}/v1/messages` through `#[retry]`, riding out 529 overload.
//!
//! With `ANTHROPIC_API_KEY` set it calls the real API; without, `retry-testkit`
//! on 127.0.0.1 plays a 429 + Retry-After, a 529, then the answer.

use std::process::ExitCode;

use ai_retry_examples::anthropic::Anthropic;
use ai_retry_examples::demo::{self, ChatArgs, Provider};

const ABOUT: &str = "One chat call to {ANTHROPIC_BASE_URL}/v1/messages through #[retry], 529 overload included: the answer on stdout, each retry on stderr.";

#[tokio::main]
async fn main() -> ExitCode {
    demo::finish(run().await)
}

async fn run() -> Result<String, ai_retry_examples::ApiError> {
    let args = ChatArgs::parse(Provider::Anthropic, ABOUT);
    let backend = demo::backend(Provider::Anthropic, false, &args).await?;
    let client = Anthropic::for_backend(&backend)?;
    client.chat(&args.prompt()).await
}
