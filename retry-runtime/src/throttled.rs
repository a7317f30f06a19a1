use std::fmt;
use std::time::Duration;

/// The error a call gets when its [`RateLimiter`](crate::RateLimiter) cannot give
/// it a turn in time (past `max_delay` of waiting or past the `deadline`) and no
/// attempt has failed yet; the function's error type receives it through
/// `From<Throttled>`. No request was sent for it. It classifies as
/// [`ErrorClass::RateLimit`](crate::ErrorClass::RateLimit), with the wait it
/// was spared as its hint.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::{Classify, ErrorClass, Throttled};
/// use std::time::Duration;
///
/// let throttled = Throttled::new(Duration::from_secs(90));
/// assert_eq!(throttled.class(), ErrorClass::RateLimit);
/// assert_eq!(throttled.wait(), Duration::from_secs(90));
/// assert_eq!(throttled.to_string(), "rate limited: the next turn was 90.00s away");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Throttled {
    wait: Duration,
}

impl Throttled {
    /// A refusal whose turn was `wait` away.
    pub const fn new(wait: Duration) -> Throttled {
        Throttled { wait }
    }

    /// How long the limiter would have made the call wait.
    pub const fn wait(&self) -> Duration {
        self.wait
    }
}

impl fmt::Display for Throttled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limited: the next turn was {:.2}s away",
            self.wait.as_secs_f64()
        )
    }
}

impl std::error::Error for Throttled {}

impl From<Throttled> for std::io::Error {
    fn from(throttled: Throttled) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::WouldBlock, throttled)
    }
}
