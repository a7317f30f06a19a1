//! `cargo run --example stream_chat -- "prompt"`: a streamed OpenAI answer,
//! printed token by token. The request is retried until the first token
//! arrives, never after; a stream that ends before `[DONE]` is an error.

use std::io::Write;
use std::process::ExitCode;

use ai_retry_examples::demo::{self, ChatArgs, Provider};

const ABOUT: &str = "A streamed chat call, retried until the first token and never after: tokens on stdout as they come, each retry on stderr.";
use ai_retry_examples::openai::OpenAi;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!();
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!();
            demo::fail(&error);
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), ai_retry_examples::ApiError> {
    let args = ChatArgs::parse(Provider::OpenAi, ABOUT);
    let backend = demo::backend(Provider::OpenAi, false, &args).await?;
    let client = OpenAi::for_backend(&backend)?;
    let mut stdout = std::io::stdout();
    client
        .chat_stream(&args.prompt(), |token| {
            let _ = write!(stdout, "{token}");
            let _ = stdout.flush();
        })
        .await?;
    Ok(())
}
