//! The server-hint parser on arbitrary input: never a panic, and never a delay
//! from a value that is not a valid hint.

use http::HeaderName;
use proptest::prelude::*;
use retry_runtime::http::{HeaderMap, HeaderValue, server_hint_at};
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
    fn any_seconds_value_round_trips(secs in 0u64..10_000_000, millis in 0u32..1000) {
        let value = format!("{secs}.{millis:03}");
        let hint = server_hint_at(&headers(&[("retry-after", &value)]), now()).unwrap();
        let expected = Duration::from_secs(secs) + Duration::from_millis(millis.into());
        prop_assert!(hint.abs_diff(expected) < Duration::from_micros(1));
    }
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
