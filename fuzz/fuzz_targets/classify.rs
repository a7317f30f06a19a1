//! Arbitrary status, `x-should-retry` and body into the HTTP classifier.
#![no_main]

use libfuzzer_sys::fuzz_target;
use retry_runtime::ErrorClass;
use retry_runtime::http::{HeaderMap, HeaderValue, classify};

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_at_checked(3) else { return };
    let status = u16::from_le_bytes([head[0], head[1]]) % 1000;
    let mut headers = HeaderMap::new();
    let flag = match head[2] % 4 {
        0 => None,
        1 => Some("true"),
        2 => Some("false"),
        _ => Some("maybe"),
    };
    if let Some(flag) = flag {
        headers.insert("x-should-retry", HeaderValue::from_static(flag));
    }
    let class = classify(status, &headers, body);
    if flag == Some("false") {
        assert_eq!(class, ErrorClass::Permanent);
    }
    if flag == Some("true") {
        assert!(class.is_transient());
    }
});
