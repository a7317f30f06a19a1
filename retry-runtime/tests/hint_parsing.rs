//! The server-hint parser on arbitrary input: never a panic, and never a delay
//! from a value that is not a valid hint.

use http::HeaderName;
use proptest::prelude::*;
use retry_runtime::http::{HeaderMap, HeaderValue, Quota, quotas, server_hint_at, server_hint_in};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
        }
    }
    map
}

fn is_decimal(s: &str) -> bool {
    let s = s.trim();
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    !(whole.is_empty() && fraction.is_empty())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// A Go duration: digits, dots and unit letters only, and at least one unit (or "0").
fn looks_like_go_duration(s: &str) -> bool {
    let s = s.trim();
    s == "0"
        || (!s.is_empty()
            && s.chars().any(|c| "nsuµμmh".contains(c))
            && s.chars()
                .all(|c| c.is_ascii_digit() || c == '.' || "nsuµμmh".contains(c)))
}

const NAMES: &[&str] = &[
    "retry-after-ms",
    "retry-after",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-reset",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_values_never_panic(name in prop::sample::select(NAMES), value in ".{0,40}", remaining in ".{0,4}") {
        let _ = server_hint_at(&headers(&[(name, &value),
            ("x-ratelimit-remaining-requests", &remaining),
            ("x-ratelimit-remaining-tokens", &remaining),
            ("anthropic-ratelimit-requests-remaining", &remaining),
            ("anthropic-ratelimit-tokens-remaining", &remaining)]), now());
    }

    #[test]
    fn retry_after_ms_only_from_decimals(value in "[0-9.eE+\\-a-z ]{0,12}") {
        let hint = server_hint_at(&headers(&[("retry-after-ms", &value)]), now());
        if let Some(hint) = hint {
            prop_assert!(is_decimal(&value), "{:?} gave {:?}", value, hint);
            let expected: f64 = value.trim().parse().unwrap();
            prop_assert!((hint.as_secs_f64() * 1000.0 - expected).abs() <= expected * 1e-9 + 1e-6);
        }
    }

    #[test]
    fn retry_after_only_from_decimals_or_future_dates(value in "[0-9.eE+\\-a-zA-Z :,]{0,32}") {
        let hint = server_hint_at(&headers(&[("retry-after", &value)]), now());
        if hint.is_some() {
            let date = httpdate::parse_http_date(value.trim());
            prop_assert!(is_decimal(&value) || date.is_ok_and(|d| d >= now()), "{:?}", value);
        }
    }

    #[test]
    fn openai_reset_only_when_exhausted(value in "[0-9.a-z]{0,10}", remaining in "[0-9]{1,3}") {
        let hint = server_hint_at(&headers(&[
            ("x-ratelimit-remaining-requests", &remaining),
            ("x-ratelimit-reset-requests", &value),
        ]), now());
        if hint.is_some() {
            prop_assert_eq!(remaining.parse::<u64>().unwrap(), 0);
            prop_assert!(looks_like_go_duration(&value), "{:?}", value);
        }
    }

    #[test]
    fn quotas_only_from_whole_numbers(name in prop::sample::select(QUOTA_NAMES), value in "[0-9a-z. +\\-]{0,12}") {
        let said = quotas(&headers(&[(name, &value)]));
        let read = [said.requests, said.tokens, said.input_tokens, said.output_tokens]
            .iter()
            .flat_map(|q| [q.limit, q.remaining])
            .flatten()
            .collect::<Vec<_>>();
        match value.trim().parse::<u64>() {
            // A limit of 0 is no limit (nothing could ever be sent); a remaining 0 is news.
            Ok(0) if name.ends_with("-limit") || name.contains("-limit-") => prop_assert!(read.is_empty(), "{:?}", read),
            Ok(n) => prop_assert_eq!(read, vec![n]),
            Err(_) => prop_assert!(read.is_empty(), "{:?} read as {:?}", value, read),
        }
    }

    #[test]
    fn any_seconds_value_round_trips(secs in 0u64..10_000_000, millis in 0u32..1000) {
        let value = format!("{secs}.{millis:03}");
        let hint = server_hint_at(&headers(&[("retry-after", &value)]), now()).unwrap();
        let expected = Duration::from_secs(secs) + Duration::from_millis(millis.into());
        prop_assert!(hint.abs_diff(expected) < Duration::from_micros(1));
    }
}

const QUOTA_NAMES: &[&str] = &[
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-input-tokens-limit",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-output-tokens-limit",
    "anthropic-ratelimit-output-tokens-remaining",
];

