//! Every row of DESIGN.md's classification table, with the bodies and headers
//! OpenAI and Anthropic really send, and every server-hint form.

use http::HeaderName;
use retry_runtime::ErrorClass::{self, *};
use retry_runtime::http::{HeaderMap, HeaderValue, classify, server_hint_at};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const OPENAI_RATE_LIMIT: &str = r#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms. Visit https://platform.openai.com/account/rate-limits to learn more. You can increase your rate limit by adding a payment method to your account at https://platform.openai.com/account/billing.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
const OPENAI_QUOTA: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
const OPENAI_HARD_LIMIT: &str = r#"{"error":{"message":"Billing hard limit has been reached","type":"invalid_request_error","param":null,"code":"billing_hard_limit_reached"}}"#;
const OPENAI_TOO_LARGE: &str = r#"{"error":{"message":"Request too large for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Requested 45000. The input or output tokens must be reduced in order to run successfully.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;
const OPENAI_SERVER: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;
const OPENAI_BAD_REQUEST: &str = r#"{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error","param":"temperature","code":null}}"#;
const OPENAI_AUTH: &str = r#"{"error":{"message":"Incorrect API key provided: sk-****.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
const ANTHROPIC_RATE_LIMIT: &str = r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 50 requests per minute."}}"#;
const ANTHROPIC_OVERLOADED: &str =
    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
const ANTHROPIC_API_ERROR: &str =
    r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#;
const ANTHROPIC_SPEND_LIMIT: &str = r#"{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC."}}"#;
const ANTHROPIC_TOO_LARGE: &str = r#"{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}"#;
const ANTHROPIC_NOT_FOUND: &str =
    r#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-nonexistent"}}"#;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// (status, headers, body, expected class, why)
type Row = (
    u16,
    &'static [(&'static str, &'static str)],
    &'static str,
    ErrorClass,
    &'static str,
);

#[test]
fn classification_table() {
    let none: &[(&str, &str)] = &[];
    let table: &[Row] = &[
        (
            400,
            &[("x-should-retry", "false")],
            OPENAI_BAD_REQUEST,
            Permanent,
            "should-retry false on 4xx",
        ),
        (
            500,
            &[("x-should-retry", "false")],
            OPENAI_SERVER,
            Permanent,
            "should-retry false wins over 5xx",
        ),
        (
            429,
            &[("x-should-retry", "false")],
            OPENAI_RATE_LIMIT,
            Permanent,
            "should-retry false wins over 429",
        ),
        (
            400,
            &[("x-should-retry", "true")],
            OPENAI_BAD_REQUEST,
            Server,
            "should-retry true on a permanent status",
        ),
        (
            429,
            &[("x-should-retry", "true")],
            OPENAI_QUOTA,
            Server,
            "should-retry true beats a quota body",
        ),
        (
            503,
            &[("x-should-retry", "TRUE")],
            "",
            Overloaded,
            "should-retry true keeps the status class",
        ),
        (
            429,
            &[("x-should-retry", "maybe")],
            OPENAI_RATE_LIMIT,
            RateLimit,
            "garbage should-retry is ignored",
        ),
        (
            429,
            none,
            OPENAI_QUOTA,
            Permanent,
            "OpenAI insufficient_quota",
        ),
        (
            429,
            none,
            OPENAI_HARD_LIMIT,
            Permanent,
            "OpenAI billing hard limit",
        ),
        (
            429,
            none,
            OPENAI_TOO_LARGE,
            Permanent,
            "OpenAI request too large",
        ),
        (
            429,
            none,
            ANTHROPIC_SPEND_LIMIT,
            Permanent,
            "Anthropic usage (spend) limit",
        ),
        (
            429,
            none,
            OPENAI_RATE_LIMIT,
            RateLimit,
            "OpenAI rate limit (mentions billing URL)",
        ),
        (
            429,
            none,
            ANTHROPIC_RATE_LIMIT,
            RateLimit,
            "Anthropic rate limit",
        ),
        (429, none, "", RateLimit, "429 without a body"),
        (
            429,
            none,
            "\u{0}\u{ff}not json at all",
            RateLimit,
            "429 with a garbage body",
        ),
        (408, none, "", Timeout, "408"),
        (504, none, "<html>Gateway Time-out</html>", Timeout, "504"),
        (503, none, "", Overloaded, "503"),
        (529, none, ANTHROPIC_OVERLOADED, Overloaded, "Anthropic 529"),
        (
            500,
            none,
            ANTHROPIC_OVERLOADED,
            Overloaded,
            "5xx with an overloaded_error body",
        ),
        (409, none, "", Server, "409 conflict"),
        (500, none, OPENAI_SERVER, Server, "OpenAI 500"),
        (
            500,
            none,
            ANTHROPIC_API_ERROR,
            Server,
            "Anthropic api_error",
        ),
        (502, none, "<html>Bad Gateway</html>", Server, "502"),
        (520, none, "", Server, "other 5xx"),
        (599, none, "", Server, "last 5xx"),
        (400, none, OPENAI_BAD_REQUEST, Permanent, "400"),
        (401, none, OPENAI_AUTH, Permanent, "401"),
        (403, none, "", Permanent, "403"),
        (404, none, ANTHROPIC_NOT_FOUND, Permanent, "404"),
        (
            413,
            none,
            ANTHROPIC_TOO_LARGE,
            Permanent,
            "Anthropic 413 request_too_large",
        ),
        (422, none, "", Permanent, "422"),
        (
            200,
            none,
            "{",
            Permanent,
            "a 200 is not a retryable failure",
        ),
        (301, none, "", Permanent, "3xx"),
    ];
    for (status, pairs, body, expected, why) in table {
        let got = classify(*status, &headers(pairs), body.as_bytes());
        assert_eq!(got, *expected, "{status} {why}");
    }
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

fn hint(pairs: &[(&str, &str)]) -> Option<Duration> {
    server_hint_at(&headers(pairs), now())
}

#[test]
fn every_hint_form() {
    let s = Duration::from_secs;
    let ms = Duration::from_millis;
    assert_eq!(hint(&[]), None);
    assert_eq!(hint(&[("retry-after-ms", "250")]), Some(ms(250)));
    assert_eq!(
        hint(&[("retry-after-ms", "0.5")]),
        Some(Duration::from_micros(500))
    );
    assert_eq!(hint(&[("retry-after", "3")]), Some(s(3)));
    assert_eq!(hint(&[("retry-after", " 1.25 ")]), Some(ms(1250)));
    assert_eq!(hint(&[("retry-after", "0")]), Some(Duration::ZERO));
    let in_90s = httpdate::fmt_http_date(now() + s(90));
    assert_eq!(hint(&[("retry-after", &in_90s)]), Some(s(90)));
    assert_eq!(
        hint(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1.5s")
        ]),
        Some(ms(1500))
    );
    assert_eq!(
        hint(&[
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6m0s")
        ]),
        Some(s(360))
    );
    assert_eq!(
        hint(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2025-06-15T15:07:00Z"),
        ]),
        // 1_750_000_000 is 2025-06-15T15:06:40Z.
        Some(s(20))
    );
    assert_eq!(
        hint(&[
            ("anthropic-ratelimit-output-tokens-remaining", "0"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2025-06-15T15:06:45Z"
            ),
        ]),
        Some(s(5))
    );
}

