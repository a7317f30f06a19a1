//! Functions under `#[retry]` allocate nothing on the success path: a counting
//! global allocator watches them, blocking and async.

use ai_retry::retry;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[retry(max = 5, backoff = "decorrelated_jitter", on = RateLimit | Timeout)]
fn blocking(n: u64) -> io::Result<u64> {
    Ok(n * 2)
}

#[retry(max = 5, deadline = "30s")]
async fn asynchronous(n: u64) -> io::Result<u64> {
    Ok(n + 1)
}

#[test]
fn the_success_path_allocates_nothing() {
    let n = allocations_in(|| {
        for i in 0..1000 {
            assert_eq!(blocking(i).unwrap(), i * 2);
            // Polled by hand with a no-op waker: no runtime that could allocate.
            let mut future = pin!(asynchronous(i));
            match future
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
            {
                Poll::Ready(result) => assert_eq!(result.unwrap(), i + 1),
                Poll::Pending => panic!("the success path must not wait"),
            }
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn the_counter_sees_allocations() {
    assert_eq!(allocations_in(|| drop(vec![0u8; 16])), 1);
}
