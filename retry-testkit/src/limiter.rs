//! Rate-limit mode: a token bucket per API key, kept as GCRA (the generic cell
//! rate algorithm).
//!
//! By default it answers as real servers do: every refused caller is told when
//! the bucket next has a token — the same answer to all of them, nothing
//! reserved — so callers told the same time race for the same token. Every
//! response says the limit, what remains and when it resets.
//!
//! With [`RateLimit::reserving`] it is friendlier than any real server: a refused
//! request is told the time of the next free slot and that slot is reserved for
//! it, so a caller that waits as told gets in; one that comes back before its
//! slot is refused again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::api::TokenCost;

/// A rate limit: `per_second` requests per second per key, bursts up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// The sustained rate.
    pub per_second: f64,
    /// The bucket's size.
    pub burst: u32,
    /// Reserve the slot a refused caller is told (friendlier than real servers).
    pub reserve: bool,
    /// Send `x-ratelimit-limit-requests` (per minute) on every response.
    pub limit_header: bool,
}

impl RateLimit {
    /// The realistic limit: a shared bucket, nothing reserved, the limit header sent.
    pub fn new(per_second: f64, burst: u32) -> RateLimit {
        RateLimit {
            per_second,
            burst,
            reserve: false,
            limit_header: true,
        }
    }

    /// Reserves the slot each refused caller is told, as no real server does.
    pub fn reserving(mut self) -> RateLimit {
        self.reserve = true;
        self
    }

    /// Leaves `x-ratelimit-limit-requests` out: a client must learn the rate.
    pub fn without_limit_header(mut self) -> RateLimit {
        self.limit_header = false;
        self
    }

    /// GCRA's emission interval and burst tolerance.
    fn gcra(&self) -> (Duration, Duration) {
        let interval = Duration::from_secs_f64(1.0 / self.per_second.max(1e-9));
        (interval, interval.saturating_mul(self.burst.max(1) - 1))
    }

    /// The limit as OpenAI states it: requests per minute.
    pub fn per_minute(&self) -> u64 {
        (self.per_second * 60.0).round() as u64
    }
}

/// Token limits per API key, each a bucket that refills continuously at its
/// limit a minute and holds `window` of it: 1 s for a limit enforced per
/// second, 60 s for a minute's bucket. Every response says each limit, what it
/// has left and when it is full again, as OpenAI (`x-ratelimit-*-tokens`) or
/// Anthropic (`anthropic-ratelimit-{input,output}-tokens-*`, `remaining`
/// rounded down to thousands) says it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenLimit {
    /// Tokens a minute, input and output together (OpenAI's TPM); 0: none.
    pub tokens_per_minute: u64,
    /// Input tokens a minute (Anthropic's ITPM); 0: none.
    pub input_per_minute: u64,
    /// Output tokens a minute (Anthropic's OTPM); 0: none.
    pub output_per_minute: u64,
    /// How much of a minute a bucket holds.
    pub window: Duration,
}

impl TokenLimit {
    /// OpenAI's tokens per minute, enforced per second.
    pub fn tokens(per_minute: u64) -> TokenLimit {
        TokenLimit {
            tokens_per_minute: per_minute,
            input_per_minute: 0,
            output_per_minute: 0,
            window: Duration::from_secs(1),
        }
    }

    /// Anthropic's input and output tokens per minute, enforced per second.
    pub fn input_output(input_per_minute: u64, output_per_minute: u64) -> TokenLimit {
        TokenLimit {
            tokens_per_minute: 0,
            input_per_minute,
            output_per_minute,
            window: Duration::from_secs(1),
        }
    }

    /// Buckets that hold `window` of a minute (60 s: a minute's bucket).
    pub fn window(mut self, window: Duration) -> TokenLimit {
        self.window = window.clamp(Duration::from_millis(1), Duration::from_secs(60));
        self
    }

    /// Each limit's name, its limit, and what a request spends of it.
    fn each(&self, cost: TokenCost) -> [(&'static str, u64, u64); 3] {
        [
            ("tokens", self.tokens_per_minute, cost.total),
            ("input tokens", self.input_per_minute, cost.input),
            ("output tokens", self.output_per_minute, cost.output),
        ]
    }
}

/// What a response says of one token limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TokenQuota {
    /// `tokens`, `input tokens`, `output tokens`.
    pub name: &'static str,
    pub limit: u64,
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset: Duration,
}

/// A refusal for tokens: which limit, how much was used and asked, the wait
/// until the request fits, and what every limit says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TokenRefusal {
    pub name: &'static str,
    pub limit: u64,
    pub used: u64,
    pub requested: u64,
    pub wait: Duration,
    /// A request larger than the bucket can ever hold.
    pub too_large: bool,
}

