//! A retry budget shared by every call that names it: retries are at most a
//! fraction of first calls, plus a small floor each second. The pool lives in
//! this process (here) or in a fleet's Redis (`shared.rs`).

#[cfg(feature = "redis")]
mod shared;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Tokens are counted in thousandths, so a ratio of 0.1 earns 100 per first call
/// and a retry costs 1000.
const MILLI: u64 = 1000;

/// How many first calls' earnings the budget banks at most.
const BANKED_CALLS: u64 = 1000;

/// Limits retries across many calls: retries may be at most `ratio` of first
/// calls, plus `floor_per_sec` each second — the retry budget of gRPC, Finagle and
/// Google's SRE book. When an upstream is down, the budget keeps a fleet of
/// callers from multiplying the load by `max`.
///
/// Semantics:
/// - every call that names the budget **earns** `ratio` of a retry when it starts
///   (its first attempt), whether it fails or not;
/// - every retry **costs** one whole token; when there is none, the loop stops and
///   returns the error it has;
/// - besides the earned tokens, the first `floor_per_sec` retries within each
///   second are free, so a process with little traffic can still retry; the
///   seconds are counted from the first retry decision in the process (a
///   monotonic clock), not aligned to the wall clock;
/// - tokens are counted in thousandths, so a `ratio` below 0.001 earns nothing:
///   such a budget allows only its floor;
/// - earned tokens are banked up to what 1000 first calls earn (`ratio × 1000`
///   retries), so a long quiet spell cannot fund an unbounded storm later.
///
/// It is lock-free (two atomics, compare-and-swap loops), so one `static` serves
/// every thread and task:
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::RetryBudget;
///
/// static LLM_BUDGET: RetryBudget = RetryBudget::new(0.1, 10);
///
/// for _ in 0..100 {
///     LLM_BUDGET.deposit(); // 100 first calls earn 10 retries
/// }
/// // `try_withdraw()` reads the clock; here the second is fixed, so the count is exact.
/// let granted = (0..50).filter(|_| LLM_BUDGET.try_withdraw_at(0)).count();
/// assert_eq!(granted, 10 + 10); // earned + this second's floor
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    pub(crate) earn_milli: u64,
    floor_per_sec: u32,
    /// Earned tokens, in thousandths.
    pub(crate) balance: AtomicU64,
    /// `(second << 32) | floor tokens used in that second`.
    floor: AtomicU64,
    /// The fleet's pool in Redis, once `share_redis` was called.
    #[cfg(feature = "redis")]
    pub(crate) shared: std::sync::OnceLock<std::sync::Arc<shared::SharedBudget>>,
}

impl RetryBudget {
    /// A budget allowing retries of at most `ratio` of first calls (0.1 = 10%),
    /// plus `floor_per_sec` each second. A negative or NaN ratio earns nothing.
    pub const fn new(ratio: f64, floor_per_sec: u32) -> RetryBudget {
        // `as` saturates: NaN and negative ratios become 0.
        let earn_milli = (ratio * MILLI as f64) as u64;
        RetryBudget {
            earn_milli,
            floor_per_sec,
            balance: AtomicU64::new(0),
            floor: AtomicU64::new(0),
            #[cfg(feature = "redis")]
            shared: std::sync::OnceLock::new(),
        }
    }

    /// The most the pool holds: what 1000 first calls earn, in thousandths.
    pub(crate) fn cap_milli(&self) -> u64 {
        self.earn_milli.saturating_mul(BANKED_CALLS)
    }

    /// Where the budget's pool lives: this process, or a fleet's Redis.
    pub fn store(&self) -> crate::Store {
        #[cfg(feature = "redis")]
        if let Some(shared) = self.shared.get() {
            return shared.store();
        }
        crate::Store::Local
    }

    /// Records a first call: earns `ratio` of a retry.
    pub fn deposit(&self) {
        if self.earn_milli == 0 {
            return;
        }
        #[cfg(feature = "redis")]
        if let Some(shared) = self.shared.get() {
            shared.deposited();
        }
        let cap = self.cap_milli();
        let _ = self
            .balance
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_add(self.earn_milli).min(cap))
            });
    }

    /// Takes one retry from this second's floor or else from the earned tokens;
    /// `false` when neither has one.
    pub fn try_withdraw(&self) -> bool {
        self.try_withdraw_at(seconds_since_start())
    }

    /// [`try_withdraw`](RetryBudget::try_withdraw) at a given second of a
    /// monotonic clock, for deterministic tests.
    pub fn try_withdraw_at(&self, second: u32) -> bool {
        let from_floor = self.take_floor(second);
        let taken = from_floor || self.take_earned();
        #[cfg(feature = "redis")]
        if let (true, Some(shared)) = (taken, self.shared.get()) {
            shared.withdrew(from_floor);
        }
        taken
    }

    /// The fleet's floor use this second, as Redis counts it: never less than
    /// this process has used itself.
    #[cfg(feature = "redis")]
    pub(crate) fn merge_floor_used(&self, used: u64) {
        let used = u32::try_from(used).unwrap_or(u32::MAX);
        let _ = self
            .floor
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (window, mine) = (word >> 32, word as u32);
                Some((window << 32) | u64::from(mine.max(used)))
            });
    }

    /// Whole retries currently earned (not counting the floor).
    pub fn balance(&self) -> u64 {
        self.balance.load(Ordering::Acquire) / MILLI
    }

    fn take_floor(&self, second: u32) -> bool {
        if self.floor_per_sec == 0 {
            return false;
        }
        self.floor
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (window, used) = ((word >> 32) as u32, word as u32);
                // The window only moves forward: a thread that read the clock just
                // before another moved it on counts against the newer second,
                // rather than reopening the old one with a fresh floor.
                match (second > window, used < self.floor_per_sec) {
                    (true, _) => Some((u64::from(second) << 32) | 1),
                    (false, true) => Some(word + 1),
                    (false, false) => None,
                }
            })
            .is_ok()
    }

    fn take_earned(&self) -> bool {
        self.balance
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                b.checked_sub(MILLI)
            })
            .is_ok()
    }
}

/// Whole seconds since the first budget look-up in this process.
fn seconds_since_start() -> u32 {
    static START: OnceLock<Instant> = OnceLock::new();
    let secs = START.get_or_init(Instant::now).elapsed().as_secs();
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_of_first_calls() {
        let budget = RetryBudget::new(0.1, 0);
        (0..1000).for_each(|_| budget.deposit());
        let granted = (0..1000).filter(|_| budget.try_withdraw_at(0)).count();
        assert_eq!(granted, 100);
        assert_eq!(budget.balance(), 0);
    }

    #[test]
    fn floor_refills_each_second() {
        let budget = RetryBudget::new(0.0, 3);
        let in_second = |s| (0..10).filter(|_| budget.try_withdraw_at(s)).count();
        assert_eq!(in_second(7), 3);
        assert_eq!(in_second(7), 0);
        assert_eq!(in_second(8), 3);
        // A stale second does not reopen an older window.
        assert_eq!(in_second(7), 0);
    }

    #[test]
    fn banked_tokens_are_capped() {
        let budget = RetryBudget::new(0.5, 0);
        (0..10_000).for_each(|_| budget.deposit());
        assert_eq!(budget.balance(), 500);
    }

    #[test]
    fn nonsense_ratios_earn_nothing() {
        for ratio in [f64::NAN, -1.0, 0.0] {
            let budget = RetryBudget::new(ratio, 0);
            budget.deposit();
            assert!(!budget.try_withdraw_at(0));
        }
    }
}
