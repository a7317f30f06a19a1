//! The testkit catches what the real APIs would: a path they do not serve is
//! a 404 in the API's shape; and it tells callers of one key apart without
//! any header (by connection), so a new caller is not taken for an early retry.

use std::time::Duration;

use ai_retry::{Classify, ErrorClass};
use ai_retry_examples::openai::OpenAi;
use ai_retry_examples::{ApiError, http_client, own_limiter};
use retry_testkit::{Config, RateLimit, TestServer};
use serde_json::{Value, json};

fn chat() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn a_base_url_missing_v1_gets_the_real_apis_404_and_no_retry() {
    let server = TestServer::start(Config::default()).await.unwrap();
    // What a user writes when they forget `/v1`.
    let client = OpenAi::with_limiter(
        &server.url(),
        Some("sk-test".into()),
        "gpt-4o-mini",
        Duration::from_secs(5),
        own_limiter(),
    )
    .unwrap();
    let error = client.chat("hi").await.unwrap_err();
    assert!(
        matches!(error, ApiError::Status { status: 404, .. }),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(
        error
            .to_string()
            .contains("Invalid URL (POST /chat/completions)"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 1, "a 404 is not retried");
}

#[tokio::test]
async fn a_404_comes_in_the_shape_of_the_api_the_client_meant() {
    let server = TestServer::start(Config::default()).await.unwrap();
    let http = http_client(reqwest::Client::builder()).unwrap();
    let openai: Value = http
        .post(format!("{}/v1/completion", server.url()))
        .bearer_auth("sk-test")
        .json(&chat())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openai["error"]["type"], "invalid_request_error");
    assert_eq!(
        openai["error"]["message"],
        "Invalid URL (POST /v1/completion)"
    );
    let anthropic = http
        .post(format!("{}/messages", server.url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(&chat())
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 404);
    let anthropic: Value = anthropic.json().await.unwrap();
    assert_eq!(anthropic["type"], "error");
    assert_eq!(anthropic["error"]["type"], "not_found_error");
}

#[tokio::test]
async fn callers_of_one_key_are_told_apart_by_connection() {
    // One request a second for the key: the second and later are refused
    // with a wait of about a second.
    let server = TestServer::start(Config::rate_limited(RateLimit::new(1.0, 1)))
        .await
        .unwrap();
    let url = format!("{}/chat/completions", server.openai_base_url());
    // Two callers of one key, as two async-openai tasks are: no
    // idempotency key, no attempt header; a connection each.
    let (first, second) = (
        http_client(reqwest::Client::builder()).unwrap(),
        http_client(reqwest::Client::builder()).unwrap(),
    );
    let send = |caller: &reqwest::Client| {
        caller
            .post(&url)
            .bearer_auth("sk-one-key")
            .json(&chat())
            .send()
    };
    assert_eq!(send(&first).await.unwrap().status(), 200);
    // The second caller's first request: refused, not early.
    assert_eq!(send(&second).await.unwrap().status(), 429);
    // The first caller again: refused, but it was never told to wait.
    assert_eq!(send(&first).await.unwrap().status(), 429);
    // The second caller back at once, on its connection: early.
    assert_eq!(send(&second).await.unwrap().status(), 429);
    let early: Vec<bool> = server.requests().iter().map(|r| r.early).collect();
    assert_eq!(early, [false, false, false, true]);
}
