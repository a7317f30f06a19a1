#![deny(warnings, unused_qualifications)]

//! An async body's tail coerces to the return type, as in a plain `async fn`.

use ai_retry::retry;
use std::fmt::Display;
use std::future::Future;
use std::io;
use std::pin::Pin;

#[retry(initial = "1ms")]
async fn boxed() -> io::Result<Box<dyn Display + Send>> {
    Ok(Box::new(2))
}

#[retry(initial = "1ms")]
async fn pinned() -> io::Result<Pin<Box<dyn Future<Output = u32> + Send>>> {
    Ok(Box::pin(async { 3 }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(boxed().await.unwrap().to_string(), "2");
    assert_eq!(pinned().await.unwrap().await, 3);
}
