//! The success path allocates nothing: a counting global allocator watches the
//! blocking and the async loop call a function that succeeds at once.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "support/poll_once.rs"]
mod poll_once;

use counting_alloc::{Counting, allocations_in};
use poll_once::poll_once;
use retry_runtime::{Policy, Retry, RetryBudget};

#[global_allocator]
static GLOBAL: Counting = Counting;

static BUDGET: RetryBudget = RetryBudget::new(0.1, 10);

#[test]
fn blocking_success_path_allocates_nothing() {
    let retry = Retry::<std::io::Error>::classified(
        Policy::new().deadline(std::time::Duration::from_secs(5)),
    )
    .budget(&BUDGET)
    .named("f");
    // Warm up lazily initialised statics (the budget's clock) outside the count.
    let _ = retry.run(|| Ok::<_, std::io::Error>(0));
    let n = allocations_in(|| {
        for i in 0..1000 {
            assert_eq!(retry.run(|| Ok::<_, std::io::Error>(i)).unwrap(), i);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn async_success_path_allocates_nothing() {
    // Polled by hand with a no-op waker: no runtime, so nothing else allocates.
    let policy = Policy::new().timeout(std::time::Duration::from_secs(5));
    let n = allocations_in(|| {
        for i in 0..1000 {
            let plain =
                Retry::<std::io::Error>::classified(policy).run_async(|| async move { Ok(i) });
            assert_eq!(poll_once(plain).unwrap(), i);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn async_success_path_with_timeout_allocates_nothing() {
    // The per-attempt timeout needs tokio's timer: build the runtime outside the count.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let policy = Policy::new()
        .timeout(std::time::Duration::from_secs(5))
        .deadline(std::time::Duration::from_secs(9));
    let retry = Retry::<std::io::Error>::classified(policy).budget(&BUDGET);
    runtime
        .block_on(retry.run_async_timeout(|| async { Ok(0) }))
        .unwrap();
    let n = allocations_in(|| {
        for i in 0..1000 {
            assert_eq!(
                runtime
                    .block_on(retry.run_async_timeout(|| async move { Ok(i) }))
                    .unwrap(),
                i
            );
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn the_counter_sees_allocations() {
    // Guards against a vacuous zero: the same loop that allocates is counted.
    let n = allocations_in(|| {
        let _ = Retry::<std::io::Error>::new(Policy::new())
            .run(|| Ok::<_, std::io::Error>(vec![1u8; 64]));
    });
    assert_eq!(n, 1);
}
