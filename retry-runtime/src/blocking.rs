//! The blocking loop: `std::thread::sleep` between attempts.

use crate::{Clock, Retry, Step};

impl<E> Retry<E> {
    /// Calls `attempt` until it succeeds, fails with an error not to retry, or the
    /// policy says stop; then returns its last result, the error unchanged. Sleeps
    /// the thread between attempts.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::runtime::{Policy, Retry};
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
        let mut attempts = self.begin(Clock::Std);
        loop {
            match self.step(&mut attempts, attempt(), None) {
                Step::Return(result) => return result,
                Step::Sleep(delay) => std::thread::sleep(delay),
            }
        }
    }
}
