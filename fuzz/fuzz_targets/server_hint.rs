//! Arbitrary header lines into the server-hint parser: it must never panic, and
//! a hint it returns must be a valid duration (no overflow in later arithmetic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use retry_runtime::http::{HeaderMap, HeaderName, HeaderValue, server_hint_at};
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
    let now = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    if let Some(hint) = server_hint_at(&headers, now) {
        // The loop adds a spread and compares with max_delay: that must not overflow.
        let _ = hint.checked_add(Duration::from_secs(60));
        let _ = SystemTime::now().checked_add(hint);
    }
});
