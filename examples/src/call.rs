//! One call across its attempts: the idempotency key they share and the attempt
//! counter each sends.

use std::sync::atomic::{AtomicU32, Ordering};

/// The state a call keeps across attempts. Made once per call, outside the
/// retried function, whose body runs once per attempt.
#[derive(Debug)]
pub struct Call {
    idempotency_key: String,
    attempts: AtomicU32,
    refusals: AtomicU32,
}

impl Call {
    /// A new call with a fresh idempotency key.
    pub fn new() -> Call {
        Call {
            idempotency_key: format!("ai-retry-{:032x}", rand::random::<u128>()),
            attempts: AtomicU32::new(0),
            refusals: AtomicU32::new(0),
        }
    }

    /// The key every attempt of this call sends, so the server can tell a retry
    /// from a new request.
    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }

    /// Counts an attempt; returns its number, 1-based.
    pub fn next_attempt(&self) -> u32 {
        self.attempts.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts an attempt refused with 429.
    pub fn note_refusal(&self) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Attempts refused with 429 so far.
    pub fn refusals(&self) -> u32 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }
}

impl Default for Call {
    fn default() -> Call {
        Call::new()
    }
}
