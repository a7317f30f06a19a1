//! What the benches' peer policies share: the transient test by class, and an
//! error that keeps its server hint to itself — `#[retry]` honours a hint
//! whenever the error type can report one, so the "no hints" policies (what the
//! peers do) wrap the client's error in this, which has no `Classify`.

use ai_retry::Classify;
use ai_retry_examples::ApiError;

#[derive(Debug)]
pub struct Hintless(pub ApiError);

impl From<ApiError> for Hintless {
    fn from(error: ApiError) -> Hintless {
        Hintless(error)
    }
}

/// Retry what the client calls transient, by its class alone: the `when` of
/// the peers' policies in every bench that compares them.
pub fn is_transient(error: &ApiError) -> bool {
    error.class().is_transient()
}

/// [`is_transient`] for the hint-hiding wrapper.
pub fn transient(error: &Hintless) -> bool {
    is_transient(&error.0)
}
