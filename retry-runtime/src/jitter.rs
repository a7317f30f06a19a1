//! The random numbers behind jitter: rand's `SmallRng` (Xoshiro256++), one per
//! thread, seeded once from rand's `ThreadRng`. Jitter only spreads callers
//! apart, so it needs no cryptographic strength; `ThreadRng` (ChaCha12 behind
//! a reference-counted handle) cost the failure path several nanoseconds a
//! draw, the generator here about one.
//!
//! A process forked without `exec` copies its threads' generators, so parent
//! and child draw the same jitter: such a server's workers should start their
//! calls from threads made after the fork (as tokio runtimes are).

use std::cell::RefCell;

use rand::Rng;
use rand::rngs::SmallRng;

thread_local! {
    static RNG: RefCell<SmallRng> = RefCell::new(rand::make_rng());
}

/// A uniform number in `[0, 1)`, as a fraction of 2^64: what
/// `backoff::delay_ns` scales by.
#[inline]
pub(crate) fn draw() -> u64 {
    RNG.with_borrow_mut(|rng| rng.next_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_spread_over_the_whole_range() {
        // Ten equal bins each get about a tenth (1,000 ± 20% is > 6 sigma).
        let mut bins = [0u32; 10];
        for _ in 0..10_000 {
            bins[((u128::from(draw()) * 10) >> 64) as usize] += 1;
        }
        for (bin, count) in bins.iter().enumerate() {
            assert!((800..1200).contains(count), "bin {bin}: {count}");
        }
    }

    #[test]
    fn every_thread_draws_its_own_sequence() {
        let here: Vec<u64> = (0..4).map(|_| draw()).collect();
        let there: Vec<u64> = std::thread::spawn(|| (0..4).map(|_| draw()).collect())
            .join()
            .expect("the thread draws");
        assert_ne!(here, there);
    }
}
