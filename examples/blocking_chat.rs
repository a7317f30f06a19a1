//! `cargo run --example blocking_chat -- "prompt"`: the OpenAI call from a plain
//! `fn` with `reqwest::blocking`: `#[retry]`'s blocking expansion, no async runtime.

use std::process::ExitCode;

use ai_retry_examples::blocking::BlockingOpenAi;
use ai_retry_examples::demo::{self, ChatArgs, Provider};

const ABOUT: &str = "One chat call from a plain fn with reqwest::blocking through #[retry]: the answer on stdout, each retry on stderr.";

fn main() -> ExitCode {
    demo::finish(run())
}

fn run() -> Result<String, ai_retry_examples::ApiError> {
    let args = ChatArgs::parse(Provider::OpenAi, ABOUT);
    // Only the local server needs a runtime, and it runs on its own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ai_retry_examples::ApiError::Setup(e.to_string()))?;
    let backend = runtime.block_on(demo::backend(Provider::OpenAi, true, &args))?;
    let client = BlockingOpenAi::new(
        &backend.base_url,
        backend.api_key.clone(),
        &backend.model,
        backend.timeout,
    )?
    .max_body(backend.max_body);
    client.chat(&args.prompt())
}
