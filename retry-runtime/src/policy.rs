//! The numbers of a retry loop: how many attempts, how long to wait, and for how long in all.

use std::time::Duration;

/// How the delay between attempts grows. The formulas are in [`crate::backoff::delay`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backoff {
    /// No wait.
    None,
    /// `initial` every time.
    Constant,
    /// `initial · n`.
    Linear,
    /// `initial · 2^(n-1)`.
    Exp,
    /// Full jitter: `U[0, 1) · exp`. The default.
    ExpJitter,
    /// `exp/2 + U[0, 1) · exp/2`.
    EqualJitter,
    /// `U[initial, 3 · previous]`.
    DecorrelatedJitter,
}

impl Backoff {
    /// Every strategy with its name in `#[retry(backoff = "…")]`.
    pub const NAMES: [(&'static str, Backoff); 7] = [
        ("none", Backoff::None),
        ("constant", Backoff::Constant),
        ("linear", Backoff::Linear),
        ("exp", Backoff::Exp),
        ("exp_jitter", Backoff::ExpJitter),
        ("equal_jitter", Backoff::EqualJitter),
        ("decorrelated_jitter", Backoff::DecorrelatedJitter),
    ];

    /// The strategy with this name, as written in `#[retry(backoff = "…")]`.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::runtime::Backoff;
    /// assert_eq!(Backoff::from_name("exp_jitter"), Some(Backoff::ExpJitter));
    /// assert_eq!(Backoff::from_name("expo"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Backoff> {
        Backoff::NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|&(_, backoff)| backoff)
    }

    /// The strategy's name, as written in `#[retry(backoff = "…")]`.
    pub fn name(self) -> &'static str {
        Backoff::NAMES
            .iter()
            .find(|(_, backoff)| *backoff == self)
            .map_or("", |&(name, _)| name)
    }
}

/// Every number of a retry loop. `Copy` and built in `const` context, so the
/// attribute turns into a constant.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::runtime::{Backoff, Policy};
/// use std::time::Duration;
///
/// const POLICY: Policy = Policy::new()
///     .max_attempts(5)
///     .backoff(Backoff::Exp)
///     .initial(Duration::from_millis(200))
///     .deadline(Duration::from_secs(30));
/// assert_eq!(POLICY.max_delay, Duration::from_secs(60));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Attempts in total, the first call included; `1` never retries (`0` acts as `1`).
    pub max_attempts: u32,
    /// How the delay grows.
    pub backoff: Backoff,
    /// The base delay of the strategy.
    pub initial: Duration,
    /// The longest single sleep, computed or asked for by the server. A server
    /// hint above it ends the loop rather than being shortened.
    pub max_delay: Duration,
    /// The total time from the first call that no sleep may end past.
    pub deadline: Option<Duration>,
    /// Async only: each attempt is cut off after this.
    pub timeout: Option<Duration>,
}

impl Policy {
    /// The defaults of `#[retry]`: 3 attempts, full-jitter exponential backoff from
    /// 500 ms, at most 60 s a sleep, no deadline, no timeout.
    pub const DEFAULT: Policy = Policy {
        max_attempts: 3,
        backoff: Backoff::ExpJitter,
        initial: Duration::from_millis(500),
        max_delay: Duration::from_secs(60),
        deadline: None,
        timeout: None,
    };

    /// [`Policy::DEFAULT`].
    pub const fn new() -> Policy {
        Policy::DEFAULT
    }

    /// Sets [`max_attempts`](Policy::max_attempts).
    pub const fn max_attempts(mut self, attempts: u32) -> Policy {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`backoff`](Policy::backoff).
    pub const fn backoff(mut self, backoff: Backoff) -> Policy {
        self.backoff = backoff;
        self
    }

    /// Sets [`initial`](Policy::initial).
    pub const fn initial(mut self, initial: Duration) -> Policy {
        self.initial = initial;
        self
    }

    /// Sets [`max_delay`](Policy::max_delay).
    pub const fn max_delay(mut self, max_delay: Duration) -> Policy {
        self.max_delay = max_delay;
        self
    }

    /// Sets [`deadline`](Policy::deadline).
    pub const fn deadline(mut self, deadline: Duration) -> Policy {
        self.deadline = Some(deadline);
        self
    }

    /// Sets [`timeout`](Policy::timeout).
    pub const fn timeout(mut self, timeout: Duration) -> Policy {
        self.timeout = Some(timeout);
        self
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (name, backoff) in Backoff::NAMES {
            assert_eq!(Backoff::from_name(name), Some(backoff));
            assert_eq!(backoff.name(), name);
        }
    }
}
