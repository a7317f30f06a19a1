//! The delay before each retry, as a pure function of the policy, the attempt,
//! the previous delay and a random number — testable without a clock.

use std::time::Duration;

use crate::{Backoff, Policy};

/// The sleep after the `attempt`-th failure (1-based), with `b = initial`,
/// `cap = max_delay` and `r` a uniform random number in `[0, 1)`:
///
/// | strategy | delay |
/// |---|---|
/// | `None` | `0` |
/// | `Constant` | `b` |
/// | `Linear` | `min(cap, b·n)` |
/// | `Exp` | `min(cap, b·2^(n-1))` |
/// | `ExpJitter` | `r·exp` |
/// | `EqualJitter` | `exp/2 + r·exp/2` |
/// | `DecorrelatedJitter` | `min(cap, U[b, 3·prev])`, `prev` starting at `b` |
///
/// Every result is at most `cap`, whatever the inputs: arithmetic saturates, an
/// `r` outside `[0, 1)` (or NaN) is clamped into it, and attempt `0` counts as `1`.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::runtime::{backoff, Backoff, Policy};
/// use std::time::Duration;
///
/// let policy = Policy::new().backoff(Backoff::Exp).initial(Duration::from_millis(100));
/// let delay = |n| backoff::delay(&policy, n, Duration::ZERO, 0.0);
/// assert_eq!(delay(1), Duration::from_millis(100));
/// assert_eq!(delay(4), Duration::from_millis(800));
/// assert_eq!(delay(u32::MAX), policy.max_delay);
/// ```
pub fn delay(policy: &Policy, attempt: u32, previous: Duration, r: f64) -> Duration {
    Duration::from_nanos(delay_ns(policy, attempt, nanos(previous), fraction(r)))
}

/// [`delay`] in whole nanoseconds (at most `u64::MAX`, 584 years), with the
/// random number as a fraction of 2^64: integer arithmetic only, the loop's
/// own form — converting `Duration`s through `f64` seconds was most of the
/// failure path's time.
#[inline]
pub(crate) fn delay_ns(policy: &Policy, attempt: u32, previous: u64, r: u64) -> u64 {
    let base = nanos(policy.initial);
    let cap = nanos(policy.max_delay);
    let n = attempt.max(1);
    let delay = match policy.backoff {
        Backoff::None => 0,
        Backoff::Constant => base,
        Backoff::Linear => base.saturating_mul(u64::from(n)),
        Backoff::Exp => exponential(base, n, cap),
        Backoff::ExpJitter => scale_ns(exponential(base, n, cap), r),
        Backoff::EqualJitter => {
            let half = exponential(base, n, cap) / 2;
            half + scale_ns(half, r)
        }
        Backoff::DecorrelatedJitter => {
            let high = previous.saturating_mul(3).max(base);
            base + scale_ns(high - base, r)
        }
    };
    delay.min(cap)
}

/// `d` in nanoseconds, saturating at `u64::MAX`.
#[inline]
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `min(cap, base · 2^(n-1))` without overflow for any `n`.
#[inline]
fn exponential(base: u64, n: u32, cap: u64) -> u64 {
    match 1u64.checked_shl(n - 1) {
        Some(factor) => base.saturating_mul(factor).min(cap),
        // 2^(n-1) does not fit a u64: the product exceeds any cap unless base is 0.
        None if base == 0 => 0,
        None => cap,
    }
}

/// `n · r / 2^64`, below `n` for every `r`.
#[inline]
pub(crate) fn scale_ns(n: u64, r: u64) -> u64 {
    ((u128::from(n) * u128::from(r)) >> 64) as u64
}

/// `r`, clamped into `[0, 1)`, as a fraction of 2^64.
fn fraction(r: f64) -> u64 {
    // Below 2^64 after the clamp; `as` would saturate anyway.
    (unit(r) * 18_446_744_073_709_551_616.0) as u64
}

/// Clamps `r` into `[0, 1)`; NaN becomes 0.
fn unit(r: f64) -> f64 {
    if r.is_nan() {
        0.0
    } else {
        r.clamp(0.0, 1.0 - f64::EPSILON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff) -> Policy {
        Policy::new()
            .backoff(backoff)
            .initial(Duration::from_millis(100))
            .max_delay(Duration::from_secs(10))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn formulas_at_known_points() {
        let at = |b, n, prev, r| delay(&policy(b), n, prev, r);
        assert_eq!(at(Backoff::None, 5, ms(100), 0.5), Duration::ZERO);
        assert_eq!(at(Backoff::Constant, 9, ms(100), 0.5), ms(100));
        assert_eq!(at(Backoff::Linear, 3, ms(100), 0.5), ms(300));
        assert_eq!(at(Backoff::Linear, 1000, ms(100), 0.5), ms(10_000));
        assert_eq!(at(Backoff::Exp, 1, ms(100), 0.5), ms(100));
        assert_eq!(at(Backoff::Exp, 3, ms(100), 0.5), ms(400));
        assert_eq!(at(Backoff::Exp, 40, ms(100), 0.5), ms(10_000));
        assert_eq!(at(Backoff::ExpJitter, 3, ms(100), 0.5), ms(200));
        assert_eq!(at(Backoff::ExpJitter, 3, ms(100), 0.0), Duration::ZERO);
        assert_eq!(at(Backoff::EqualJitter, 3, ms(100), 0.0), ms(200));
        assert_eq!(at(Backoff::EqualJitter, 3, ms(100), 0.5), ms(300));
        assert_eq!(at(Backoff::DecorrelatedJitter, 1, ms(100), 0.0), ms(100));
        assert_eq!(at(Backoff::DecorrelatedJitter, 2, ms(1000), 0.5), ms(1550));
        assert_eq!(
            at(Backoff::DecorrelatedJitter, 2, ms(9000), 0.9),
            ms(10_000)
        );
    }

    #[test]
    fn extreme_inputs_stay_capped() {
        for (_, b) in Backoff::NAMES {
            let p = Policy::new()
                .backoff(b)
                .initial(Duration::MAX)
                .max_delay(Duration::MAX);
            for r in [f64::NAN, -1.0, 0.0, 0.999, 1.0, 2.0, f64::INFINITY] {
                for n in [0, 1, 2, 63, 64, 65, u32::MAX] {
                    assert!(delay(&p, n, Duration::MAX, r) <= Duration::MAX);
                    let capped = Policy {
                        max_delay: ms(5),
                        ..p
                    };
                    assert!(delay(&capped, n, Duration::MAX, r) <= ms(5));
                }
            }
        }
    }
}
