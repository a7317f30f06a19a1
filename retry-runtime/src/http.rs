//! HTTP classification and server hints, as OpenAI, Anthropic and
//! OpenAI-compatible servers send them.
//!
//! Both functions take what a client saw, so an API client's own error type can
//! carry their results and implement [`Classify`](crate::Classify) in two lines.

use std::time::{Duration, SystemTime};

pub use ::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::ErrorClass;
use crate::duration::{parse_decimal, parse_duration};

/// Only this much of a body is searched for quota and billing markers.
const BODY_SCAN_LIMIT: usize = 64 * 1024;

/// What a 429 body says when waiting cannot help: out of quota or credit, over a
/// spend limit, or a request larger than any rate window allows. Lowercase; the
/// body is lowercased before matching. Plain "billing" is not here: OpenAI's
/// ordinary rate-limit message links to its billing page.
const PERMANENT_429_MARKERS: &[&str] = &[
    "insufficient_quota",
    "exceeded your current quota",
    "billing_hard_limit_reached",
    "billing_not_active",
    "spend_limit",
    "spend limit",
    "spending limit",
    "usage limits",
    "credit balance is too low",
    "request too large",
    "request_too_large",
];

/// Classifies a failed HTTP response from its status, headers and body:
///
/// | response | class |
/// |---|---|
/// | `x-should-retry: false` | `Permanent`, whatever the status |
/// | `x-should-retry: true` | the status's class, or `Server` if that is `Permanent` |
/// | 429 whose body names `insufficient_quota`, a billing or spend limit, or a request too large | `Permanent` |
/// | 429 | `RateLimit` |
/// | 408, 504 | `Timeout` |
/// | 503, 529, or a 5xx whose body is an Anthropic `overloaded_error` | `Overloaded` |
/// | 409, 500, 502, other 5xx | `Server` |
/// | anything else (4xx, and 1xx–3xx which are not failures) | `Permanent` |
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::{ErrorClass, http};
///
/// let headers = http::HeaderMap::new();
/// let quota = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
/// assert_eq!(http::classify(429, &headers, b""), ErrorClass::RateLimit);
/// assert_eq!(http::classify(429, &headers, quota), ErrorClass::Permanent);
/// assert_eq!(http::classify(529, &headers, b""), ErrorClass::Overloaded);
/// ```
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> ErrorClass {
    let by_status = classify_status(status, body);
    match header(headers, "x-should-retry") {
        Some(v) if v.eq_ignore_ascii_case("false") => ErrorClass::Permanent,
        Some(v) if v.eq_ignore_ascii_case("true") => match by_status {
            ErrorClass::Permanent => ErrorClass::Server,
            class => class,
        },
        _ => by_status,
    }
}

fn classify_status(status: u16, body: &[u8]) -> ErrorClass {
    match status {
        429 if body_mentions(body, PERMANENT_429_MARKERS) => ErrorClass::Permanent,
        429 => ErrorClass::RateLimit,
        408 | 504 => ErrorClass::Timeout,
        503 | 529 => ErrorClass::Overloaded,
        500..=599 if body_mentions(body, &["overloaded_error"]) => ErrorClass::Overloaded,
        409 | 500..=599 => ErrorClass::Server,
        _ => ErrorClass::Permanent,
    }
}

fn body_mentions(body: &[u8], markers: &[&str]) -> bool {
    let scanned = &body[..body.len().min(BODY_SCAN_LIMIT)];
    let text = String::from_utf8_lossy(scanned).to_ascii_lowercase();
    markers.iter().any(|marker| text.contains(marker))
}

/// How long the server asked the client to wait, read from the response headers;
/// the first of these that holds a valid value wins:
///
/// 1. `retry-after-ms`: milliseconds, fractional allowed;
/// 2. `retry-after`: seconds (fractional allowed) or an HTTP-date;
/// 3. OpenAI's `x-ratelimit-reset-requests` / `-tokens` (Go durations such as
///    `"6m0s"`), each only when its `x-ratelimit-remaining-*` is `0`;
/// 4. Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset`
///    (RFC 3339), each only when its `-remaining` is `0`.
///
/// Within 3 and 4, the latest reset among the exhausted limits is the one to wait
/// for. Garbage, negative, and past values are ignored; nothing here panics.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::http::{self, HeaderMap, HeaderValue};
/// use std::time::Duration;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after", HeaderValue::from_static("2"));
/// assert_eq!(http::server_hint(&headers), Some(Duration::from_secs(2)));
///
/// headers.insert("retry-after-ms", HeaderValue::from_static("1500.5"));
/// assert_eq!(http::server_hint(&headers), Some(Duration::from_micros(1_500_500)));
/// ```
pub fn server_hint(headers: &HeaderMap) -> Option<Duration> {
    server_hint_at(headers, SystemTime::now())
}

