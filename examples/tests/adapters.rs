//! `HttpRetry` as a tower layer over a plain reqwest service and as a
//! reqwest-middleware `Middleware`, against the testkit over loopback: every
//! scenario for both adapters, and one limiter shared by callers of both.

mod common;

use std::time::{Duration, Instant};

use ai_retry::runtime::{Policy, class_of_chain};
use ai_retry::{ErrorClass, HttpRetry, RateLimiter, RetryBudget};
use common::{assert_held_back, assert_none_early};
use retry_testkit::{Config, Fault, Hint, RequestRecord, TestServer};
use tower::{Layer, ServiceExt};

#[derive(Clone, Copy, Debug)]
enum Adapter {
    Tower,
    Middleware,
}

const BOTH: [Adapter; 2] = [Adapter::Tower, Adapter::Middleware];

/// What the caller got: the answer's status and body, or the error's class and text.
#[derive(Debug)]
enum Outcome {
    Answer(u16, String),
    Error(ErrorClass, String),
}

impl Outcome {
    fn status(&self) -> Option<u16> {
        match self {
            Outcome::Answer(status, _) => Some(*status),
            Outcome::Error(..) => None,
        }
    }
}

fn http() -> reqwest::Client {
    ai_retry_examples::http_client(reqwest::Client::builder().timeout(Duration::from_secs(5)))
        .expect("client")
}

const BODY: &str = r#"{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}"#;

/// One call through `adapter` with `retry`, as its users write it.
async fn send(adapter: Adapter, retry: HttpRetry, url: &str) -> Outcome {
    let client = http();
    match adapter {
        Adapter::Tower => {
            let url = url.to_string();
            let inner = tower::service_fn(move |body: String| {
                client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
            });
            match retry.layer(inner).oneshot(BODY.to_string()).await {
                Ok(response) => answer(response).await,
                Err(error) => Outcome::Error(class_of_chain(&*error), error.to_string()),
            }
        }
        Adapter::Middleware => {
            let client = reqwest_middleware::ClientBuilder::new(client)
                .with(retry)
                .build();
            let sent = client
                .post(url)
                .header("content-type", "application/json")
                .body(BODY)
                .send()
                .await;
            match sent {
                Ok(response) => answer(response).await,
                Err(reqwest_middleware::Error::Reqwest(error)) => {
                    Outcome::Error(class_of_chain(&error), error.to_string())
                }
                Err(reqwest_middleware::Error::Middleware(error)) => {
                    Outcome::Error(class_of_chain(error.as_ref()), error.to_string())
                }
            }
        }
    }
}

async fn answer(response: reqwest::Response) -> Outcome {
    let status = response.status().as_u16();
    Outcome::Answer(status, response.text().await.expect("the body handed back"))
}

const FAST: Policy = Policy::new()
    .max_attempts(4)
    .initial(Duration::from_millis(10));

async fn run(
    adapter: Adapter,
    retry: HttpRetry,
    script: Vec<Fault>,
) -> (Outcome, Vec<RequestRecord>) {
    let server = TestServer::start(Config::script(script)).await.unwrap();
    let url = format!("{}/chat/completions", server.openai_base_url());
    let outcome = send(adapter, retry, &url).await;
    (outcome, server.requests())
}

