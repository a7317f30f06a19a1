//! `cargo run --example async_openai_chat -- "prompt"`: one chat call through
//! async-openai 0.43, with ai-retry's tower layer in place of its own retries.
//!
//! Same environment and output as `openai_chat`: with `OPENAI_API_KEY` set it
//! calls the real API; without, it starts `retry-testkit` on 127.0.0.1 with a
//! 429 + Retry-After, an overload, then the answer. The answer goes to stdout,
//! each retry to stderr; exit 1 with a one-line error after the last attempt.

use std::process::ExitCode;

use ai_retry_examples::demo::{self, ChatArgs, Provider};
use ai_retry_examples::openai_sdk;

const ABOUT: &str = "One chat call through async-openai 0.43 with ai-retry's tower layer: the answer on stdout, each retry on stderr.";

#[tokio::main]
async fn main() -> ExitCode {
    demo::finish(run().await)
}

async fn run() -> Result<String, Box<dyn std::error::Error>> {
    let args = ChatArgs::parse(Provider::OpenAi, ABOUT);
    let backend = demo::backend(Provider::OpenAi, false, &args).await?;
    let client = openai_sdk::for_backend(&backend)?;
    openai_sdk::ask(&client, &backend.model, &args.prompt())
        .await
        .map_err(|error| openai_sdk::explain(error, backend.max_body))
}
