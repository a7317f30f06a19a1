#![deny(warnings, unused_qualifications)]

use ai_retry::retry;
use std::io;

#[retry]
fn blocking() -> io::Result<u32> {
    Ok(1)
}

#[retry(max = 2, initial = "1ms")]
pub async fn asynchronous(x: u32) -> Result<u32, io::Error> {
    Ok(x)
}

#[retry(on = any)]
fn anyhow_result() -> anyhow::Result<&'static str> {
    Ok("aliases work")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(blocking().unwrap(), 1);
    assert_eq!(asynchronous(2).await.unwrap(), 2);
    assert_eq!(anyhow_result().unwrap(), "aliases work");
}