/// [`server_hint`] with the current time given, for dates and tests.
pub fn server_hint_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    retry_after_ms(headers)
        .or_else(|| retry_after(headers, now))
        .or_else(|| openai_reset(headers))
        .or_else(|| anthropic_reset(headers, now))
}

/// When the limits a response reports run out: the wait until the latest reset
/// among OpenAI's `x-ratelimit-*` and Anthropic's `anthropic-ratelimit-*` limits
/// whose `remaining` is `0` (steps 3 and 4 of [`server_hint`]); `None` while
/// any is left.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::http::{self, HeaderMap, HeaderValue};
/// use std::time::{Duration, SystemTime};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-remaining-requests", HeaderValue::from_static("0"));
/// headers.insert("x-ratelimit-reset-requests", HeaderValue::from_static("120ms"));
/// assert_eq!(http::reset_hint_at(&headers, SystemTime::now()), Some(Duration::from_millis(120)));
/// ```
pub fn reset_hint_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    openai_reset(headers).or_else(|| anthropic_reset(headers, now))
}

/// The request limit a response announces, in requests per minute: OpenAI's
/// `x-ratelimit-limit-requests` or Anthropic's `anthropic-ratelimit-requests-limit`.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::http::{self, HeaderMap, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("anthropic-ratelimit-requests-limit", HeaderValue::from_static("50"));
/// assert_eq!(http::request_limit_per_minute(&headers), Some(50));
/// ```
pub fn request_limit_per_minute(headers: &HeaderMap) -> Option<u64> {
    [
        "x-ratelimit-limit-requests",
        "anthropic-ratelimit-requests-limit",
    ]
    .into_iter()
    .find_map(|name| header(headers, name)?.parse::<u64>().ok())
    .filter(|&limit| limit > 0)
}

/// [`server_hint`], reading the body too: a 429 for tokens says how long in
/// its message ("Please try again in 1.5s", OpenAI), which a header's reset —
/// when the bucket is *full* again — overstates. In order: `retry-after-ms`,
/// `retry-after`, the message's "try again in", then the reset headers.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::http::{self, HeaderMap, HeaderValue};
/// use std::time::Duration;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-remaining-tokens", HeaderValue::from_static("0"));
/// headers.insert("x-ratelimit-reset-tokens", HeaderValue::from_static("6m0s"));
/// let body = br#"{"error": {"message": "Rate limit reached for gpt-4o-mini on tokens per min (TPM): Limit 30000, Used 29500, Requested 1200. Please try again in 1.4s."}}"#;
/// assert_eq!(http::server_hint_in(&headers, body), Some(Duration::from_millis(1400)));
/// assert_eq!(http::server_hint(&headers), Some(Duration::from_secs(360)));
/// ```
pub fn server_hint_in(headers: &HeaderMap, body: &[u8]) -> Option<Duration> {
    let now = SystemTime::now();
    retry_after_ms(headers)
        .or_else(|| retry_after(headers, now))
        .or_else(|| try_again_in(body))
        .or_else(|| reset_hint_at(headers, now))
}

/// The wait in a message's "try again in 1.5s" (a Go duration), if any.
fn try_again_in(body: &[u8]) -> Option<Duration> {
    const SAID: &str = "try again in ";
    let scanned = &body[..body.len().min(BODY_SCAN_LIMIT)];
    let text = String::from_utf8_lossy(scanned).to_ascii_lowercase();
    let rest = &text[text.find(SAID)? + SAID.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .unwrap_or(rest.len());
    let said = rest[..end].trim_end_matches('.');
    parse_duration(said)
}

/// What a response says of one limit: how much a minute, and how much is left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    /// The limit per minute.
    pub limit: Option<u64>,
    /// What is left now.
    pub remaining: Option<u64>,
}

