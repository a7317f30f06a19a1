//! Rate-limit mode: a token bucket per API key, kept as GCRA (the generic cell
//! rate algorithm). A refused request is told the time of the next free slot and
//! that slot is reserved for it, so the hint is honest: a caller that waits as
//! told gets in. A caller that comes back before its slot is refused again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A rate limit: `per_second` requests per second per key, bursts up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// The sustained rate.
    pub per_second: f64,
    /// The bucket's size.
    pub burst: u32,
}

/// The verdict on one request.
#[derive(Debug, PartialEq)]
pub(crate) enum Admission {
    Allowed,
    /// Refused: come back after this long. `early` when the caller had been told
    /// to wait and came back sooner.
    Refused {
        wait: Duration,
        early: bool,
    },
}

/// How long a caller's announced time is remembered once passed.
const FORGET_AFTER: Duration = Duration::from_secs(10);
/// How many remembered times trigger forgetting the stale ones.
const FORGET_AFTER_ENTRIES: usize = 4096;

#[derive(Default)]
pub(crate) struct Limiter {
    /// Per API key: the theoretical arrival time of the next request, after
    /// every admission and reservation so far.
    next_free: HashMap<String, Instant>,
    /// Per caller (idempotency key, else API key): the slot reserved for it.
    reserved: HashMap<String, Instant>,
    /// Per caller: the time a scripted fault told it to wait for.
    told: HashMap<String, Instant>,
}

impl Limiter {
    /// Decides on a request from `key` (the API key) by `caller` (one call's
    /// attempts share it).
    pub(crate) fn admit(
        &mut self,
        limit: RateLimit,
        key: &str,
        caller: &str,
        now: Instant,
    ) -> Admission {
        if let Some(&slot) = self.reserved.get(caller) {
            if now < slot {
                return Admission::Refused {
                    wait: slot - now,
                    early: true,
                };
            }
            self.reserved.remove(caller);
            return Admission::Allowed;
        }
        let interval = Duration::from_secs_f64(1.0 / limit.per_second.max(1e-9));
        let tolerance = interval.saturating_mul(limit.burst.max(1) - 1);
        let next_free = self.next_free.entry(key.to_string()).or_insert(now);
        let tat = (*next_free).max(now);
        let earliest = tat.checked_sub(tolerance).unwrap_or(now);
        *next_free = tat + interval;
        if earliest <= now {
            return Admission::Allowed;
        }
        // Whole milliseconds, rounded up: the hint the client sees is never early.
        let wait = earliest - now;
        let wait = Duration::from_millis(wait.as_nanos().div_ceil(1_000_000) as u64);
        if self.reserved.len() >= FORGET_AFTER_ENTRIES {
            // Slots long past belong to callers that gave up.
            self.reserved.retain(|_, at| *at + FORGET_AFTER > now);
        }
        self.reserved.insert(caller.to_string(), now + wait);
        Admission::Refused { wait, early: false }
    }

    /// Records a wait announced by a scripted fault, so an early return is seen.
    /// Times long past are forgotten, so a long run stays in constant memory.
    pub(crate) fn announce(&mut self, caller: &str, allowed_at: Instant) {
        if self.told.len() >= FORGET_AFTER_ENTRIES {
            let now = Instant::now();
            self.told.retain(|_, at| *at + FORGET_AFTER > now);
        }
        self.told.insert(caller.to_string(), allowed_at);
    }

    /// Whether `caller` came back before the time it was told.
    pub(crate) fn is_early(&self, caller: &str, now: Instant) -> bool {
        let before = |at: Option<&Instant>| at.is_some_and(|&at| now < at);
        before(self.told.get(caller)) || before(self.reserved.get(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_with_an_honest_reserved_slot() {
        let limit = RateLimit {
            per_second: 10.0,
            burst: 2,
        };
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(limiter.admit(limit, "k", "a", t0), Admission::Allowed);
        assert_eq!(limiter.admit(limit, "k", "b", t0), Admission::Allowed);
        assert_eq!(
            limiter.admit(limit, "k", "c", t0),
            Admission::Refused {
                wait: ms(100),
                early: false
            }
        );
        // The next caller is told the slot after c's: the herd is spread by the server.
        assert_eq!(
            limiter.admit(limit, "k", "d", t0),
            Admission::Refused {
                wait: ms(200),
                early: false
            }
        );
        // Back too soon: refused again, counted as early, slot kept.
        assert!(matches!(
            limiter.admit(limit, "k", "c", t0 + ms(99)),
            Admission::Refused { early: true, .. }
        ));
        assert!(limiter.is_early("d", t0 + ms(150)));
        assert_eq!(
            limiter.admit(limit, "k", "c", t0 + ms(100)),
            Admission::Allowed
        );
        assert_eq!(
            limiter.admit(limit, "k", "d", t0 + ms(250)),
            Admission::Allowed
        );
        // Another key has its own bucket.
        assert_eq!(limiter.admit(limit, "other", "e", t0), Admission::Allowed);
    }

    #[test]
    fn callers_who_wait_as_told_get_in_at_the_rate() {
        let limit = RateLimit {
            per_second: 50.0,
            burst: 1,
        };
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        // 100 callers at once; each refused one returns exactly when told.
        let mut pending: Vec<(Instant, usize)> = (0..100).map(|i| (t0, i)).collect();
        let mut admitted = Vec::new();
        while let Some((at, caller)) = pending.pop() {
            match limiter.admit(limit, "k", &format!("c{caller}"), at) {
                Admission::Allowed => admitted.push(at),
                Admission::Refused { wait, early } => {
                    assert!(!early);
                    pending.push((at + wait, caller));
                    pending.sort_by_key(|&(at, _)| std::cmp::Reverse(at));
                }
            }
        }
        admitted.sort();
        assert_eq!(
            admitted.len(),
            100,
            "every caller got in at its first return"
        );
        let last = *admitted.last().unwrap() - t0;
        // 100 requests at 50/s, the first at once: the last at 99 intervals of 20 ms.
        assert!(
            last >= Duration::from_millis(1980) && last <= Duration::from_millis(1990),
            "{last:?}"
        );
    }
}
