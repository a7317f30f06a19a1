//! The OpenAI client against every fault the testkit scripts: how many requests
//! the server saw, and the time between them.

mod common;

use std::time::Duration;

use ai_retry::{Classify, ErrorClass};
use ai_retry_examples::ApiError;
use common::{TIMEOUT, assert_none_early, gaps, openai};
use retry_testkit::{Fault, Hint, answer_for};

const PROMPT: &str = "ping";

async fn chat(script: Vec<Fault>) -> (Result<String, ApiError>, Vec<retry_testkit::RequestRecord>) {
    let (server, client) = openai(script, TIMEOUT).await;
    let result = client.chat(PROMPT).await;
    (result, server.requests())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let (result, requests) =
        chat(vec![Fault::RateLimit(Hint::RetryAfterSecs(0.3)), Fault::Ok]).await;
    assert_eq!(result.unwrap(), answer_for(PROMPT));
    assert_eq!(requests.len(), 2);
    assert!(gaps(&requests)[0] >= ms(300), "{:?}", gaps(&requests));
    assert_none_early(&requests);
}

#[tokio::test]
async fn retry_after_ms_is_honoured() {
    let (result, requests) =
        chat(vec![Fault::RateLimit(Hint::RetryAfterMs(200.0)), Fault::Ok]).await;
    assert!(result.is_ok());
    assert_eq!(requests.len(), 2);
    assert!(gaps(&requests)[0] >= ms(200));
    assert_none_early(&requests);
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let (result, requests) = chat(vec![Fault::RateLimit(Hint::RetryAfterDate(1)), Fault::Ok]).await;
    assert!(result.is_ok());
    assert_eq!(requests.len(), 2);
    // The date has whole seconds: the server marks the request early if it came
    // before the second it named.
    assert_none_early(&requests);
}

#[tokio::test]
async fn openai_reset_headers_are_used_without_retry_after() {
    let (result, requests) = chat(vec![
        Fault::RateLimit(Hint::OpenAiReset("250ms".into())),
        Fault::Ok,
    ])
    .await;
    assert!(result.is_ok());
    assert_eq!(requests.len(), 2);
    assert!(gaps(&requests)[0] >= ms(250));
    assert_none_early(&requests);
}

#[tokio::test]
async fn a_hint_beyond_max_delay_fails_fast() {
    let (result, requests) = chat(vec![Fault::RateLimit(Hint::RawRetryAfter(
        "99999999999".into(),
    ))])
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.class(), ErrorClass::RateLimit);
    assert_eq!(requests.len(), 1, "never retried before the server allows");
}

#[tokio::test]
async fn a_garbage_hint_is_ignored_and_backoff_used() {
    let (result, requests) = chat(vec![
        Fault::RateLimit(Hint::RawRetryAfter("-5".into())),
        Fault::Ok,
    ])
    .await;
    assert!(result.is_ok());
    assert_eq!(requests.len(), 2);
}

#[tokio::test]
async fn permanent_failures_are_sent_exactly_once() {
    let cases = [
        (Fault::Quota, 429),
        (Fault::TooLarge, 429),
        (Fault::SpendLimit, 429),
        (Fault::Status(400), 400),
        (Fault::Status(401), 401),
        (Fault::Status(403), 403),
        (Fault::Status(404), 404),
        (Fault::ShouldRetry(500, false), 500),
    ];
    for (fault, status) in cases {
        let (result, requests) = chat(vec![fault.clone(), Fault::Ok]).await;
        let error = result.unwrap_err();
        assert_eq!(requests.len(), 1, "{fault}");
        assert_eq!(error.class(), ErrorClass::Permanent, "{fault}");
        assert!(
            matches!(error, ApiError::Status { status: s, .. } if s == status),
            "{fault}: {error}"
        );
    }
}

#[tokio::test]
async fn should_retry_true_retries_a_permanent_status() {
    let (result, requests) = chat(vec![Fault::ShouldRetry(400, true), Fault::Ok]).await;
    assert!(result.is_ok());
    assert_eq!(requests.len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_up_to_max() {
    for status in [500, 502, 503, 504] {
        let (result, requests) = chat(vec![Fault::Status(status); 4]).await;
        assert_eq!(requests.len(), 4, "{status}: max = 4 attempts");
        assert!(matches!(result, Err(ApiError::Status { status: s, .. }) if s == status));
    }
    let (result, requests) = chat(vec![Fault::Status(500), Fault::Status(502), Fault::Ok]).await;
    assert!(result.is_ok());
    assert_eq!(requests.len(), 3);
}

#[tokio::test]
async fn a_hang_becomes_a_timeout_and_is_retried() {
    let (server, client) = openai([Fault::Hang(Duration::from_secs(3)), Fault::Ok], ms(200)).await;
    assert_eq!(client.chat(PROMPT).await.unwrap(), answer_for(PROMPT));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        gaps(&requests)[0] >= ms(200),
        "the first attempt waited for its timeout"
    );

    let (server, client) = openai(vec![Fault::Hang(Duration::from_secs(3)); 4], ms(100)).await;
    let error = client.chat(PROMPT).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Timeout, "{error}");
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let (result, requests) = chat(vec![Fault::Drop, Fault::Ok]).await;
    assert_eq!(result.unwrap(), answer_for(PROMPT));
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].status, 0);
}

