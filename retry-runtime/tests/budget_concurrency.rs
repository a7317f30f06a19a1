//! `RetryBudget` hammered from many threads and tasks at once: no token lost or
//! counted twice, checked by exact accounting.

use retry_runtime::RetryBudget;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

const THREADS: usize = 8;

#[test]
fn concurrent_withdrawals_grant_exactly_what_was_earned() {
    // 8 threads × 125 first calls at 0.1 = 100 retries earned (the bank's cap is
    // 0.1 × 1000 = 100), then 8 threads race to take far more than that.
    static BUDGET: RetryBudget = RetryBudget::new(0.1, 0);
    let barrier = Arc::new(Barrier::new(THREADS));
    let deposits: Vec<_> = (0..THREADS)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (0..125).for_each(|_| BUDGET.deposit());
            })
        })
        .collect();
    deposits.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(BUDGET.balance(), 100);

    let granted = Arc::new(AtomicUsize::new(0));
    let withdrawals: Vec<_> = (0..THREADS)
        .map(|_| {
            let (barrier, granted) = (barrier.clone(), granted.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mine = (0..1000).filter(|_| BUDGET.try_withdraw_at(0)).count();
                granted.fetch_add(mine, Ordering::SeqCst);
            })
        })
        .collect();
    withdrawals.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(granted.load(Ordering::SeqCst), 100);
    assert_eq!(BUDGET.balance(), 0);
}

#[test]
fn the_floor_is_shared_exactly_within_a_second() {
    static BUDGET: RetryBudget = RetryBudget::new(0.0, 37);
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                // Seconds 5 and 6 allow 37 each, whichever threads get them. A
                // thread still asking for second 5 after another moved on to 6
                // is counted against 6, so only the total is exact per call site.
                let fifth = (0..100).filter(|_| BUDGET.try_withdraw_at(5)).count();
                let sixth = (0..100).filter(|_| BUDGET.try_withdraw_at(6)).count();
                (fifth, sixth)
            })
        })
        .collect();
    let (fifth, sixth) = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    assert_eq!(fifth + sixth, 2 * 37);
    assert!(fifth >= 37, "second 5 was open to everyone first: {fifth}");
}

#[test]
fn interleaved_deposits_and_withdrawals_never_overdraw() {
    // Deposits and withdrawals race: whatever the interleaving, grants never
    // exceed earnings, and what is not granted is still in the bank.
    static BUDGET: RetryBudget = RetryBudget::new(0.25, 0);
    let granted = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let granted = granted.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    BUDGET.deposit();
                    if BUDGET.try_withdraw_at(0) {
                        granted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let earned = THREADS * 200 / 4; // 0.25 per first call, under the 250 cap
    let granted = granted.load(Ordering::SeqCst);
    assert_eq!(granted as u64 + BUDGET.balance(), earned as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_share_a_budget_across_a_runtime() {
    static BUDGET: RetryBudget = RetryBudget::new(0.5, 0);
    (0..100).for_each(|_| BUDGET.deposit()); // 50 retries
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            tokio::spawn(async {
                let mut mine = 0;
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                    mine += usize::from(BUDGET.try_withdraw_at(0));
                }
                mine
            })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += task.await.unwrap();
    }
    assert_eq!(granted, 50);
}
