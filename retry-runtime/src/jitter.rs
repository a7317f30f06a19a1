//! The random numbers behind jitter: rand's `SmallRng` (Xoshiro256++), one per
//! thread, seeded once from rand's `ThreadRng`. Jitter only spreads callers
//! apart, so it needs no cryptographic strength; `ThreadRng` (ChaCha12 behind
//! a reference-counted handle) cost the failure path several nanoseconds a
//! draw, the generator here about one.

use std::cell::RefCell;

use rand::RngExt;
use rand::rngs::SmallRng;

thread_local! {
    static RNG: RefCell<SmallRng> = RefCell::new(rand::make_rng());
}

/// A uniform number in `[0, 1)`.
#[inline]
pub(crate) fn unit() -> f64 {
    RNG.with_borrow_mut(|rng| rng.random())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_in_the_unit_interval_and_spread_over_it() {
        let draws: Vec<f64> = (0..10_000).map(|_| unit()).collect();
        assert!(draws.iter().all(|r| (0.0..1.0).contains(r)));
        // Ten equal bins each get about a tenth (1,000 ± 20% is > 6 sigma).
        for bin in 0..10 {
            let low = f64::from(bin) / 10.0;
            let count = draws.iter().filter(|r| (low..low + 0.1).contains(*r)).count();
            assert!((800..1200).contains(&count), "bin {bin}: {count}");
        }
    }

    #[test]
    fn every_thread_draws_its_own_sequence() {
        let here: Vec<f64> = (0..4).map(|_| unit()).collect();
        let there: Vec<f64> = std::thread::spawn(|| (0..4).map(|_| unit()).collect())
            .join()
            .expect("the thread draws");
        assert_ne!(here, there);
    }
}
