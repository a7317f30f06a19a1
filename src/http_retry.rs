//! [`HttpRetry`]: the attribute's retry loop for HTTP clients one did not write —
//! a tower `Layer` (feature `tower`: async-openai, any `tower` stack) and a
//! `reqwest_middleware::Middleware` (feature `reqwest-middleware`).
//!
//! Same policy, classes, budget and limiter as `#[retry]`, the same
//! classification: an error answer's body is read — up to
//! [`ERROR_BODY_LIMIT`](crate::body::ERROR_BODY_LIMIT), the rest dropped with
//! the connection — so a quota 429 is told from a rate-limit 429, the server's
//! hint (`retry-after-ms`, `retry-after` in seconds or as a date, the reset
//! headers) is honoured and never undercut, and `x-should-retry` is obeyed. The
//! caller gets back the last answer as an equivalent response (same status and
//! headers, the body as read), or the last transport error, so the client above
//! parses it as it always did. With a limiter, each request's turn is paid
//! for with its cost, estimated from its JSON body ([`crate::estimate`]) when
//! the adapter can see it: a `reqwest::Request` (the middleware, or a tower
//! service of them) or an `http::Request` of bytes, `String` or `Full<Bytes>`;
//! other requests — async-openai's, built anew for each attempt — cost one
//! request.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use retry_runtime::http::{self, HeaderMap};
use retry_runtime::{
    ClassSet, Classify, Clock, Cost, ErrorClass, Paced, Policy, RateLimiter, Retry, RetryBudget,
    RetryEvent, Step, Throttled, TimedOut, settle_timeout, with_timeout,
};

