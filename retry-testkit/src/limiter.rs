//! Rate-limit mode: a token bucket per API key that refuses with an honest
//! hint, and keeps refusing a caller who comes back before the time it was told.

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

#[derive(Default)]
pub(crate) struct Limiter {
    buckets: HashMap<String, Bucket>,
    /// When each caller (idempotency key, else API key) was told it may return.
    announced: HashMap<String, Instant>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Limiter {
    /// Decides on a request from `key` (the API key) in a chain of attempts `caller`.
    pub(crate) fn admit(
        &mut self,
        limit: RateLimit,
        key: &str,
        caller: &str,
        now: Instant,
    ) -> Admission {
        if let Some(&allowed_at) = self.announced.get(caller)
            && now < allowed_at
        {
            return Admission::Refused {
                wait: allowed_at - now,
                early: true,
            };
        }
        let bucket = self.buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: f64::from(limit.burst),
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(f64::from(limit.burst));
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            self.announced.remove(caller);
            return Admission::Allowed;
        }
        let wait = Duration::from_secs_f64(
            (1.0 - bucket.tokens) / limit.per_second.max(f64::MIN_POSITIVE),
        );
        // Whole milliseconds, rounded up: the hint the client sees is never early.
        let wait = Duration::from_millis(wait.as_nanos().div_ceil(1_000_000) as u64);
        self.announced.insert(caller.to_string(), now + wait);
        Admission::Refused { wait, early: false }
    }

    /// Records a wait announced by a scripted fault, so an early return is seen.
    pub(crate) fn announce(&mut self, caller: &str, allowed_at: Instant) {
        self.announced.insert(caller.to_string(), allowed_at);
    }

    /// Whether `caller` came back before the time it was told.
    pub(crate) fn is_early(&self, caller: &str, now: Instant) -> bool {
        self.announced.get(caller).is_some_and(|&at| now < at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_until_the_announced_time() {
        let limit = RateLimit {
            per_second: 10.0,
            burst: 2,
        };
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        assert_eq!(limiter.admit(limit, "k", "a", t0), Admission::Allowed);
        assert_eq!(limiter.admit(limit, "k", "b", t0), Admission::Allowed);
        let Admission::Refused { wait, early: false } = limiter.admit(limit, "k", "c", t0) else {
            panic!("the bucket is empty");
        };
        assert_eq!(wait, Duration::from_millis(100));
        // Back too soon: refused again, and counted as early, though a token is due.
        let soon = t0 + Duration::from_millis(99);
        assert!(matches!(
            limiter.admit(limit, "k", "c", soon),
            Admission::Refused { early: true, .. }
        ));
        assert_eq!(
            limiter.admit(limit, "k", "c", t0 + Duration::from_millis(100)),
            Admission::Allowed
        );
        // Another key has its own bucket.
        assert_eq!(limiter.admit(limit, "other", "d", t0), Admission::Allowed);
    }
}
