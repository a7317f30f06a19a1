//! A test switch: while its guard lives, every retry on this thread sleeps zero
//! and, if asked, makes fewer attempts — so a test of a failing call runs at
//! once, blocking or async, without changing the function under test.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

thread_local! {
    /// The switch in force: the newest guard's, kept here for the loops' one read.
    static SWITCH: Cell<Option<Switch>> = const { Cell::new(None) };
    /// Every live guard on this thread, oldest first, by number.
    static GUARDS: RefCell<Vec<(u64, Switch)>> = const { RefCell::new(Vec::new()) };
    static NEXT: Cell<u64> = const { Cell::new(0) };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Switch {
    pub(crate) max_attempts: Option<u32>,
}

/// Turns every retry delay on this thread to zero until dropped (stamina's
/// `set_testing`, scoped): the loops still count attempts, read hints and stop
/// for the same reasons, they just do not sleep. A guard cannot leave its
/// thread (`!Send`), so one test's switch never reaches another test's
/// thread. Guards nest, and drop in any order: the newest live guard's
/// settings are in force, and the switch is off once every guard is gone.
///
/// It covers blocking calls and async calls polled on this thread —
/// `#[tokio::test]`'s default current-thread runtime; tasks of a multi-thread
/// runtime run on other threads and keep their delays. A rate limiter's waits
/// are not retry delays and still apply.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::testing;
/// use ai_retry::runtime::{Policy, Retry};
/// use std::time::{Duration, Instant};
///
/// let _no_delays = testing::no_delays().max_attempts(3);
/// let started = Instant::now();
/// let mut calls = 0;
/// let result: Result<(), String> = Retry::new(Policy::new().max_attempts(5).initial(Duration::from_secs(10)))
///     .run(|| {
///         calls += 1;
///         Err("down".into())
///     });
/// assert!(result.is_err());
/// assert_eq!(calls, 3);
/// assert!(started.elapsed() < Duration::from_secs(1));
/// ```
#[must_use = "the switch is on only while the guard lives"]
#[derive(Debug)]
pub struct NoDelays {
    id: u64,
    _this_thread: PhantomData<*const ()>,
}

/// Every retry delay on this thread zero while the returned guard lives.
pub fn no_delays() -> NoDelays {
    let id = NEXT.with(|next| {
        let id = next.get();
        next.set(id + 1);
        id
    });
    update(|guards| guards.push((id, Switch { max_attempts: None })));
    NoDelays {
        id,
        _this_thread: PhantomData,
    }
}

/// Changes the live guards, then puts the newest one's switch in force.
fn update(change: impl FnOnce(&mut Vec<(u64, Switch)>)) {
    let newest = GUARDS.with(|guards| {
        let mut guards = guards.borrow_mut();
        change(&mut guards);
        guards.last().map(|&(_, switch)| switch)
    });
    SWITCH.with(|switch| switch.set(newest));
}

impl NoDelays {
    /// Also makes at most `attempts` attempts per call (never more than the
    /// function's own `max`).
    pub fn max_attempts(self, attempts: u32) -> NoDelays {
        update(|guards| {
            if let Some(entry) = guards.iter_mut().find(|(id, _)| *id == self.id) {
                entry.1.max_attempts = Some(attempts.max(1));
            }
        });
        self
    }
}

impl Drop for NoDelays {
    fn drop(&mut self) {
        update(|guards| guards.retain(|(id, _)| *id != self.id));
    }
}

/// The switch on this thread, if a guard is alive. Read on the failure path only.
#[inline]
pub(crate) fn switch() -> Option<Switch> {
    SWITCH.with(Cell::get)
}