fn quota(limit: u64, remaining: u64) -> Quota {
    Quota {
        limit: Some(limit),
        remaining: Some(remaining),
    }
}

#[test]
fn openai_quotas_are_read_per_dimension() {
    let said = quotas(&headers(&[
        ("x-ratelimit-limit-requests", "500"),
        ("x-ratelimit-remaining-requests", "499"),
        ("x-ratelimit-reset-requests", "120ms"),
        ("x-ratelimit-limit-tokens", "30000"),
        ("x-ratelimit-remaining-tokens", "0"),
        ("x-ratelimit-reset-tokens", "1m2.5s"),
    ]));
    assert_eq!(said.requests, quota(500, 499));
    assert_eq!(said.tokens, quota(30_000, 0));
    assert_eq!(said.input_tokens, Quota::default());
    assert_eq!(said.output_tokens, Quota::default());
}

#[test]
fn anthropic_quotas_are_read_per_dimension() {
    let said = quotas(&headers(&[
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "49"),
        ("anthropic-ratelimit-input-tokens-limit", "600000"),
        ("anthropic-ratelimit-input-tokens-remaining", "598000"),
        ("anthropic-ratelimit-output-tokens-limit", "300000"),
        ("anthropic-ratelimit-output-tokens-remaining", "0"),
        // The most restrictive of the token limits: the two above say more.
        ("anthropic-ratelimit-tokens-limit", "300000"),
        ("anthropic-ratelimit-tokens-remaining", "0"),
    ]));
    assert_eq!(said.requests, quota(50, 49));
    assert_eq!(said.tokens, Quota::default());
    assert_eq!(said.input_tokens, quota(600_000, 598_000));
    assert_eq!(said.output_tokens, quota(300_000, 0));
}

#[test]
fn garbage_quotas_are_no_value_and_the_rest_still_reads() {
    let said = quotas(&headers(&[
        ("x-ratelimit-limit-requests", "lots"),
        ("x-ratelimit-remaining-requests", "-1"),
        ("x-ratelimit-limit-tokens", "3e4"),
        ("x-ratelimit-remaining-tokens", "99999999999999999999999"),
        ("anthropic-ratelimit-input-tokens-limit", "0"),
        ("anthropic-ratelimit-output-tokens-limit", "8000"),
        ("anthropic-ratelimit-output-tokens-remaining", "7,000"),
    ]));
    assert!(said.requests == Quota::default() && said.tokens == Quota::default());
    assert_eq!(said.input_tokens, Quota::default());
    assert_eq!(said.output_tokens.limit, Some(8000));
    assert_eq!(said.output_tokens.remaining, None);
    assert!(quotas(&HeaderMap::new()).is_empty());
}

#[test]
fn a_providers_429_message_is_a_hint_when_no_header_says_more() {
    let openai = br#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29500, Requested 1200. Please try again in 1.4s. Visit https://platform.openai.com/account/rate-limits","type":"tokens","code":"rate_limit_exceeded"}}"#;
    let hint = server_hint_in(&HeaderMap::new(), openai).unwrap();
    assert_eq!(hint, Duration::from_millis(1400));
    // A header says more than the message.
    let told = server_hint_in(&headers(&[("retry-after", "3")]), openai).unwrap();
    assert_eq!(told, Duration::from_secs(3));
    // A message with no wait in it, or garbage after the words, is no hint.
    assert_eq!(server_hint_in(&HeaderMap::new(), b"slow down"), None);
    assert_eq!(
        server_hint_in(&HeaderMap::new(), b"please try again in a moment"),
        None
    );
    assert_eq!(
        server_hint_in(&HeaderMap::new(), b"try again in 2ms."),
        Some(Duration::from_millis(2))
    );
}

#[test]
fn a_wait_too_long_for_a_duration_saturates_and_is_not_lost() {
    let huge = "99999999999999999999";
    let forms = [
        headers(&[("retry-after", huge)]),
        headers(&[("retry-after-ms", huge)]),
        headers(&[("retry-after", &"9".repeat(400))]),
        // A shorter, lower-priority hint must not win over it.
        headers(&[
            ("retry-after", huge),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1s"),
        ]),
    ];
    for form in forms {
        // Saturated, or at least longer than any max_delay: never lost.
        let hint = server_hint_at(&form, now());
        assert!(
            hint.is_some_and(|h| h >= Duration::from_secs(1 << 40)),
            "{form:?}: {hint:?}"
        );
    }
}
