//! Plain reqwest with `ai_retry::reqwest`: no error type of one's own, and every
//! scenario right — hints honoured, quota and `x-should-retry: false` not
//! retried, a dropped connection retried, a shared limiter's cool-down.

mod common;

use std::time::Duration;

use ai_retry::reqwest::{ApiError, ResponseExt};
use ai_retry::{Classify, ErrorClass, RateLimiter, retry};
use common::assert_none_early;
use retry_testkit::{Config, Fault, Hint, TestServer};

fn client() -> reqwest::Client {
    ai_retry_examples::http_client(reqwest::Client::builder().timeout(Duration::from_secs(5)))
        .expect("client")
}

fn body() -> serde_json::Value {
    ai_retry_examples::openai::request_body("gpt-4o-mini", "one line", false)
}

#[retry(max = 4, initial = "10ms")]
async fn chat(client: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    let response = client
        .post(url)
        .json(&body())
        .send()
        .await?
        .error_for_api_status()
        .await?;
    Ok(response.text().await?)
}

async fn run(script: Vec<Fault>) -> (Result<String, ApiError>, Vec<retry_testkit::RequestRecord>) {
    let server = TestServer::start(Config::script(script)).await.unwrap();
    let url = format!("{}/chat/completions", server.openai_base_url());
    let result = chat(&client(), &url).await;
    (result, server.requests())
}

#[tokio::test]
async fn every_hint_form_is_honoured() {
    for hint in [
        Hint::RetryAfterMs(300.0),
        Hint::RetryAfterSecs(1.0),
        Hint::OpenAiReset("300ms".into()),
    ] {
        let (result, requests) = run(vec![Fault::RateLimit(hint.clone())]).await;
        assert!(result.is_ok(), "{hint:?}: {result:?}");
        assert_eq!(requests.len(), 2, "{hint:?}");
        assert!(
            requests[1].at - requests[0].at >= Duration::from_millis(290),
            "{hint:?}"
        );
        assert_none_early(&requests);
    }
}

#[tokio::test]
async fn quota_too_large_and_should_retry_false_are_not_retried() {
    for fault in [
        Fault::Quota,
        Fault::TooLarge,
        Fault::ShouldRetry(503, false),
    ] {
        let (result, requests) = run(vec![fault.clone()]).await;
        let error = result.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Permanent, "{fault:?}: {error}");
        assert_eq!(requests.len(), 1, "{fault:?}");
        assert!(!error.to_string().contains('\n'));
    }
}

#[tokio::test]
async fn a_dropped_connection_and_an_overload_are_retried() {
    let (result, requests) = run(vec![Fault::Drop, Fault::Status(529)]).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(requests.len(), 3);
}

static SHARED: RateLimiter = RateLimiter::new();

#[retry(max = 2, initial = "10ms", limiter = SHARED)]
async fn shared(client: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    let response = client
        .post(url)
        .json(&body())
        .send()
        .await?
        .error_for_api_status_observed(&SHARED)
        .await?;
    Ok(response.text().await?)
}

#[tokio::test]
async fn a_refusal_cools_down_every_caller_of_the_limiter() {
    let server = TestServer::start(Config::script([Fault::RateLimit(Hint::RetryAfterMs(
        500.0,
    ))]))
    .await
    .unwrap();
    let url = format!("{}/chat/completions", server.openai_base_url());
    let client = client();
    let call = |client: reqwest::Client, url: String| async move { shared(&client, &url).await };
    let first = tokio::spawn(call(client.clone(), url.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Arriving after the refusal, the second caller waits out the same cool-down.
    let second = tokio::spawn(call(client, url));
    assert!(first.await.unwrap().is_ok());
    assert!(second.await.unwrap().is_ok());
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    for later in &requests[1..] {
        assert!(
            later.at - requests[0].at >= Duration::from_millis(490),
            "{requests:?}"
        );
    }
    assert_none_early(&requests);
}
