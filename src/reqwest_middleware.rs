//! [`HttpRetry`] as a `reqwest_middleware::Middleware`
//! (feature `reqwest-middleware`).
//!
//! ```no_run
//! use ai_retry::runtime::Policy;
//! use ai_retry::{HttpRetry, RateLimiter};
//!
//! static OPENAI: RateLimiter = RateLimiter::new();
//!
//! # async fn chat() -> Result<(), reqwest_middleware::Error> {
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(HttpRetry::new(Policy::new().max_attempts(4)).limiter(&OPENAI))
//!     .build();
//! let answer = client
//!     .post("https://api.openai.com/v1/chat/completions")
//!     .body(r#"{"model": "gpt-4o-mini", "messages": []}"#)
//!     .send()
//!     .await?;
//! // The last answer, as the server gave it: a quota 429 was not retried.
//! println!("{}", answer.status());
//! # Ok(())
//! # }
//! ```
//!
//! A request whose body is a stream cannot be sent twice: it gets one attempt,
//! with everything else the same — a turn from the limiter, the cut-off, the
//! budget, the limiter told of the answer, `on_give_up` told why
//! ([`GiveUp::NotReplayable`](crate::GiveUp::NotReplayable)).

use ::reqwest_middleware::{Error, Middleware, Next};
use http::Extensions;
use retry_runtime::{Classify, ErrorClass, Throttled, TimedOut};

use crate::http_retry::{BoxError, HttpRetry};

#[async_trait::async_trait]
impl Middleware for HttpRetry {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<reqwest::Response, Error> {
        // A request that cannot be copied (its body is a stream) is sent once.
        let template = request.try_clone();
        let replayable = template.is_some();
        let cost = request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .map_or(retry_runtime::Cost::NONE, |body| {
                crate::estimate::cost(request.url().path(), body)
            });
        let mut first = Some(request);
        let template = &template;
        let shared = &*extensions;
        let next = &next;
        let result = self
            .run(class_of, replayable, cost, || {
                // Each attempt gets a copy of the extensions, as a fresh send would.
                let request = first
                    .take()
                    .or_else(|| template.as_ref().and_then(reqwest::Request::try_clone));
                let mut extensions = shared.clone();
                let next = next.clone();
                async move {
                    let Some(request) = request else {
                        return Err(BoxError::from(Unrepeatable));
                    };
                    next.run(request, &mut extensions)
                        .await
                        .map_err(BoxError::from)
                }
            })
            .await;
        result.map_err(unboxed)
    }
}

/// The request could be copied once but not again (it cannot happen with a
/// reqwest body of bytes; said rather than panicked).
#[derive(Debug)]
struct Unrepeatable;

impl std::fmt::Display for Unrepeatable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request could not be copied for another attempt")
    }
}

impl std::error::Error for Unrepeatable {}

/// The chain's errors come back as they were; the loop's own (`TimedOut`,
/// `Throttled`) as middleware errors that downcast to them.
fn unboxed(error: BoxError) -> Error {
    let error = match error.downcast::<Error>() {
        Ok(error) => return *error,
        Err(other) => other,
    };
    let error = match error.downcast::<TimedOut>() {
        Ok(timed_out) => return Error::middleware(*timed_out),
        Err(other) => other,
    };
    match error.downcast::<Throttled>() {
        Ok(throttled) => Error::middleware(*throttled),
        Err(other) => Error::Middleware(anyhow::Error::from_boxed(other)),
    }
}

fn class_of(error: &BoxError) -> ErrorClass {
    match error.downcast_ref::<Error>() {
        Some(Error::Reqwest(error)) => error.class(),
        Some(Error::Middleware(error)) => retry_runtime::class_of_chain(error.as_ref()),
        None => retry_runtime::class_of_chain(&**error),
    }
}
