//! Streaming: retried until the first token arrives, never replayed after; a
//! stream that ends before `[DONE]` is an error, not a short answer.

mod common;

use std::time::Duration;

use ai_retry::{Classify, ErrorClass};
use ai_retry_examples::ApiError;
use common::{TIMEOUT, openai};
use retry_testkit::{Fault, Hint, answer_for};

async fn stream(script: Vec<Fault>) -> (Result<String, ApiError>, String, usize) {
    let (server, client) = openai(script, TIMEOUT).await;
    let mut printed = String::new();
    let result = client
        .chat_stream("stream me", |token| printed.push_str(token))
        .await;
    (result, printed, server.requests().len())
}

#[tokio::test]
async fn a_whole_stream_is_the_whole_answer() {
    let (result, printed, requests) = stream(vec![Fault::Ok]).await;
    assert_eq!(result.unwrap(), answer_for("stream me"));
    assert_eq!(printed, answer_for("stream me"));
    assert_eq!(requests, 1);
}

#[tokio::test]
async fn failures_before_the_first_token_are_retried() {
    let script = vec![
        Fault::RateLimit(Hint::RetryAfterMs(50.0)),
        Fault::Status(503),
        Fault::StreamDies(0),
        Fault::Ok,
    ];
    let (result, printed, requests) = stream(script).await;
    assert_eq!(result.unwrap(), answer_for("stream me"));
    assert_eq!(printed, answer_for("stream me"), "nothing printed twice");
    assert_eq!(requests, 4);
}

#[tokio::test]
async fn a_stream_that_dies_after_tokens_is_an_error_and_not_replayed() {
    let (result, printed, requests) = stream(vec![Fault::StreamDies(3), Fault::Ok]).await;
    let error = result.unwrap_err();
    assert_eq!(requests, 1, "never replayed after the first token");
    assert_eq!(printed.split_inclusive(' ').count(), 3, "{printed:?}");
    assert!(
        matches!(error, ApiError::Incomplete { tokens: 3, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the connection closed after 3 tokens, before [DONE]"
    );
}

#[tokio::test]
async fn a_hanging_stream_request_times_out_and_is_retried() {
    let (server, client) = openai(
        [Fault::Hang(Duration::from_secs(3)), Fault::Ok],
        Duration::from_millis(200),
    )
    .await;
    let answer = client.chat_stream("stream me", |_| {}).await.unwrap();
    assert_eq!(answer, answer_for("stream me"));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn an_incomplete_stream_is_classified_as_connection() {
    assert_eq!(
        ApiError::Incomplete {
            tokens: 2,
            terminator: "[DONE]"
        }
        .class(),
        ErrorClass::Connection
    );
}
