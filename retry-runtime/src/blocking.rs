//! The blocking loop: `std::thread::sleep` between attempts.

use std::time::{Duration, Instant};

use crate::Retry;

impl<E> Retry<E> {
    /// Calls `attempt` until it succeeds, fails with an error not to retry, or the
    /// policy says stop; then returns its last result, the error unchanged. Sleeps
    /// the thread between attempts.
    ///
    /// ```
    /// use retry_runtime::{Policy, Retry};
    /// use std::time::Duration;
    ///
    /// let mut calls = 0;
    /// let result: Result<(), String> = Retry::new(Policy::new().max_attempts(3).initial(Duration::ZERO))
    ///     .run(|| {
    ///         calls += 1;
    ///         Err(format!("failure {calls}"))
    ///     });
    /// assert_eq!(result.unwrap_err(), "failure 3");
    /// ```
    pub fn run<T>(self, mut attempt: impl FnMut() -> Result<T, E>) -> Result<T, E> {
        let mut attempts = self.first_attempt();
        let start = self.needs_clock().then(Instant::now);
        loop {
            let delay = match attempt() {
                Ok(value) => return Ok(value),
                Err(error) => {
                    let elapsed = start.map_or(Duration::ZERO, |s| s.elapsed());
                    match self.next_delay(&mut attempts, &error, None, elapsed) {
                        Some(delay) => delay,
                        None => return Err(error),
                    }
                }
            };
            std::thread::sleep(delay);
        }
    }
}
