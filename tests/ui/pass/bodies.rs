#![deny(warnings, unused_qualifications)]

use ai_retry::retry;
use std::io;

fn parse(text: &str) -> io::Result<u32> {
    text.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not a number"))
}

#[retry(initial = "1ms")]
fn question_marks(text: &str) -> io::Result<u32> {
    let n = parse(text)?;
    if n == 0 {
        return Ok(0);
    }
    let doubled: Vec<u32> = [n, n].iter().map(|x| x * 2).collect();
    let sum = doubled.iter().try_fold(0u32, |acc, x| acc.checked_add(*x));
    Ok(sum.unwrap_or(0))
}

#[retry(initial = "1ms")]
async fn early_exits(flags: &[bool]) -> io::Result<usize> {
    for (i, flag) in flags.iter().enumerate() {
        if *flag {
            return Ok(i);
        }
    }
    let closure = |x: usize| -> io::Result<usize> { Ok(x + 1) };
    let nested = async { closure(flags.len()) };
    nested.await
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(question_marks("3").unwrap(), 12);
    assert!(question_marks("x").is_err());
    assert_eq!(early_exits(&[false, true]).await.unwrap(), 1);
    assert_eq!(early_exits(&[false]).await.unwrap(), 2);
}
