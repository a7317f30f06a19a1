//! The two clocks the limiter's state machine runs on: this process's monotonic
//! `Instant`, and microseconds on the shared store's clock.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// A point in time the state machine can add durations to and compare.
pub(crate) trait Time: Copy + Ord + Debug {
    fn checked_duration_since(self, earlier: Self) -> Option<Duration>;

    fn saturating_add(self, duration: Duration) -> Self;

    fn saturating_duration_since(self, earlier: Self) -> Duration {
        self.checked_duration_since(earlier)
            .unwrap_or(Duration::ZERO)
    }

    /// Seconds from `earlier` to `self`, negative when `self` is earlier.
    fn secs_since(self, earlier: Self) -> f64 {
        match self.checked_duration_since(earlier) {
            Some(after) => after.as_secs_f64(),
            None => -earlier.saturating_duration_since(self).as_secs_f64(),
        }
    }

    /// `self` plus `secs` seconds (none when negative or not a number), saturating.
    fn plus_secs(self, secs: f64) -> Self {
        match Duration::try_from_secs_f64(secs) {
            Ok(wait) => self.saturating_add(wait),
            Err(_) if secs > 0.0 => self.saturating_add(Duration::MAX),
            Err(_) => self,
        }
    }
}

impl Time for Instant {
    fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        Instant::checked_duration_since(&self, earlier)
    }

    /// An `Instant` cannot go to infinity: a day past `self` is as far as any wait goes.
    fn saturating_add(self, duration: Duration) -> Instant {
        Instant::checked_add(&self, duration).unwrap_or_else(|| self + Duration::from_secs(86_400))
    }
}

/// Microseconds on the shared store's clock (Redis `TIME`): every process of a
/// fleet reads the same one.
#[cfg(feature = "redis")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Micros(pub(crate) u64);

#[cfg(feature = "redis")]
impl Micros {
    fn of(duration: Duration) -> u64 {
        u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
    }
}

#[cfg(feature = "redis")]
impl Time for Micros {
    fn checked_duration_since(self, earlier: Micros) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_micros)
    }

    fn saturating_add(self, duration: Duration) -> Micros {
        Micros(self.0.saturating_add(Micros::of(duration)))
    }
}
