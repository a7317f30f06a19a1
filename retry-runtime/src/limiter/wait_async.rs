//! Waiting for a turn in an async function: `tokio::time`, so paused-clock tests
//! run without real waiting, and dropping the future leaves the queue.

use std::time::{Duration, Instant};

use super::state::{Amounts, Ticket};
use super::{Check, Cost, RateLimiter, Reserve, Turn, Waiter};
use crate::Throttled;

impl RateLimiter {
    /// Waits for a turn, at most `max_wait`; `Err` at once, with no wait, when
    /// the turn would come later than that.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::{ErrorClass, RateLimiter};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let limiter = RateLimiter::new();
    /// let turn = limiter.turn(Duration::from_secs(5)).await.unwrap();
    /// // The server refused and asked for 10 s: every caller waits it out.
    /// limiter.failed(turn, ErrorClass::RateLimit, Some(Duration::from_secs(10)));
    /// let refused = limiter.turn(Duration::from_secs(5)).await.unwrap_err();
    /// assert!(refused.wait() > Duration::from_secs(9));
    /// # }
    /// ```
    pub async fn turn(&self, max_wait: Duration) -> Result<Turn, Throttled> {
        self.turn_costing(max_wait, Cost::NONE).await
    }

    /// [`turn`](RateLimiter::turn) for a call that will spend `cost`: it
    /// comes when every limit can pay it, in arrival order.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::{Cost, Limits, RateLimiter};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // 6,000 tokens a minute: 95 a second, a second's worth to start from.
    /// let limiter = RateLimiter::with_limits(Limits::NONE.tokens(6_000));
    /// let started = tokio::time::Instant::now();
    /// limiter.turn_costing(Duration::from_secs(60), Cost::tokens(95)).await.unwrap();
    /// limiter.turn_costing(Duration::from_secs(60), Cost::tokens(950)).await.unwrap();
    /// // The second call waited for its 950 tokens to refill.
    /// assert_eq!(started.elapsed().as_secs(), 10);
    /// # }
    /// ```
    pub async fn turn_costing(&self, max_wait: Duration, cost: Cost) -> Result<Turn, Throttled> {
        if let Some(turn) = self.try_turn_now() {
            return Ok(turn);
        }
        // Boxed, and only when shared: a limiter of this process alone keeps
        // the store's machinery out of its turn's future.
        #[cfg(feature = "redis")]
        let max_wait = match self.shared.get() {
            Some(shared) => match Box::pin(self.shared_turn(shared, max_wait, cost)).await {
                Ok(turn) => return turn,
                Err(super::shared::Fallback {
                    left,
                    ticket: Some(ticket),
                }) => {
                    // Its place in the fleet's queue, now in this process's.
                    let now = super::now();
                    let latest = super::latest(now, left);
                    return Box::pin(self.wait_turn(ticket, cost.amounts(), now, latest)).await;
                }
                Err(fallback) => fallback.left,
            },
            None => max_wait,
        };
        self.turn_slow(max_wait, cost).await
    }

    async fn turn_slow(&self, max_wait: Duration, cost: Cost) -> Result<Turn, Throttled> {
        let cost = cost.amounts();
        let (ticket, at, latest) = match self.reserve(max_wait, &cost) {
            Reserve::Free => return Ok(Turn::default()),
            Reserve::Go(turn) => return Ok(turn),
            Reserve::TooLate(wait) => return Err(Throttled::new(wait)),
            Reserve::Ticket(ticket, at, latest) => (ticket, at, latest),
        };
        self.wait_turn(ticket, cost, at, latest).await
    }

    /// Waits in this process's schedule for `ticket`'s turn, looking first
    /// at `at`, at most until `latest`.
    async fn wait_turn(
        &self,
        ticket: Ticket,
        cost: Amounts,
        mut at: Instant,
        latest: Instant,
    ) -> Result<Turn, Throttled> {
        let waiter = Waiter::new(self, ticket, cost);
        // Armed before each look, so that a schedule moved sooner between the
        // look and the sleep still wakes this caller.
        let mut sooner = Box::pin(self.sooner.notified());
        loop {
            // Boxed: a waiting call's future holds a pointer, not tokio's `Sleep`.
            let _ = Box::pin(tokio::time::timeout_at(at.into(), sooner.as_mut())).await;
            sooner.set(self.sooner.notified());
            match self.recheck(&ticket, &cost, latest) {
                Check::Go => return Ok(waiter.served()),
                Check::WaitUntil(next) => at = next,
                Check::TooLate(wait) => return Err(Throttled::new(wait)),
            }
        }
    }
}
