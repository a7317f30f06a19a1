//! `cargo run --example stream_chat -- "prompt"`: a streamed OpenAI answer,
//! printed token by token. The request is retried until the first token
//! arrives, never after; a stream that ends before `[DONE]` is an error.

use std::io::Write;
use std::process::ExitCode;

use ai_retry_examples::demo::{self, Provider};
use ai_retry_examples::openai::OpenAi;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!();
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("\nerror: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), ai_retry_examples::ApiError> {
    let backend = demo::backend(Provider::OpenAi, false).await?;
    let client = OpenAi::for_backend(&backend)?;
    let mut stdout = std::io::stdout();
    client
        .chat_stream(&demo::prompt(), |token| {
            let _ = write!(stdout, "{token}");
            let _ = stdout.flush();
        })
        .await?;
    Ok(())
}
