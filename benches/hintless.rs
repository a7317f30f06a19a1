//! An error that keeps its server hint to itself: `#[retry]` honours a hint
//! whenever the error type can report one, so the benches' "no hints" policies
//! (what the peers do) wrap the client's error in this, which has no `Classify`.

use ai_retry::Classify;
use ai_retry_examples::ApiError;

#[derive(Debug)]
pub struct Hintless(pub ApiError);

impl From<ApiError> for Hintless {
    fn from(error: ApiError) -> Hintless {
        Hintless(error)
    }
}

/// Retry what the client calls transient, by its class alone.
pub fn transient(error: &Hintless) -> bool {
    error.0.class().is_transient()
}
