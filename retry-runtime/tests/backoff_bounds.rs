//! Every strategy stays within its formula's bounds for any attempt, duration and
//! random number, and never above the cap.

use proptest::prelude::*;
use retry_runtime::{Backoff, Policy, backoff};
use std::time::Duration;

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..10_000_000_000).prop_map(Duration::from_nanos),
        (0u64..=u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        Just(Duration::ZERO),
        Just(Duration::MAX),
    ]
}

fn any_backoff() -> impl Strategy<Value = Backoff> {
    prop::sample::select(Backoff::NAMES.map(|(_, b)| b).to_vec())
}

/// `min(cap, b·2^(n-1))`, computed independently in u128 nanoseconds.
fn exp_reference(b: Duration, n: u32, cap: Duration) -> Duration {
    let b = b.as_nanos();
    let exp = if n > 100 {
        if b == 0 { 0 } else { u128::MAX }
    } else {
        b.saturating_mul(1u128 << (n - 1))
    };
    let capped = exp.min(cap.as_nanos());
    Duration::new(
        (capped / 1_000_000_000) as u64,
        (capped % 1_000_000_000) as u32,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_above_cap_never_panics(
        backoff in any_backoff(),
        initial in any_duration(),
        cap in any_duration(),
        previous in any_duration(),
        attempt in any::<u32>(),
        r in any::<f64>(),
    ) {
        let policy = Policy::new().backoff(backoff).initial(initial).max_delay(cap);
        prop_assert!(backoff::delay(&policy, attempt, previous, r) <= cap);
    }

    #[test]
    fn each_formula_holds(
        initial in (0u64..10_000_000).prop_map(Duration::from_micros),
        cap in (0u64..100_000_000).prop_map(Duration::from_micros),
        previous in (0u64..100_000_000).prop_map(Duration::from_micros),
        attempt in 1u32..200,
        r in 0.0f64..1.0,
    ) {
        let at = |b| backoff::delay(&Policy::new().backoff(b).initial(initial).max_delay(cap), attempt, previous, r);
        let exp = exp_reference(initial, attempt, cap);
        let close = |a: Duration, b: Duration| a.abs_diff(b) <= Duration::from_nanos(2);

        prop_assert_eq!(at(Backoff::None), Duration::ZERO);
        prop_assert_eq!(at(Backoff::Constant), initial.min(cap));
        prop_assert_eq!(at(Backoff::Linear), initial.saturating_mul(attempt).min(cap));
        prop_assert_eq!(at(Backoff::Exp), exp);

        let full = at(Backoff::ExpJitter);
        prop_assert!(full <= exp);
        prop_assert!(close(full, exp.mul_f64(r)), "{:?} vs r·exp {:?}", full, exp.mul_f64(r));

        let equal = at(Backoff::EqualJitter);
        prop_assert!(equal >= exp / 2 && equal <= exp);
        prop_assert!(close(equal, exp / 2 + (exp / 2).mul_f64(r)));

        let decorrelated = at(Backoff::DecorrelatedJitter);
        let high = (previous * 3).max(initial);
        prop_assert!(decorrelated <= cap);
        prop_assert!(decorrelated >= initial.min(cap));
        prop_assert!(decorrelated <= high);
        prop_assert!(close(decorrelated, (initial + (high - initial).mul_f64(r)).min(cap)));
    }

    #[test]
    fn jitter_spreads_over_its_range(attempt in 1u32..8) {
        // Across r in [0, 1), full jitter covers [0, exp): the low and high deciles both occur.
        let policy = Policy::new().backoff(Backoff::ExpJitter).initial(Duration::from_millis(100));
        let exp = exp_reference(policy.initial, attempt, policy.max_delay);
        let low = backoff::delay(&policy, attempt, Duration::ZERO, 0.05);
        let high = backoff::delay(&policy, attempt, Duration::ZERO, 0.95);
        prop_assert!(low < exp / 10);
        prop_assert!(high > exp * 9 / 10);
    }
}