/// One key's token buckets: level and when it was last brought up to date.
#[derive(Clone, Copy, Debug)]
struct TokenBuckets {
    levels: [f64; 3],
    at: Instant,
}

/// What a response says of the bucket: requests left, and when it has the next
/// one (when none is left) or is full again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Quota {
    pub remaining: u64,
    pub reset: Duration,
}

/// The verdict on one request.
#[derive(Debug, PartialEq)]
pub(crate) enum Admission {
    /// Admitted, with what is left (in the realistic mode).
    Allowed(Option<Quota>),
    /// Refused: come back after this long. `early` when the caller had been told
    /// to wait and came back sooner.
    Refused { wait: Duration, early: bool },
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
    /// Per API key: the token buckets.
    tokens: HashMap<String, TokenBuckets>,
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
            return Admission::Allowed(None);
        }
        if !limit.reserve {
            return self.admit_shared(limit, key, caller, now);
        }
        let (interval, tolerance) = limit.gcra();
        let next_free = self.next_free.entry(key.to_string()).or_insert(now);
        let (tat, earliest) = theoretical(*next_free, tolerance, now);
        *next_free = tat + interval;
        if earliest <= now {
            return Admission::Allowed(None);
        }
        let wait = whole_ms(earliest - now);
        if self.reserved.len() >= FORGET_AFTER_ENTRIES {
            // Slots long past belong to callers that gave up.
            self.reserved.retain(|_, at| *at + FORGET_AFTER > now);
        }
        self.reserved.insert(caller.to_string(), now + wait);
        Admission::Refused { wait, early: false }
    }

    /// The realistic bucket: a refusal takes nothing and tells the time of the
    /// next token, the same for every caller refused before then.
    fn admit_shared(
        &mut self,
        limit: RateLimit,
        key: &str,
        caller: &str,
        now: Instant,
    ) -> Admission {
        let (interval, tolerance) = limit.gcra();
        let next_free = self.next_free.entry(key.to_string()).or_insert(now);
        let (tat, earliest) = theoretical(*next_free, tolerance, now);
        if earliest > now {
            let wait = whole_ms(earliest - now);
            let early = self.is_early(caller, now);
            self.announce(caller, now + wait);
            return Admission::Refused { wait, early };
        }
        let tat = tat + interval;
        *next_free = tat;
        // Requests the bucket still admits now: k with tat + (k-1)·interval − tolerance ≤ now.
        let slack = (now + tolerance + interval).saturating_duration_since(tat);
        let remaining = (slack.as_nanos() / interval.as_nanos().max(1)) as u64;
        let reset = match remaining {
            0 => whole_ms(
                tat.checked_sub(tolerance)
                    .unwrap_or(now)
                    .saturating_duration_since(now),
            ),
            _ => whole_ms(tat.saturating_duration_since(now)),
        };
        Admission::Allowed(Some(Quota { remaining, reset }))
    }

    /// Whether `key`'s token buckets can pay `cost` now; when they can, what
    /// each would have left after it (nothing is spent until
    /// [`spend_tokens`](Limiter::spend_tokens)).
    pub(crate) fn check_tokens(
        &mut self,
        limit: TokenLimit,
        key: &str,
        cost: TokenCost,
        now: Instant,
    ) -> Result<Vec<TokenQuota>, TokenRefusal> {
        let levels = self.token_levels(limit, key, now);
        let mut quotas = Vec::new();
        let mut refusal: Option<TokenRefusal> = None;
        for (i, (name, per_minute, spend)) in limit.each(cost).into_iter().enumerate() {
            if per_minute == 0 {
                continue;
            }
            let rate = per_minute as f64 / 60.0;
            let capacity = rate * limit.window.as_secs_f64();
            let level = levels[i];
            if spend as f64 > level {
                let wait = Duration::from_secs_f64((spend as f64 - level) / rate);
                let worse = refusal.as_ref().is_none_or(|r| wait > r.wait);
                if worse {
                    refusal = Some(TokenRefusal {
                        name,
                        limit: per_minute,
                        used: (capacity - level).max(0.0) as u64,
                        requested: spend,
                        wait: whole_ms(wait),
                        too_large: spend as f64 > capacity,
                    });
                }
            }
            let left = (level - spend as f64).max(0.0);
            quotas.push(TokenQuota {
                name,
                limit: per_minute,
                remaining: left as u64,
                reset: whole_ms(Duration::from_secs_f64((capacity - left) / rate)),
            });
        }
        match refusal {
            Some(refusal) => Err(refusal),
            None => Ok(quotas),
        }
    }

    /// Spends `cost` from `key`'s token buckets (checked first).
    pub(crate) fn spend_tokens(
        &mut self,
        limit: TokenLimit,
        key: &str,
        cost: TokenCost,
        now: Instant,
    ) {
        let levels = self.token_levels(limit, key, now);
        let spent = limit.each(cost).map(|(_, _, spend)| spend as f64);
        if let Some(buckets) = self.tokens.get_mut(key) {
            for ((level, now), spent) in buckets.levels.iter_mut().zip(levels).zip(spent) {
                *level = (now - spent).max(0.0);
            }
            buckets.at = now;
        }
    }

    /// What `key`'s token buckets hold now: full when first seen.
    fn token_levels(&mut self, limit: TokenLimit, key: &str, now: Instant) -> [f64; 3] {
        let rates = limit
            .each(TokenCost::default())
            .map(|(_, per_minute, _)| per_minute as f64 / 60.0);
        let window = limit.window.as_secs_f64();
        let buckets = self.tokens.entry(key.to_string()).or_insert(TokenBuckets {
            levels: rates.map(|rate| rate * window),
            at: now,
        });
        let elapsed = now.saturating_duration_since(buckets.at).as_secs_f64();
        for (level, rate) in buckets.levels.iter_mut().zip(rates) {
            *level = (*level + elapsed * rate).min(rate * window);
        }
        buckets.at = now;
        buckets.levels
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

/// The theoretical arrival time of a request at `now` given the key's
/// `next_free`, and the earliest it may be admitted.
fn theoretical(next_free: Instant, tolerance: Duration, now: Instant) -> (Instant, Instant) {
    let tat = next_free.max(now);
    (tat, tat.checked_sub(tolerance).unwrap_or(now))
}

/// Whole milliseconds, rounded up: a hint the client sees is never early.
fn whole_ms(wait: Duration) -> Duration {
    Duration::from_millis(wait.as_nanos().div_ceil(1_000_000) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_with_an_honest_reserved_slot() {
        let limit = RateLimit::new(10.0, 2).reserving();
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(limiter.admit(limit, "k", "a", t0), Admission::Allowed(None));
        assert_eq!(limiter.admit(limit, "k", "b", t0), Admission::Allowed(None));
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
            Admission::Allowed(None)
        );
        assert_eq!(
            limiter.admit(limit, "k", "d", t0 + ms(250)),
            Admission::Allowed(None)
        );
        // Another key has its own bucket.
        assert_eq!(
            limiter.admit(limit, "other", "e", t0),
            Admission::Allowed(None)
        );
    }

    #[test]
    fn callers_who_wait_as_told_get_in_at_the_rate() {
        let limit = RateLimit::new(50.0, 1).reserving();
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        // 100 callers at once; each refused one returns exactly when told.
        let mut pending: Vec<(Instant, usize)> = (0..100).map(|i| (t0, i)).collect();
        let mut admitted = Vec::new();
        while let Some((at, caller)) = pending.pop() {
            match limiter.admit(limit, "k", &format!("c{caller}"), at) {
                Admission::Allowed(_) => admitted.push(at),
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

    #[test]
    fn the_shared_bucket_tells_every_refused_caller_the_same_time() {
        let limit = RateLimit::new(10.0, 2);
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let quota = |remaining, reset| Admission::Allowed(Some(Quota { remaining, reset }));
        assert_eq!(limiter.admit(limit, "k", "a", t0), quota(1, ms(100)));
        assert_eq!(limiter.admit(limit, "k", "b", t0), quota(0, ms(100)));
        for caller in ["c", "d", "e"] {
            assert_eq!(
                limiter.admit(limit, "k", caller, t0),
                Admission::Refused {
                    wait: ms(100),
                    early: false
                },
                "nothing is reserved: {caller} is told the same"
            );
        }
        // Told 100 ms, back at 50: early, and refused again.
        assert!(matches!(
            limiter.admit(limit, "k", "c", t0 + ms(50)),
            Admission::Refused { early: true, .. }
        ));
        // At 100 ms one token: the first back gets it, the others are refused again.
        assert!(matches!(
            limiter.admit(limit, "k", "d", t0 + ms(100)),
            Admission::Allowed(_)
        ));
        assert!(matches!(
            limiter.admit(limit, "k", "e", t0 + ms(100)),
            Admission::Refused { early: false, .. }
        ));
    }
}
