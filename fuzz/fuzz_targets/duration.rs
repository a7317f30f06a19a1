//! Arbitrary text into the duration parser the attribute uses at compile time.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(duration) = retry_runtime::parse_duration(text) {
            // A parsed duration is a whole Duration: its parts are in range.
            assert!(duration.subsec_nanos() < 1_000_000_000);
        }
    }
});
