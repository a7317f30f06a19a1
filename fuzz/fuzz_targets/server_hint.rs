//! Arbitrary header lines into the server-hint parser: it must never panic, and
//! a hint it returns must be a valid duration (no overflow in later arithmetic);
//! the quota reader and the body scan see the same input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use retry_runtime::http::{HeaderMap, HeaderName, HeaderValue, quotas, server_hint_at, server_hint_in};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NAMES: &[&str] = &[
    "retry-after-ms",
    "retry-after",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-input-tokens-limit",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-output-tokens-limit",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    // Each line: a name chosen by its first byte, then the value's bytes.
    for line in data.split(|&b| b == b'\n') {
        let Some((&pick, value)) = line.split_first() else { continue };
        let name = HeaderName::from_static(NAMES[usize::from(pick) % NAMES.len()]);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    // The limiter learns limits and levels from these: any value, no panic.
    let _ = quotas(&headers);
    // A 429's body is scanned for "try again in": the input itself as a body.
    let _ = server_hint_in(&headers, data);
    let now = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    if let Some(hint) = server_hint_at(&headers, now) {
        // The loop adds a spread and compares with max_delay: that must not overflow.
        let _ = hint.checked_add(Duration::from_secs(60));
        let _ = SystemTime::now().checked_add(hint);
    }
});