#[tokio::test]
async fn a_malformed_200_fails_once_with_a_clear_error() {
    let (result, requests) = chat(vec![Fault::Malformed, Fault::Ok]).await;
    let error = result.unwrap_err();
    assert_eq!(requests.len(), 1);
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert!(
        error
            .to_string()
            .starts_with("malformed response: body is not JSON"),
        "{error}"
    );
}

#[tokio::test]
async fn attempts_share_one_idempotency_key_and_count_up() {
    let (result, requests) = chat(vec![Fault::Status(503), Fault::Drop, Fault::Ok]).await;
    assert!(result.is_ok());
    let attempts: Vec<Option<u32>> = requests.iter().map(|r| r.attempt).collect();
    assert_eq!(attempts, [Some(1), Some(2), Some(3)]);
    let key = requests[0]
        .idempotency_key
        .clone()
        .expect("an idempotency key");
    assert!(
        requests
            .iter()
            .all(|r| r.idempotency_key.as_deref() == Some(key.as_str()))
    );

    // A new call gets a new key.
    let (_, again) = chat(vec![Fault::Ok]).await;
    assert_ne!(again[0].idempotency_key.as_deref(), Some(key.as_str()));
}

#[tokio::test]
async fn the_api_key_never_appears_in_errors() {
    let (result, _) = chat(vec![Fault::Status(401)]).await;
    let error = result.unwrap_err();
    assert!(!format!("{error} {error:?}").contains("sk-test-not-a-real-key"));
}

#[tokio::test]
async fn rate_limit_mode_hints_are_honest_and_honoured() {
    use retry_testkit::{Config, RateLimit, TestServer};
    let server = TestServer::start(Config::rate_limited(RateLimit::new(20.0, 1).reserving()))
        .await
        .unwrap();
    let client = ai_retry_examples::openai::OpenAi::with_limiter(
        &server.openai_base_url(),
        Some("sk-one-key".into()),
        "gpt-4o-mini",
        TIMEOUT,
        ai_retry_examples::own_limiter(),
    )
    .unwrap();
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.chat(&format!("caller {i}")).await })
        })
        .collect();
    for call in calls {
        assert!(
            call.await.unwrap().is_ok(),
            "every caller that waits as told gets in"
        );
    }
    let requests = server.requests();
    let refused = requests.iter().filter(|r| r.status == 429).count();
    assert!(
        refused >= 1,
        "ten callers against a burst of one: {requests:?}"
    );
    assert_eq!(requests.len(), 10 + refused);
    // The server reserves the slot it names; a client that honours it needs one retry.
    for request in &requests {
        let same_call = requests
            .iter()
            .filter(|r| r.idempotency_key == request.idempotency_key)
            .count();
        assert!(same_call <= 2, "{request:?}");
    }
    assert_none_early(&requests);
}

/// The examples' policy with a one-second deadline, so the test is short.
#[ai_retry::retry(max = 4, initial = "10ms", deadline = "1s")]
async fn within_a_second(
    client: &ai_retry_examples::openai::OpenAi,
    call: &ai_retry_examples::Call,
) -> Result<String, ApiError> {
    client.attempt("hurry", call).await
}

#[tokio::test]
async fn a_server_that_hangs_never_holds_a_call_past_its_deadline() {
    // The client's own request timeout (20 s) is far longer than the deadline.
    let (server, client) = openai(
        [Fault::Status(500), Fault::Hang(Duration::from_secs(30))],
        Duration::from_secs(20),
    )
    .await;
    let started = std::time::Instant::now();
    let result = within_a_second(&client, &ai_retry_examples::Call::new()).await;
    let took = started.elapsed();
    assert!(matches!(result, Err(ApiError::TimedOut)), "{result:?}");
    assert!(took >= Duration::from_millis(990), "{took:?}");
    assert!(
        took < Duration::from_millis(1300),
        "held past the deadline: {took:?}"
    );
    assert_eq!(server.requests().len(), 2);
}