/// A boxed error, as tower's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The retry settings of an HTTP adapter: `#[retry]`'s keys as a value.
///
/// Layer it under a tower client (feature `tower`), or add it to a
/// `reqwest_middleware::ClientBuilder` (feature `reqwest-middleware`):
///
/// ```
/// use ai_retry::runtime::{ErrorClass, Policy};
/// use ai_retry::{HttpRetry, RateLimiter};
/// use std::time::Duration;
///
/// static OPENAI: RateLimiter = RateLimiter::new();
///
/// const POLICY: Policy = Policy::new()
///     .max_attempts(4)
///     .initial(Duration::from_millis(250))
///     .timeout(Duration::from_secs(60));
/// let retry = HttpRetry::new(POLICY)
///     .on(ErrorClass::RateLimit | ErrorClass::Timeout | ErrorClass::Overloaded)
///     .limiter(&OPENAI)
///     .named("openai");
/// assert_eq!(retry.policy().max_attempts, 4);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct HttpRetry {
    policy: Policy,
    classes: ClassSet,
    budget: Option<&'static RetryBudget>,
    limiter: Option<&'static RateLimiter>,
    function: &'static str,
    on_retry: Option<fn(&RetryEvent<'_, HttpFailure>)>,
    on_give_up: Option<fn(&RetryEvent<'_, HttpFailure>)>,
    max_body: Option<usize>,
}

impl HttpRetry {
    /// Retries the transient classes (`on = transient`) under `policy`. Its
    /// `timeout` cuts each attempt: sending the request and receiving the
    /// answer's head, and for an error answer reading its body; a success's
    /// body is read by the caller, after the loop, outside the cut (bound it
    /// with the client's own timeout). Its `deadline` bounds the whole call.
    pub const fn new(policy: Policy) -> HttpRetry {
        HttpRetry {
            policy,
            classes: ClassSet::TRANSIENT,
            budget: None,
            limiter: None,
            function: "http",
            on_retry: None,
            on_give_up: None,
            max_body: None,
        }
    }

    /// Limits a success's body, as the caller reads it, to `bytes`: reading
    /// past it fails with an error whose source is
    /// `http_body_util::LengthLimitError`, instead of growing without end.
    /// Applies to `reqwest::Response`s; an `http::Response<B>` keeps its own
    /// body type and reader. Error bodies are always limited (64 KiB).
    pub const fn max_body(mut self, bytes: usize) -> HttpRetry {
        self.max_body = Some(bytes);
        self
    }

    /// Retries only these classes.
    pub const fn on(mut self, classes: ClassSet) -> HttpRetry {
        self.classes = classes;
        self
    }

    /// Draws every retry from a shared [`RetryBudget`].
    pub const fn budget(mut self, budget: &'static RetryBudget) -> HttpRetry {
        self.budget = Some(budget);
        self
    }

    /// Takes a turn from `limiter` before every attempt, and tells it every
    /// answer's rate-limit headers and every refusal.
    pub const fn limiter(mut self, limiter: &'static RateLimiter) -> HttpRetry {
        self.limiter = Some(limiter);
        self
    }

    /// Names the calls in `tracing` events and metrics (default `"http"`).
    pub const fn named(mut self, function: &'static str) -> HttpRetry {
        self.function = function;
        self
    }

    /// Calls `on_retry` before each sleep (`#[retry]`'s `on_retry` key).
    pub const fn on_retry(mut self, on_retry: fn(&RetryEvent<'_, HttpFailure>)) -> HttpRetry {
        self.on_retry = Some(on_retry);
        self
    }

    /// Calls `on_give_up` once when the call stops retrying a failure, with
    /// the reason (`#[retry]`'s `on_give_up` key).
    pub const fn on_give_up(mut self, on_give_up: fn(&RetryEvent<'_, HttpFailure>)) -> HttpRetry {
        self.on_give_up = Some(on_give_up);
        self
    }

    /// The policy.
    pub const fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Sends `attempt()` until it is answered with a success, fails in a way not
    /// to retry, or the policy says stop. An error answer that is the last is
    /// handed back as an equivalent response; else the last error, boxed. A
    /// call that is not `replayable` (its request cannot be copied) makes one
    /// attempt, with everything else the same: turn, cut-off, budget, report.
    pub(crate) async fn run<R, F, Fut>(
        &self,
        class_of: fn(&BoxError) -> ErrorClass,
        replayable: bool,
        cost: Cost,
        mut attempt: F,
    ) -> Result<R, BoxError>
    where
        R: HttpAnswer,
        BoxError: From<R::ReadError>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<R, BoxError>>,
    {
        let mut retry = Retry::<HttpFailure>::classified(self.policy)
            .on(self.classes)
            .named(self.function)
            .replayable(replayable)
            .cost(cost);
        if let Some(budget) = self.budget {
            retry = retry.budget(budget);
        }
        if let Some(on_retry) = self.on_retry {
            retry = retry.on_retry(on_retry);
        }
        if let Some(on_give_up) = self.on_give_up {
            retry = retry.on_give_up(on_give_up);
        }
        // A limiter's wait before the first attempt counts toward the deadline.
        let mut attempts = match self.limiter {
            Some(_) => retry.begin(Clock::Tokio),
            None => retry.begin_cut(),
        };
        let mut paced = Paced::<HttpFailure>::new();
        loop {
            if let Some(limiter) = self.limiter
                && !paced.ready(limiter)
                && let Err(failure) = paced.wait(limiter, &self.policy, &attempts, cost).await
            {
                return retry.gave_up_waiting(&attempts, failure).end();
            }
            // The attempt (and what it holds: a connection, a service's
            // concurrency permit) is dropped before the sleep.
            let (result, forced) = {
                let cut = attempts.cut_at(&self.policy);
                let sent =
                    std::pin::pin!(answered(attempt(), class_of, self.limiter, self.max_body));
                let (timed, convert) = with_timeout(cut, sent);
                settle_timeout(timed.await, convert, &mut attempts)
            };
            let step = match self.limiter {
                Some(limiter) => {
                    retry.step_paced(&mut attempts, result, forced, limiter, &mut paced)
                }
                None => retry.step(&mut attempts, result, forced),
            };
            let delay = match step {
                Step::Return(Ok(answer)) => return Ok(answer),
                Step::Return(Err(failure)) => return failure.end(),
                Step::Sleep(delay) => delay,
            };
            tokio::time::sleep(delay).await;
        }
    }
}

/// One attempt: the answer if it is a success (its body limited to
/// `max_body`, if given); else its body read, up to 64 KiB, into an
/// [`HttpFailure`] (the limiter told its headers either way).
async fn answered<R>(
    sent: impl Future<Output = Result<R, BoxError>>,
    class_of: fn(&BoxError) -> ErrorClass,
    limiter: Option<&RateLimiter>,
    max_body: Option<usize>,
) -> Result<R, HttpFailure>
where
    R: HttpAnswer,
    BoxError: From<R::ReadError>,
{
    // What the answer's headers say was true when the request was admitted.
    let sent_at = RateLimiter::now();
    let answer = match sent.await {
        Ok(answer) => answer,
        Err(error) => {
            let class = class_of(&error);
            return Err(HttpFailure::Transport(error, class));
        }
    };
    if let Some(limiter) = limiter {
        limiter.observe_at(answer.headers(), sent_at);
    }
    if (200..300).contains(&answer.status()) {
        return Ok(match max_body {
            Some(limit) => answer.limit_body(limit),
            None => answer,
        });
    }
    match answer.read(crate::body::ERROR_BODY_LIMIT).await {
        Ok((response, cut)) => {
            let body = crate::body::Capped {
                bytes: response.body().clone(),
                cut,
            };
            Err(HttpFailure::Answered {
                class: http::classify(response.status().as_u16(), response.headers(), &body.bytes),
                retry_after: http::server_hint_in(response.headers(), &body.bytes),
                message: crate::message::capped_message(&body),
                response: Box::new(response),
            })
        }
        Err(error) => {
            let error = BoxError::from(error);
            let class = class_of(&error);
            Err(HttpFailure::Transport(error, class))
        }
    }
}

/// A response an adapter can read and hand back: its status and headers, its
/// body read up to a limit, and an equivalent response rebuilt from what was read.
pub trait HttpAnswer: Sized {
    /// The error of reading the body.
    type ReadError;

    /// The status code.
    fn status(&self) -> u16;

    /// The headers.
    fn headers(&self) -> &HeaderMap;

    /// Reads the body up to `limit` bytes (see [`read_capped`](crate::body::read_capped)):
    /// the response with what was read, and whether the body went on past it.
    fn read(
        self,
        limit: usize,
    ) -> impl Future<Output = Result<(::http::Response<Bytes>, bool), Self::ReadError>> + Send;

    /// An equivalent response from what [`read`](HttpAnswer::read) returned.
    fn rebuild(read: ::http::Response<Bytes>) -> Self;

    /// The response with its body limited to `limit` bytes as its reader
    /// reads it. Unchanged by default.
    fn limit_body(self, limit: usize) -> Self {
        let _ = limit;
        self
    }
}

#[cfg(feature = "reqwest")]
impl HttpAnswer for ::reqwest::Response {
    type ReadError = ::reqwest::Error;

    fn status(&self) -> u16 {
        self.status().as_u16()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }

    async fn read(self, limit: usize) -> Result<(::http::Response<Bytes>, bool), ::reqwest::Error> {
        use ::reqwest::ResponseBuilderExt;
        let mut builder = ::http::Response::builder()
            .status(self.status())
            .version(self.version())
            .url(self.url().clone());
        if let Some(headers) = builder.headers_mut() {
            *headers = self.headers().clone();
        }
        let body = crate::body::read_response(self, limit).await?;
        // Status, version and headers came from a valid response: cannot fail.
        Ok((builder.body(body.bytes).unwrap_or_default(), body.cut))
    }

    fn rebuild(read: ::http::Response<Bytes>) -> ::reqwest::Response {
        ::reqwest::Response::from(read)
    }

    fn limit_body(self, limit: usize) -> ::reqwest::Response {
        let response = ::http::Response::<::reqwest::Body>::from(self);
        ::reqwest::Response::from(
            response.map(|body| ::reqwest::Body::wrap(http_body_util::Limited::new(body, limit))),
        )
    }
}

/// A failed attempt of an adapter's call, as its `on_retry` / `on_give_up`
/// hooks see it. `Display` is one line: the status and the API's message, or
/// the transport error; never a request header, so never the API key.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpFailure {
    /// An answer with an error status, its body read (up to 64 KiB) and
    /// classified once.
    Answered {
        /// The answer, with its body as read.
        response: Box<::http::Response<Bytes>>,
        /// What [`http::classify`] made of status, headers and body.
        class: ErrorClass,
        /// The server's hint ([`http::server_hint`]), if it gave one.
        retry_after: Option<Duration>,
        /// The API's message, or the start of the body, saying if it was cut.
        message: String,
    },
    /// No answer: the error, and its class.
    Transport(BoxError, ErrorClass),
    /// Cut off by the policy's `timeout` or `deadline`.
    TimedOut,
    /// The limiter gave no turn in time; nothing was sent.
    Throttled(Throttled),
}

impl HttpFailure {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpFailure::Answered { response, .. } => Some(response.status().as_u16()),
            _ => None,
        }
    }

    /// The call's end: an answer is handed back as an equivalent response,
    /// anything else as the error to return.
    fn end<R: HttpAnswer>(self) -> Result<R, BoxError> {
        match self {
            HttpFailure::Answered { response, .. } => Ok(R::rebuild(*response)),
            HttpFailure::Transport(error, _) => Err(error),
            HttpFailure::TimedOut => Err(Box::new(TimedOut)),
            HttpFailure::Throttled(throttled) => Err(Box::new(throttled)),
        }
    }
}

impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpFailure::Answered {
                response, message, ..
            } => write!(f, "HTTP {}: {message}", response.status().as_u16()),
            HttpFailure::Transport(error, _) => {
                write!(f, "{}", crate::message::WithSources(&**error))
            }
            HttpFailure::TimedOut => write!(f, "{TimedOut}"),
            HttpFailure::Throttled(throttled) => write!(f, "{throttled}"),
        }
    }
}

impl std::error::Error for HttpFailure {}

impl Classify for HttpFailure {
    fn class(&self) -> ErrorClass {
        match self {
            HttpFailure::Answered { class, .. } => *class,
            HttpFailure::Transport(_, class) => *class,
            HttpFailure::TimedOut => ErrorClass::Timeout,
            HttpFailure::Throttled(throttled) => throttled.class(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpFailure::Answered { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl From<TimedOut> for HttpFailure {
    fn from(_: TimedOut) -> HttpFailure {
        HttpFailure::TimedOut
    }
}

impl From<Throttled> for HttpFailure {
    fn from(throttled: Throttled) -> HttpFailure {
        HttpFailure::Throttled(throttled)
    }
}
