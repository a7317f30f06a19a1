#![deny(warnings, unused_qualifications)]

//! Classes may be written as paths: `ErrorClass::RateLimit` means `RateLimit`.

use ai_retry::{ErrorClass, retry};
use std::io;

#[retry(initial = "1ms", on = ErrorClass::Connection | Timeout)]
fn call(calls: &mut u32) -> io::Result<u32> {
    *calls += 1;
    if *calls < 2 {
        return Err(io::ErrorKind::ConnectionReset.into());
    }
    Ok(*calls)
}

fn main() {
    let mut calls = 0;
    assert_eq!(call(&mut calls).unwrap(), 2);
    let _ = ErrorClass::RateLimit;
}
