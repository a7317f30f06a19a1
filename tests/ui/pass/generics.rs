#![deny(warnings, unused_qualifications)]

use ai_retry::retry;
use std::fmt::Display;
use std::io;

#[retry(initial = "1ms")]
fn generic<T: Display + Clone, U>(value: &T, other: U) -> io::Result<String>
where
    U: AsRef<str>,
{
    Ok(format!("{value}{}", other.as_ref()))
}

#[retry(initial = "1ms")]
async fn lifetimes<'a, 'b: 'a>(first: &'a str, _second: &'b str) -> io::Result<&'a str> {
    Ok(first)
}

#[retry(initial = "1ms")]
async fn impl_trait(items: impl IntoIterator<Item = u32> + Clone, label: &impl Display) -> io::Result<String> {
    let total: u32 = items.clone().into_iter().sum();
    Ok(format!("{label}: {total}"))
}

#[retry(initial = "1ms")]
fn generic_error<E: ai_retry::Classify>(result: fn() -> Result<u8, E>) -> Result<u8, E> {
    result()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(generic(&1, "x").unwrap(), "1x");
    assert_eq!(lifetimes("a", "b").await.unwrap(), "a");
    assert_eq!(impl_trait(vec![1, 2], &"sum").await.unwrap(), "sum: 3");
    assert_eq!(generic_error::<io::Error>(|| Ok(5)).unwrap(), 5);
}
