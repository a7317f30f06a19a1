//! Waiting for a turn in a blocking function: the thread sleeps.

use std::time::Duration;

use super::{Check, Cost, RateLimiter, Reserve, Turn, Waiter};
use crate::Throttled;

impl RateLimiter {
    /// [`turn`](RateLimiter::turn) for blocking code: sleeps the thread until the
    /// turn, at most `max_wait`.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::RateLimiter;
    /// use std::time::Duration;
    ///
    /// let limiter = RateLimiter::new();
    /// let turn = limiter.turn_blocking(Duration::from_secs(1)).unwrap();
    /// limiter.succeeded(turn);
    /// ```
    pub fn turn_blocking(&self, max_wait: Duration) -> Result<Turn, Throttled> {
        self.turn_blocking_costing(max_wait, Cost::NONE)
    }

    /// [`turn_blocking`](RateLimiter::turn_blocking) for a call that will
    /// spend `cost` (see [`turn_costing`](RateLimiter::turn_costing)).
    pub fn turn_blocking_costing(&self, max_wait: Duration, cost: Cost) -> Result<Turn, Throttled> {
        if let Some(turn) = self.try_turn_now() {
            return Ok(turn);
        }
        let cost = cost.amounts();
        let (ticket, mut at, latest) = match self.reserve(max_wait, &cost) {
            Reserve::Free => return Ok(Turn::default()),
            Reserve::Go(turn) => return Ok(turn),
            Reserve::TooLate(wait) => return Err(Throttled::new(wait)),
            Reserve::Ticket(ticket, at, latest) => (ticket, at, latest),
        };
        let waiter = Waiter::new(self, ticket, cost);
        // The thread's own clock bounds the wait too: should the limiter's clock
        // stand still (a paused tokio clock around a blocking call), this still ends.
        let started = std::time::Instant::now();
        loop {
            std::thread::sleep(at.saturating_duration_since(super::now()));
            match self.recheck(&ticket, &cost, latest) {
                Check::Go => return Ok(waiter.served()),
                Check::WaitUntil(next) if started.elapsed() < max_wait => at = next,
                Check::WaitUntil(next) => {
                    return Err(Throttled::new(next.saturating_duration_since(super::now())));
                }
                Check::TooLate(wait) => return Err(Throttled::new(wait)),
            }
        }
    }
}
