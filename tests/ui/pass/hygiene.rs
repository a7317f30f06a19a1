#![deny(warnings, unused_qualifications)]

// Names the expansion might use, in scope as constants, items and locals: none
// may clash with or capture the generated code.
#[allow(non_upper_case_globals)]
const result: u32 = 1;
#[allow(non_upper_case_globals)]
const delay: u32 = 2;
#[allow(non_upper_case_globals)]
const done: u32 = 3;

mod core {}
mod ai_retry_private {}

struct Retry;
struct Step;
struct Policy;

use ai_retry::retry;
use std::io;

#[retry(initial = "1ms")]
fn uses_the_names(attempts: u32) -> io::Result<u32> {
    let __ai_result = result;
    let _ = (Retry, Step, Policy);
    Ok(attempts + __ai_result + delay + done)
}

#[retry(initial = "1ms", timeout = "1s")]
async fn uses_them_async(attempts: u32) -> io::Result<u32> {
    let __ai_attempt = attempts;
    Ok(__ai_attempt + result + delay + done)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(uses_the_names(4).unwrap(), 10);
    assert_eq!(uses_them_async(4).await.unwrap(), 10);
}
