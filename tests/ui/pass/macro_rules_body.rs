#![deny(warnings, unused_qualifications)]

//! A body passed through `macro_rules!` as `$body:block` (an invisible group).

use ai_retry::retry;
use std::io;

macro_rules! retried {
    ($name:ident $body:block) => {
        #[retry(initial = "1ms")]
        fn $name() -> io::Result<u32> $body
    };
    (async $name:ident $body:block) => {
        #[retry(initial = "1ms")]
        async fn $name() -> io::Result<u32> $body
    };
}

retried!(answer { Ok(42) });
retried!(async later { Ok(43) });

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(answer().unwrap(), 42);
    assert_eq!(later().await.unwrap(), 43);
}
