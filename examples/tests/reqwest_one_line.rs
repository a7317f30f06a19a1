//! Plain reqwest with `ai_retry::reqwest`: no error type of one's own, and every
//! scenario right — hints honoured, quota and `x-should-retry: false` not
//! retried, a dropped connection retried, a shared limiter's cool-down.

mod common;

use std::time::Duration;

use ai_retry::reqwest::{ApiError, ResponseExt};
use ai_retry::{Classify, ErrorClass, RateLimiter, retry};
use common::{assert_held_back, assert_none_early};
use retry_testkit::{Config, Fault, Hint, TestServer};

fn client() -> reqwest::Client {
    ai_retry_examples::http_client(reqwest::Client::builder().timeout(Duration::from_secs(5)))
        .expect("client")
}

fn body() -> serde_json::Value {
    ai_retry_examples::openai::request_body("gpt-4o-mini", "one line", false, None)
}

/// One attempt, the way a user writes it: send, then one call on the response.
async fn one_attempt(
    client: &reqwest::Client,
    url: &str,
    limiter: Option<&RateLimiter>,
) -> Result<String, ApiError> {
    let response = client.post(url).json(&body()).send().await?;
    let response = match limiter {
        Some(limiter) => response.error_for_api_status_observed(limiter).await?,
        None => response.error_for_api_status().await?,
    };
    Ok(response.text().await?)
}

#[retry(max = 4, initial = "10ms")]
async fn chat(client: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    one_attempt(client, url, None).await
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
    one_attempt(client, url, Some(&SHARED)).await
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
    assert_held_back(&requests, Duration::from_millis(490));
}

#[retry(max = 3, initial = "10ms", timeout = "300ms")]
async fn with_timeout(client: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    one_attempt(client, url, None).await
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_cut_and_retried() {
    let server = TestServer::start(Config::script([Fault::Hang(Duration::from_secs(30))]))
        .await
        .unwrap();
    let url = format!("{}/chat/completions", server.openai_base_url());
    let started = std::time::Instant::now();
    assert!(with_timeout(&client(), &url).await.is_ok());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(server.requests().len(), 2);
}

static NO_RETRIES: ai_retry::RetryBudget = ai_retry::RetryBudget::new(0.0, 0);

#[retry(max = 4, initial = "10ms", budget = NO_RETRIES)]
async fn budgeted(client: &reqwest::Client, url: &str) -> Result<String, ApiError> {
    one_attempt(client, url, None).await
}

#[tokio::test]
async fn an_empty_budget_stops_the_retries() {
    let (server, url) = {
        let server = TestServer::start(Config::script([Fault::Status(503)]))
            .await
            .unwrap();
        let url = format!("{}/chat/completions", server.openai_base_url());
        (server, url)
    };
    let error = budgeted(&client(), &url).await.unwrap_err();
    assert_eq!(error.status(), Some(503));
    assert_eq!(server.requests().len(), 1, "no retry without budget");
}

mod blocking {
    use super::*;
    use ai_retry::reqwest::blocking::ResponseExt;

    #[retry(max = 3, initial = "10ms")]
    fn chat(client: &reqwest::blocking::Client, url: &str) -> Result<String, ApiError> {
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .body(body().to_string())
            .send()?
            .error_for_api_status()?;
        Ok(response.text()?)
    }

    fn run(script: Vec<Fault>) -> (Result<String, ApiError>, Vec<retry_testkit::RequestRecord>) {
        let server = TestServer::start_in_thread(Config::script(script)).unwrap();
        let url = format!("{}/chat/completions", server.openai_base_url());
        let client = ai_retry_examples::http_client_blocking(Duration::from_secs(5)).unwrap();
        (chat(&client, &url), server.requests())
    }

    #[test]
    fn a_hint_is_honoured_and_quota_is_not_retried() {
        let (result, requests) = run(vec![Fault::RateLimit(Hint::RetryAfterMs(300.0))]);
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(requests.len(), 2);
        assert!(requests[1].at - requests[0].at >= Duration::from_millis(290));
        assert_none_early(&requests);

        let (result, requests) = run(vec![Fault::Quota]);
        let error = result.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Permanent, "{error}");
        assert_eq!(error.status(), Some(429));
        assert_eq!(requests.len(), 1);
    }
}
