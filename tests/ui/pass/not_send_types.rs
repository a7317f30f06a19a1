#![deny(warnings, unused_qualifications)]

//! The future is `Send` when the body's is, even if `T` or `E` alone is not
//! held across an await (`Box<dyn Error>` is not `Send`).

use ai_retry::retry;

#[retry(on = any, initial = "1ms")]
async fn wrapped(ok: bool) -> Result<u32, Box<dyn std::error::Error>> {
    if ok { Ok(1) } else { Err("no".into()) }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let spawned = tokio::spawn(async { wrapped(true).await.map_err(|e| e.to_string()) });
    assert_eq!(spawned.await.unwrap(), Ok(1));
}