#[test]
fn first_form_found_wins() {
    let pairs = [
        ("retry-after", "7"),
        ("retry-after-ms", "100"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "30s"),
    ];
    assert_eq!(hint(&pairs), Some(Duration::from_millis(100)));
    assert_eq!(hint(&pairs[..1]), Some(Duration::from_secs(7)));
    // Garbage in the first form falls through to the next valid one.
    assert_eq!(
        hint(&[("retry-after-ms", "soon"), ("retry-after", "2")]),
        Some(Duration::from_secs(2))
    );
}

#[test]
fn reset_headers_count_only_when_that_limit_is_exhausted() {
    let s = Duration::from_secs;
    assert_eq!(
        hint(&[
            ("x-ratelimit-remaining-requests", "5"),
            ("x-ratelimit-reset-requests", "10s")
        ]),
        None
    );
    assert_eq!(hint(&[("x-ratelimit-reset-requests", "10s")]), None);
    // Both exhausted: wait for the later reset.
    assert_eq!(
        hint(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "2s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "9s"),
        ]),
        Some(s(9))
    );
    // Only tokens exhausted: the requests reset does not apply.
    assert_eq!(
        hint(&[
            ("x-ratelimit-remaining-requests", "10"),
            ("x-ratelimit-reset-requests", "30s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "4s"),
        ]),
        Some(s(4))
    );
    assert_eq!(
        hint(&[
            ("anthropic-ratelimit-tokens-remaining", "1200"),
            ("anthropic-ratelimit-tokens-reset", "2025-06-15T15:07:00Z"),
        ]),
        None
    );
}

#[test]
fn garbage_negative_and_past_values_are_ignored() {
    let past = httpdate::fmt_http_date(now() - Duration::from_secs(5));
    for pairs in [
        &[("retry-after", "-5")][..],
        &[("retry-after", "soon")],
        &[("retry-after", "1e3")],
        &[("retry-after", "inf")],
        &[("retry-after", "NaN")],
        &[("retry-after", "")],
        &[("retry-after", &past)],
        &[("retry-after", "Wed, 99 Foo 2025 99:99:99 GMT")],
        &[("retry-after-ms", "-1")],
        &[("retry-after-ms", "0x10")],
        &[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "-1s"),
        ],
        &[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "later"),
        ],
        &[
            ("x-ratelimit-remaining-requests", "zero"),
            ("x-ratelimit-reset-requests", "1s"),
        ],
        &[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2020-01-01T00:00:00Z"),
        ],
        &[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "tomorrow"),
        ],
    ] {
        assert_eq!(hint(pairs), None, "{pairs:?}");
    }
}

#[test]
fn huge_values_are_kept_so_the_loop_can_refuse_them() {
    // A hint is the server's word: the loop compares it with max_delay and stops
    // rather than retry early. Values past Duration's range saturate: read as
    // "no hint", a shorter header or the backoff would retry far too soon.
    assert_eq!(
        hint(&[("retry-after", "99999999999")]),
        Some(Duration::from_secs(99_999_999_999))
    );
    assert_eq!(
        hint(&[("retry-after", &"9".repeat(400))]),
        Some(Duration::MAX)
    );
    assert_eq!(
        hint(&[("retry-after-ms", &"9".repeat(400))]),
        Some(Duration::MAX)
    );
}