#[tokio::test]
async fn every_hint_form_is_honoured() {
    for adapter in BOTH {
        for hint in [
            Hint::RetryAfterMs(300.0),
            Hint::RetryAfterSecs(1.0),
            Hint::RetryAfterDate(1),
            Hint::OpenAiReset("300ms".into()),
        ] {
            let script = vec![Fault::RateLimit(hint.clone())];
            let (outcome, requests) = run(adapter, HttpRetry::new(FAST), script).await;
            assert_eq!(
                outcome.status(),
                Some(200),
                "{adapter:?} {hint:?}: {outcome:?}"
            );
            assert_eq!(requests.len(), 2, "{adapter:?} {hint:?}");
            assert_none_early(&requests);
            if !matches!(hint, Hint::RetryAfterDate(_)) {
                let gap = requests[1].at - requests[0].at;
                assert!(
                    gap >= Duration::from_millis(290),
                    "{adapter:?} {hint:?}: {gap:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn quota_too_large_and_should_retry_false_are_sent_once_and_handed_back() {
    for adapter in BOTH {
        for fault in [
            Fault::Quota,
            Fault::TooLarge,
            Fault::ShouldRetry(503, false),
        ] {
            let (outcome, requests) = run(adapter, HttpRetry::new(FAST), vec![fault.clone()]).await;
            assert_eq!(requests.len(), 1, "{adapter:?} {fault:?}");
            // The caller gets the server's answer itself: status and body.
            let Outcome::Answer(status, body) = outcome else {
                panic!("{adapter:?} {fault:?}: {outcome:?}");
            };
            assert_eq!(status, requests[0].status, "{adapter:?} {fault:?}");
            assert!(body.contains("\"error\""), "{adapter:?} {fault:?}: {body}");
        }
    }
}

#[tokio::test]
async fn a_hint_beyond_max_delay_fails_fast_with_the_answer() {
    for adapter in BOTH {
        let script = vec![Fault::RateLimit(Hint::RawRetryAfter("3600".into()))];
        let started = Instant::now();
        let (outcome, requests) = run(adapter, HttpRetry::new(FAST), script).await;
        assert_eq!(outcome.status(), Some(429), "{adapter:?}");
        assert_eq!(requests.len(), 1, "{adapter:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{adapter:?}");
    }
}

#[tokio::test]
async fn a_dropped_connection_and_an_overload_are_retried() {
    for adapter in BOTH {
        let script = vec![Fault::Drop, Fault::Status(529)];
        let (outcome, requests) = run(adapter, HttpRetry::new(FAST), script).await;
        assert_eq!(outcome.status(), Some(200), "{adapter:?}: {outcome:?}");
        assert_eq!(requests.len(), 3, "{adapter:?}");
    }
}

#[tokio::test]
async fn a_dropped_connection_at_the_last_attempt_is_the_error_returned() {
    for adapter in BOTH {
        let retry = HttpRetry::new(FAST.max_attempts(2));
        let (outcome, requests) = run(adapter, retry, vec![Fault::Drop; 2]).await;
        let Outcome::Error(class, text) = outcome else {
            panic!("{adapter:?}: {outcome:?}");
        };
        assert_eq!(class, ErrorClass::Connection, "{adapter:?}: {text}");
        assert_eq!(requests.len(), 2, "{adapter:?}");
    }
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_cut_and_retried() {
    for adapter in BOTH {
        let retry = HttpRetry::new(FAST.timeout(Duration::from_millis(300)));
        let started = Instant::now();
        let script = vec![Fault::Hang(Duration::from_secs(30))];
        let (outcome, requests) = run(adapter, retry, script).await;
        let took = started.elapsed();
        assert_eq!(outcome.status(), Some(200), "{adapter:?}: {outcome:?}");
        assert_eq!(requests.len(), 2, "{adapter:?}");
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{adapter:?}: {took:?}"
        );
    }
}

#[tokio::test]
async fn a_hang_at_every_attempt_ends_as_a_timeout() {
    for adapter in BOTH {
        let retry = HttpRetry::new(FAST.max_attempts(2).timeout(Duration::from_millis(200)));
        let script = vec![Fault::Hang(Duration::from_secs(30)); 2];
        let (outcome, requests) = run(adapter, retry, script).await;
        let Outcome::Error(class, text) = outcome else {
            panic!("{adapter:?}: {outcome:?}");
        };
        assert_eq!(class, ErrorClass::Timeout, "{adapter:?}: {text}");
        assert_eq!(requests.len(), 2, "{adapter:?}");
    }
}

static NO_RETRIES: RetryBudget = RetryBudget::new(0.0, 0);

#[tokio::test]
async fn an_empty_budget_stops_the_retries() {
    for adapter in BOTH {
        let retry = HttpRetry::new(FAST).budget(&NO_RETRIES);
        let (outcome, requests) = run(adapter, retry, vec![Fault::Status(503)]).await;
        assert_eq!(outcome.status(), Some(503), "{adapter:?}");
        assert_eq!(requests.len(), 1, "{adapter:?}: no retry without budget");
    }
}

static SHARED: RateLimiter = RateLimiter::new();

#[tokio::test]
async fn a_refusal_cools_down_the_callers_of_both_adapters() {
    let server = TestServer::start(Config::script([Fault::RateLimit(Hint::RetryAfterMs(
        500.0,
    ))]))
    .await
    .unwrap();
    let url = format!("{}/chat/completions", server.openai_base_url());
    let retry = HttpRetry::new(FAST).limiter(&SHARED);
    let first = tokio::spawn({
        let url = url.clone();
        async move { send(Adapter::Tower, retry, &url).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Arriving after the refusal, the other adapter's caller waits out the same cool-down.
    let second = tokio::spawn(async move { send(Adapter::Middleware, retry, &url).await });
    assert_eq!(first.await.unwrap().status(), Some(200));
    assert_eq!(second.await.unwrap().status(), Some(200));
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_held_back(&requests, Duration::from_millis(490));
}

#[tokio::test]
async fn a_concurrency_limit_of_one_below_the_layer_serves_every_attempt() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    // 503 once, then 200, behind a limit of one request at a time.
    let inner = tower::service_fn(move |_: &'static str| {
        let status = if counted.fetch_add(1, Ordering::SeqCst) == 0 {
            503
        } else {
            200
        };
        let response = http::Response::builder()
            .status(status)
            .body(http_body_util::Full::new(bytes::Bytes::new()));
        async move { response }
    });
    let service = HttpRetry::new(FAST).layer(tower::limit::ConcurrencyLimit::new(inner, 1));
    let response = tokio::time::timeout(Duration::from_secs(5), service.oneshot("hi"))
        .await
        .expect("the retry gets the one permit the first attempt released")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_endless_error_body_is_read_to_64_kib_and_handed_back_cut() {
    for adapter in BOTH {
        let server = TestServer::start(Config::script([Fault::Endless(502)]))
            .await
            .unwrap();
        let url = format!("{}/chat/completions", server.openai_base_url());
        let once = HttpRetry::new(FAST.max_attempts(1));
        let outcome = send(adapter, once, &url).await;
        match outcome {
            Outcome::Answer(502, body) => assert_eq!(body.len(), 64 * 1024, "{adapter:?}"),
            other => panic!("{adapter:?}: {other:?}"),
        }
        // The client stopped at 64 KiB; the server got ahead of it only by
        // what the loopback sockets buffer.
        let sent = server.endless_bytes();
        assert!(sent < 16 << 20, "{adapter:?}: the server sent {sent} bytes");
    }
}

#[tokio::test]
async fn the_hooks_see_an_endless_body_said_as_cut() {
    fn quote(event: &ai_retry::RetryEvent<'_, ai_retry::HttpFailure>) {
        SAID.lock().unwrap().push(event.error.to_string());
    }
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let retry = HttpRetry::new(FAST.max_attempts(2)).on_retry(quote);
    let (outcome, requests) = run(Adapter::Tower, retry, vec![Fault::Endless(500)]).await;
    assert_eq!(outcome.status(), Some(200));
    assert_eq!(requests.len(), 2);
    let said = SAID.lock().unwrap().clone();
    assert_eq!(said.len(), 1);
    assert!(
        said[0].starts_with("HTTP 500: <html>") && said[0].ends_with("(body cut at 64 KiB)"),
        "{said:?}"
    );
}

#[tokio::test]
async fn an_endless_answer_is_cut_at_max_body() {
    for adapter in BOTH {
        let server = TestServer::start(Config::script([Fault::Endless(200)]))
            .await
            .unwrap();
        let url = format!("{}/chat/completions", server.openai_base_url());
        let retry = HttpRetry::new(FAST).max_body(1 << 20);
        let client = reqwest_middleware::ClientBuilder::new(http())
            .with(retry)
            .build();
        let response = match adapter {
            Adapter::Middleware => client.post(&url).body(BODY).send().await.unwrap(),
            Adapter::Tower => {
                let http = http();
                let inner =
                    tower::service_fn(move |body: String| http.post(&url).body(body).send());
                retry.layer(inner).oneshot(BODY.to_string()).await.unwrap()
            }
        };
        assert_eq!(response.status(), 200);
        let error = response.bytes().await.unwrap_err();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        let mut limited = false;
        while let Some(error) = cause {
            limited |= error.is::<http_body_util::LengthLimitError>();
            cause = error.source();
        }
        assert!(limited, "{adapter:?}: {error:?}");
        assert_eq!(server.requests().len(), 1, "{adapter:?}: not retried");
        let sent = server.endless_bytes();
        assert!(sent < 32 << 20, "{adapter:?}: the server sent {sent} bytes");
    }
}

static STREAMED: RateLimiter = RateLimiter::new();
static STREAMED_BUDGET: RetryBudget = RetryBudget::new(1.0, 0);
static STREAMED_GAVE_UP: std::sync::Mutex<Vec<ai_retry::GiveUp>> =
    std::sync::Mutex::new(Vec::new());

fn streamed_gave_up(event: &ai_retry::RetryEvent<'_, ai_retry::HttpFailure>) {
    STREAMED_GAVE_UP.lock().unwrap().extend(event.give_up);
}

/// A request whose body is a stream cannot be copied: the middleware sends it
/// once — and everything else still applies.
async fn send_streamed(retry: HttpRetry, url: &str) -> Outcome {
    let client = reqwest_middleware::ClientBuilder::new(http())
        .with(retry)
        .build();
    let body = reqwest::Body::wrap(http_body_util::Full::new(bytes::Bytes::from(BODY)));
    match client.post(url).body(body).send().await {
        Ok(response) => answer(response).await,
        Err(reqwest_middleware::Error::Middleware(error)) => {
            Outcome::Error(class_of_chain(error.as_ref()), error.to_string())
        }
        Err(error) => Outcome::Error(class_of_chain(&error), error.to_string()),
    }
}

#[tokio::test]
async fn a_request_that_cannot_be_copied_takes_every_step_but_a_retry() {
    let retry = HttpRetry::new(FAST)
        .limiter(&STREAMED)
        .budget(&STREAMED_BUDGET)
        .on_give_up(streamed_gave_up);
    // Not retried, and said why.
    let server = TestServer::start(Config::script([Fault::Status(503)]))
        .await
        .unwrap();
    let url = format!("{}/chat/completions", server.openai_base_url());
    assert_eq!(send_streamed(retry, &url).await.status(), Some(503));
    assert_eq!(server.requests().len(), 1);
    assert_eq!(
        *STREAMED_GAVE_UP.lock().unwrap(),
        [ai_retry::GiveUp::NotReplayable]
    );
    // Counted by the budget: its first attempt earned a retry.
    assert_eq!(STREAMED_BUDGET.balance(), 1);
    // The limiter is told the answer: a reset in its headers cools it down.
    server.push([Fault::RateLimit(Hint::OpenAiReset("600ms".into()))]);
    assert_eq!(send_streamed(retry, &url).await.status(), Some(429));
    assert!(STREAMED.snapshot().cool_down > Duration::from_millis(400));
    // And it takes its turn: the next one waits the cool-down out.
    let asked = Instant::now();
    assert_eq!(send_streamed(retry, &url).await.status(), Some(200));
    assert!(
        asked.elapsed() >= Duration::from_millis(400),
        "{:?}",
        asked.elapsed()
    );
    // Cut by the timeout.
    server.push([Fault::Hang(Duration::from_secs(5))]);
    let cut = HttpRetry::new(FAST.timeout(Duration::from_millis(300)));
    let asked = Instant::now();
    match send_streamed(cut, &url).await {
        Outcome::Error(ErrorClass::Timeout, _) => {}
        other => panic!("{other:?}"),
    }
    assert!(asked.elapsed() < Duration::from_secs(2));
}
