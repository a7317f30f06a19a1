//! [`HttpRetry`] as a tower [`Layer`] (feature `tower`): for any service whose
//! request can be cloned and whose response is a `reqwest::Response` (with the
//! `reqwest` feature) or an `http::Response<B>` — async-openai's
//! `Client::with_http_service` among them.
//!
//! ```
//! use ai_retry::HttpRetry;
//! use ai_retry::runtime::Policy;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A service that answers 503 once, then 200.
//! let calls = Arc::new(AtomicU32::new(0));
//! let counted = calls.clone();
//! let inner = tower::service_fn(move |_request: &'static str| {
//!     let status = if counted.fetch_add(1, Ordering::Relaxed) == 0 { 503 } else { 200 };
//!     let response = http::Response::builder().status(status).body(Full::new(Bytes::new()));
//!     async move { response }
//! });
//! let service = HttpRetry::new(Policy::new().initial(Duration::from_millis(1))).layer(inner);
//! let response = service.oneshot("hello").await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert_eq!(calls.load(Ordering::Relaxed), 2);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tower::{Layer, Service};
use bytes::Bytes;
use retry_runtime::http::HeaderMap;
use retry_runtime::{Cost, ErrorClass};

use crate::http_retry::{BoxError, HttpAnswer, HttpRetry};

impl<S> Layer<S> for HttpRetry {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> RetryService<S> {
        RetryService {
            inner,
            retry: *self,
        }
    }
}

/// A service whose calls retry as [`HttpRetry`] says. Errors are boxed: the
/// inner service's last error, or [`TimedOut`](crate::TimedOut) /
/// [`Throttled`](crate::Throttled) when the policy or the limiter ended the call.
#[derive(Clone, Debug)]
pub struct RetryService<S> {
    inner: S,
    retry: HttpRetry,
}

impl<S, Request> Service<Request> for RetryService<S>
where
    S: Service<Request> + Clone + Send + 'static,
    S::Response: HttpAnswer + Send,
    BoxError: From<<S::Response as HttpAnswer>::ReadError>,
    S::Error: Into<BoxError>,
    S::Future: Send,
    Request: Clone + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // tower's convention: the service polled ready serves this call and a
        // clone stays for the next. It makes the first attempt, so whatever
        // its readiness reserved (a concurrency permit) is used, then released
        // with that attempt; each retry polls a fresh clone ready.
        let template = self.inner.clone();
        let mut ready = Some(std::mem::replace(&mut self.inner, template.clone()));
        let retry = self.retry;
        let cost = cost_of(&request);
        Box::pin(async move {
            retry
                .run(class_of_boxed, true, cost, move || {
                    let service = ready.take().unwrap_or_else(|| template.clone());
                    attempt(service, request.clone())
                })
                .await
        })
    }
}

async fn attempt<S, Request>(mut service: S, request: Request) -> Result<S::Response, BoxError>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    service.call(request).await.map_err(Into::into)
}

/// What a request will cost, from its JSON body when it is one this layer can
/// read: a `reqwest::Request` (feature `reqwest`), an `http::Request` of
/// bytes, `String`, `Vec<u8>` or `Full<Bytes>`. Anything else costs one request.
fn cost_of<Request: 'static>(request: &Request) -> Cost {
    let any: &dyn std::any::Any = request;
    #[cfg(feature = "reqwest")]
    if let Some(request) = any.downcast_ref::<::reqwest::Request>() {
        let body = request.body().and_then(::reqwest::Body::as_bytes);
        return body.map_or(Cost::NONE, |body| {
            crate::estimate::cost(request.url().path(), body)
        });
    }
    let of = |path: &str, body: &[u8]| crate::estimate::cost(path, body);
    if let Some(request) = any.downcast_ref::<::http::Request<Bytes>>() {
        return of(request.uri().path(), request.body());
    }
    if let Some(request) = any.downcast_ref::<::http::Request<String>>() {
        return of(request.uri().path(), request.body().as_bytes());
    }
    if let Some(request) = any.downcast_ref::<::http::Request<Vec<u8>>>() {
        return of(request.uri().path(), request.body());
    }
    if let Some(request) = any.downcast_ref::<::http::Request<http_body_util::Full<Bytes>>>() {
        // A `Full` gives its bytes only by being read: a clone is cheap.
        let body = http_body_util::BodyExt::collect(request.body().clone());
        return match futures_ready(body) {
            Some(Ok(collected)) => of(request.uri().path(), &collected.to_bytes()),
            _ => Cost::NONE,
        };
    }
    Cost::NONE
}

/// The output of a future that is ready at its first poll (a `Full` body's
/// collection), without a runtime.
fn futures_ready<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let waker = std::task::Waker::noop();
    match future.as_mut().poll(&mut Context::from_waker(waker)) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// The class of a boxed error: of the first error in its chain the runtime
/// knows (reqwest's, I/O, timeouts), else `Permanent`.
fn class_of_boxed(error: &BoxError) -> ErrorClass {
    retry_runtime::class_of_chain(&**error)
}

/// `http::Response<B>` for any body that can be rebuilt from bytes (a hyper
/// client's `Full<Bytes>`, `String`, …).
impl<B> HttpAnswer for ::http::Response<B>
where
    B: http_body::Body + From<Bytes> + Send,
    B::Data: Send,
{
    type ReadError = B::Error;

    fn status(&self) -> u16 {
        self.status().as_u16()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }

    async fn read(self, limit: usize) -> Result<(::http::Response<Bytes>, bool), B::Error> {
        let (parts, body) = self.into_parts();
        let body = crate::body::read_capped(body, limit).await?;
        Ok((::http::Response::from_parts(parts, body.bytes), body.cut))
    }

    fn rebuild(read: ::http::Response<Bytes>) -> ::http::Response<B> {
        read.map(B::from)
    }
}