/// What a response says of each limit of the key: OpenAI's
/// `x-ratelimit-{limit,remaining}-{requests,tokens}`, Anthropic's
/// `anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,remaining}`
/// (Anthropic's `-tokens-*`, the most restrictive of its token limits, is not
/// read: its input and output limits are). Garbage is no value.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::http::{self, HeaderMap, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-limit-tokens", HeaderValue::from_static("30000"));
/// headers.insert("x-ratelimit-remaining-tokens", HeaderValue::from_static("28500"));
/// let quotas = http::quotas(&headers);
/// assert_eq!(quotas.tokens.limit, Some(30_000));
/// assert_eq!(quotas.tokens.remaining, Some(28_500));
/// assert_eq!(quotas.requests.limit, None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quotas {
    /// Requests.
    pub requests: Quota,
    /// Tokens, input and output together (OpenAI).
    pub tokens: Quota,
    /// Input tokens (Anthropic).
    pub input_tokens: Quota,
    /// Output tokens (Anthropic).
    pub output_tokens: Quota,
}

impl Quotas {
    /// Whether the response said anything of a limit.
    pub fn is_empty(&self) -> bool {
        *self == Quotas::default()
    }

    /// In the limiter's order: requests, tokens, input, output.
    pub(crate) fn each(&self) -> [Quota; 4] {
        [
            self.requests,
            self.tokens,
            self.input_tokens,
            self.output_tokens,
        ]
    }
}

/// Reads [`Quotas`] from a response's headers.
pub fn quotas(headers: &HeaderMap) -> Quotas {
    let number = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| header(headers, name)?.parse::<u64>().ok())
    };
    let quota = |limits: &[&str], remaining: &[&str]| Quota {
        limit: number(limits).filter(|&limit| limit > 0),
        remaining: number(remaining),
    };
    Quotas {
        requests: quota(
            &[
                "x-ratelimit-limit-requests",
                "anthropic-ratelimit-requests-limit",
            ],
            &[
                "x-ratelimit-remaining-requests",
                "anthropic-ratelimit-requests-remaining",
            ],
        ),
        tokens: quota(
            &["x-ratelimit-limit-tokens"],
            &["x-ratelimit-remaining-tokens"],
        ),
        input_tokens: quota(
            &["anthropic-ratelimit-input-tokens-limit"],
            &["anthropic-ratelimit-input-tokens-remaining"],
        ),
        output_tokens: quota(
            &["anthropic-ratelimit-output-tokens-limit"],
            &["anthropic-ratelimit-output-tokens-remaining"],
        ),
    }
}

fn retry_after_ms(headers: &HeaderMap) -> Option<Duration> {
    let ms = parse_decimal(header(headers, "retry-after-ms")?)?;
    saturating_secs(ms / 1000.0)
}

fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = header(headers, "retry-after")?;
    match parse_decimal(value) {
        Some(secs) => saturating_secs(secs),
        None => until(httpdate::parse_http_date(value).ok()?, now),
    }
}

/// Seconds as a `Duration`, saturating: a wait too long for a `Duration` is
/// still a wait (`Duration::MAX`, past any `max_delay`), never "no hint" that a
/// shorter header or the backoff would replace. `NaN` and negatives are garbage.
fn saturating_secs(secs: f64) -> Option<Duration> {
    match Duration::try_from_secs_f64(secs) {
        Ok(duration) => Some(duration),
        Err(_) if secs > 0.0 => Some(Duration::MAX),
        Err(_) => None,
    }
}

fn openai_reset(headers: &HeaderMap) -> Option<Duration> {
    ["requests", "tokens"]
        .into_iter()
        .filter(|limit| exhausted(headers, &format!("x-ratelimit-remaining-{limit}")))
        .filter_map(|limit| parse_duration(header(headers, &format!("x-ratelimit-reset-{limit}"))?))
        .max()
}

fn anthropic_reset(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    ["requests", "tokens", "input-tokens", "output-tokens"]
        .into_iter()
        .filter(|limit| exhausted(headers, &format!("anthropic-ratelimit-{limit}-remaining")))
        .filter_map(|limit| {
            let reset = header(headers, &format!("anthropic-ratelimit-{limit}-reset"))?;
            until(humantime::parse_rfc3339_weak(reset).ok()?, now)
        })
        .max()
}

/// Time from `now` until `at`; `None` when `at` is past.
fn until(at: SystemTime, now: SystemTime) -> Option<Duration> {
    at.duration_since(now).ok()
}

fn exhausted(headers: &HeaderMap, name: &str) -> bool {
    header(headers, name).is_some_and(|v| v.parse::<u64>() == Ok(0))
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}
