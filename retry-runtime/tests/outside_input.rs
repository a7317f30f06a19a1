//! Properties of everything that sees outside input: the HTTP classifier on
//! arbitrary responses, duration strings, and server-provided numbers, which
//! can never make the loop sleep past `max_delay` or `deadline`.

use proptest::prelude::*;
use retry_runtime::http::{HeaderMap, HeaderValue, classify, server_hint};
use retry_runtime::{Backoff, Classify, Clock, ErrorClass, Policy, Retry, Step, parse_duration};
use std::time::Duration;

fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

const HEADER_NAMES: &[&str] = &[
    "x-should-retry",
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "content-type",
];

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            prop::sample::select(HEADER_NAMES).prop_map(str::to_string),
            ".{0,24}",
        ),
        0..6,
    )
}

/// An error carrying whatever hint a server sent.
#[derive(Debug)]
struct Hinted(Option<Duration>);

impl Classify for Hinted {
    fn class(&self) -> ErrorClass {
        ErrorClass::RateLimit
    }
    fn retry_after(&self) -> Option<Duration> {
        self.0
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_classifier_takes_any_response(
        status in 0u16..1000,
        pairs in headers(),
        body in prop::collection::vec(any::<u8>(), 0..3000),
    ) {
        let headers = header_map(&pairs);
        let class = classify(status, &headers, &body);
        let should_retry = headers.get("x-should-retry").and_then(|v| v.to_str().ok()).map(str::trim);
        match should_retry {
            Some(v) if v.eq_ignore_ascii_case("false") => prop_assert_eq!(class, ErrorClass::Permanent),
            Some(v) if v.eq_ignore_ascii_case("true") => prop_assert!(class.is_transient()),
            _ if (500..600).contains(&status) => prop_assert!(class.is_transient()),
            _ if !(400..600).contains(&status) => prop_assert_eq!(class, ErrorClass::Permanent),
            _ => {}
        }
        let _ = server_hint(&headers);
    }

    #[test]
    fn duration_strings_never_panic(text in ".{0,40}") {
        let _ = parse_duration(&text);
    }

    #[test]
    fn written_durations_read_back(value in 0u64..10_000_000, unit in prop::sample::select(vec!["ns", "us", "ms", "s", "m", "h"])) {
        let scale = match unit { "ns" => 1e-9, "us" => 1e-6, "ms" => 1e-3, "s" => 1.0, "m" => 60.0, _ => 3600.0 };
        let parsed = parse_duration(&format!("{value}{unit}")).unwrap();
        let expected = value as f64 * scale;
        prop_assert!((parsed.as_secs_f64() - expected).abs() <= expected * 1e-12 + 1e-9);
    }

    #[test]
    fn server_numbers_never_stretch_a_sleep(
        hint in prop::option::of(prop_oneof![
            (0u64..10_000).prop_map(Duration::from_millis),
            any::<u64>().prop_map(Duration::from_secs),
            Just(Duration::MAX),
        ]),
        max_delay in (0u64..120_000).prop_map(Duration::from_millis),
        deadline in (0u64..120_000).prop_map(Duration::from_millis),
        initial in (0u64..5_000).prop_map(Duration::from_millis),
        backoff in prop::sample::select(Backoff::NAMES.map(|(_, b)| b).to_vec()),
    ) {
        let policy = Policy::new().max_attempts(6).backoff(backoff).initial(initial).max_delay(max_delay).deadline(deadline);
        let retry = Retry::classified(policy);
        let mut attempts = retry.begin(Clock::Std);
        loop {
            match retry.step(&mut attempts, Err::<(), _>(Hinted(hint)), None) {
                Step::Sleep(delay) => {
                    prop_assert!(delay <= max_delay, "{:?} > max_delay {:?}", delay, max_delay);
                    if let Some(hint) = hint {
                        prop_assert!(delay >= hint, "{:?} before the server's {:?}", delay, hint);
                    }
                    // Nothing really sleeps here, so the loop's clock stays near zero
                    // and the deadline bounds each sleep on its own.
                    prop_assert!(delay <= deadline, "{:?} > deadline {:?}", delay, deadline);
                }
                Step::Return(result) => {
                    prop_assert!(result.is_err());
                    break;
                }
            }
        }
    }
}
