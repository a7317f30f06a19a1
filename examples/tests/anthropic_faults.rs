//! The Anthropic client: 529 overload, its rate-limit headers, its permanent errors.

mod common;

use std::time::Duration;

use ai_retry::{Classify, ErrorClass};
use ai_retry_examples::ApiError;
use common::{anthropic, assert_none_early, gaps};
use retry_testkit::{Fault, Hint, answer_for};

#[tokio::test]
async fn overload_529_is_retried_up_to_max() {
    let (server, client) = anthropic(vec![Fault::OVERLOADED; 4]).await;
    let error = client.chat("hi").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Overloaded);
    assert!(matches!(error, ApiError::Status { status: 529, .. }));
    assert_eq!(server.requests().len(), 4);

    let (server, client) = anthropic([Fault::OVERLOADED, Fault::OVERLOADED, Fault::Ok]).await;
    assert_eq!(client.chat("hi").await.unwrap(), answer_for("hi"));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn anthropic_reset_headers_are_honoured() {
    let (server, client) = anthropic([
        Fault::RateLimit(Hint::AnthropicReset(Duration::from_millis(300))),
        Fault::Ok,
    ])
    .await;
    assert!(client.chat("hi").await.is_ok());
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        gaps(&requests)[0] >= Duration::from_millis(300),
        "{:?}",
        gaps(&requests)
    );
    assert_none_early(&requests);
}

#[tokio::test]
async fn permanent_failures_are_sent_once() {
    for fault in [
        Fault::Quota,
        Fault::TooLarge,
        Fault::SpendLimit,
        Fault::Status(401),
        Fault::Status(404),
    ] {
        let (server, client) = anthropic([fault.clone(), Fault::Ok]).await;
        let error = client.chat("hi").await.unwrap_err();
        assert_eq!(error.class(), ErrorClass::Permanent, "{fault}: {error}");
        assert_eq!(server.requests().len(), 1, "{fault}");
    }
}
