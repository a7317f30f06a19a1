use std::fmt;

/// The error an attempt cut off by `timeout` produces; the function's error type
/// receives it through `From<TimedOut>`. It classifies as
/// [`ErrorClass::Timeout`](crate::ErrorClass::Timeout).
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::{Classify, ErrorClass, TimedOut};
/// assert_eq!(TimedOut.class(), ErrorClass::Timeout);
/// assert_eq!(TimedOut.to_string(), "the attempt timed out");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TimedOut;

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the attempt timed out")
    }
}

impl std::error::Error for TimedOut {}

impl From<TimedOut> for std::io::Error {
    fn from(_: TimedOut) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, TimedOut)
    }
}
