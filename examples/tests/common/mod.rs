//! Shared by the fault tests: a server with a script, a client pointed at it,
//! and the gaps between the requests the server saw.

#![allow(dead_code, reason = "each test file uses part of this")]

use std::time::Duration;

use ai_retry_examples::anthropic::Anthropic;
use ai_retry_examples::openai::OpenAi;
use retry_testkit::{Config, Fault, RequestRecord, TestServer};

pub const TIMEOUT: Duration = Duration::from_secs(5);

pub async fn openai(
    script: impl IntoIterator<Item = Fault>,
    timeout: Duration,
) -> (TestServer, OpenAi) {
    let server = TestServer::start(Config::script(script))
        .await
        .expect("loopback server");
    // Each test's server is its own key: a limiter of its own, so one test's
    // cool-down does not hold back another's calls.
    let client = OpenAi::with_limiter(
        &server.openai_base_url(),
        Some("sk-test-not-a-real-key".into()),
        "gpt-4o-mini",
        timeout,
        ai_retry_examples::own_limiter(),
    )
    .expect("client");
    (server, client)
}

pub async fn anthropic(script: impl IntoIterator<Item = Fault>) -> (TestServer, Anthropic) {
    let server = TestServer::start(Config::script(script))
        .await
        .expect("loopback server");
    let client = Anthropic::with_limiter(
        &server.anthropic_base_url(),
        Some("sk-ant-test".into()),
        "claude-3-5-haiku-latest",
        TIMEOUT,
        ai_retry_examples::own_limiter(),
    )
    .expect("client");
    (server, client)
}

/// The time between consecutive requests.
pub fn gaps(requests: &[RequestRecord]) -> Vec<Duration> {
    requests.windows(2).map(|w| w[1].at - w[0].at).collect()
}

/// Every request after the first came at least `cool_down` after it, and none
/// before the time the server had told its caller: one refusal held back
/// every later caller.
pub fn assert_held_back(requests: &[RequestRecord], cool_down: Duration) {
    for later in &requests[1..] {
        assert!(later.at - requests[0].at >= cool_down, "{requests:?}");
    }
    assert_none_early(requests);
}

/// No request came before the time the server had told its caller.
pub fn assert_none_early(requests: &[RequestRecord]) {
    for request in requests {
        assert!(!request.early, "early retry: {request:?}");
    }
}

/// `cargo test` builds the examples next to the test binaries.
pub fn example(name: &str) -> std::path::PathBuf {
    let mut path = std::env::current_exe().expect("test binary path");
    path.pop(); // the test binary
    path.pop(); // deps/
    path.join("examples").join(name)
}
