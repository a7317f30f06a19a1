//! `cargo run --example openai_chat -- "prompt"`: one chat call to
//! `{OPENAI_BASE_URL}/chat/completions` through `#[retry]`.
//!
//! With `OPENAI_API_KEY` set it calls the real API; without, it starts
//! `retry-testkit` on 127.0.0.1 with a 429 + Retry-After, an overload, then the
//! answer, so you can watch the retries. The answer goes to stdout, each retry
//! to stderr; exit 1 with a one-line error after the last attempt.

use std::process::ExitCode;

use ai_retry_examples::demo::{self, ChatArgs, Provider};

const ABOUT: &str = "One chat call to {OPENAI_BASE_URL}/chat/completions through #[retry]: the answer on stdout, each retry on stderr.";
use ai_retry_examples::openai::OpenAi;

#[tokio::main]
async fn main() -> ExitCode {
    demo::finish(run().await)
}

async fn run() -> Result<String, ai_retry_examples::ApiError> {
    let args = ChatArgs::parse(Provider::OpenAi, ABOUT);
    let backend = demo::backend(Provider::OpenAi, false, &args).await?;
    let client = OpenAi::for_backend(&backend)?;
    client.chat(&args.prompt()).await
}
