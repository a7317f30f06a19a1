//! `Classify` for other crates' error types, each behind the feature that pulls
//! that crate in.

#[cfg(any(feature = "reqwest", feature = "anyhow"))]
use crate::{Classify, ErrorClass};

/// Cut off by `tokio::time::timeout`: a `Timeout`.
#[cfg(feature = "tokio")]
impl crate::Classify for tokio::time::error::Elapsed {
    fn class(&self) -> crate::ErrorClass {
        crate::ErrorClass::Timeout
    }
}

/// A client-side timeout is `Timeout`; a failed connect is `Connection`; an
/// error made from a status (`error_for_status`) is classified by
/// [`http::classify`](crate::http::classify) on that status; a request or body
/// that broke off mid-flight is `Connection`, even when reqwest reports it as a
/// decode error (a stream cut off inside a chunk); other decode, builder and
/// redirect errors are `Permanent`.
///
/// A `reqwest::Error` carries no headers and no body: one made by
/// `error_for_status()` cannot tell a quota 429 (`insufficient_quota`, never worth
/// retrying) from a rate-limit 429, and has no `Retry-After` to honour. For API
/// calls, read the response before turning it into an error — its status,
/// headers and body through [`http::classify`](crate::http::classify) and
/// [`http::server_hint`](crate::http::server_hint) — as the README's examples do;
/// keep `reqwest::Error` for transport failures.
#[cfg(feature = "reqwest")]
impl Classify for reqwest::Error {
    fn class(&self) -> ErrorClass {
        if self.is_timeout() {
            ErrorClass::Timeout
        } else if self.is_connect() {
            ErrorClass::Connection
        } else if let Some(status) = self.status() {
            crate::http::classify(status.as_u16(), &crate::http::HeaderMap::new(), b"")
        } else if let Some(class) = transport_cause(self) {
            class
        } else if self.is_decode() || self.is_builder() || self.is_redirect() {
            ErrorClass::Permanent
        } else if self.is_request() || self.is_body() {
            ErrorClass::Connection
        } else {
            ErrorClass::Permanent
        }
    }
}

/// The class of a transport failure somewhere under `error`: an I/O error, or a
/// body or timeout error of reqwest's own, which it wraps in decode errors.
#[cfg(feature = "reqwest")]
fn transport_cause(error: &reqwest::Error) -> Option<ErrorClass> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.class()).filter(|class| class.is_transient());
        }
        if let Some(inner) = cause.downcast_ref::<reqwest::Error>() {
            if inner.is_timeout() {
                return Some(ErrorClass::Timeout);
            }
            if inner.is_body() || inner.is_request() || inner.is_connect() {
                return Some(ErrorClass::Connection);
            }
        }
        source = cause.source();
    }
    None
}

/// The class of the first error in the chain that this crate can classify
/// (`std::io::Error`, [`TimedOut`](crate::TimedOut), and with their features
/// `reqwest::Error` and tokio's `Elapsed`); `Permanent` when none is.
#[cfg(feature = "anyhow")]
impl Classify for anyhow::Error {
    fn class(&self) -> ErrorClass {
        crate::class_of_chain(self.as_ref())
    }
}

/// The class of the first error in `error`'s chain (itself, then its
/// sources) that this crate can classify: `std::io::Error`,
/// [`TimedOut`](crate::TimedOut), [`Throttled`](crate::Throttled), and with
/// their features `reqwest::Error` and tokio's `Elapsed`. `Permanent` when
/// none is: an error nobody can read is not worth sending again. For errors
/// that arrive boxed, as tower's do.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::ErrorClass;
/// use ai_retry::runtime::class_of_chain;
/// use std::io;
///
/// let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(io::Error::from(io::ErrorKind::ConnectionReset));
/// assert_eq!(class_of_chain(&*boxed), ErrorClass::Connection);
/// assert_eq!(class_of_chain(&*Box::<dyn std::error::Error + Send + Sync>::from("no idea")), ErrorClass::Permanent);
/// ```
pub fn class_of_chain(error: &(dyn std::error::Error + 'static)) -> crate::ErrorClass {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(class) = known_class(error) {
            return class;
        }
        next = error.source();
    }
    crate::ErrorClass::Permanent
}

fn known_class(error: &(dyn std::error::Error + 'static)) -> Option<crate::ErrorClass> {
    use crate::Classify as _;
    if let Some(e) = error.downcast_ref::<crate::TimedOut>() {
        return Some(e.class());
    }
    if let Some(e) = error.downcast_ref::<crate::Throttled>() {
        return Some(e.class());
    }
    if let Some(e) = error.downcast_ref::<std::io::Error>() {
        return Some(e.class());
    }
    #[cfg(feature = "reqwest")]
    if let Some(e) = error.downcast_ref::<reqwest::Error>() {
        return Some(e.class());
    }
    #[cfg(feature = "tokio")]
    if let Some(e) = error.downcast_ref::<tokio::time::error::Elapsed>() {
        return Some(e.class());
    }
    None
}

#[cfg(all(test, feature = "anyhow"))]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn anyhow_uses_the_first_known_cause() {
        let io_cause = anyhow::Error::new(io::Error::from(io::ErrorKind::ConnectionReset))
            .context("calling the API");
        assert_eq!(io_cause.class(), ErrorClass::Connection);
        let timed_out = anyhow::Error::new(crate::TimedOut).context("outer");
        assert_eq!(timed_out.class(), ErrorClass::Timeout);
        assert_eq!(
            anyhow::anyhow!("no known cause").class(),
            ErrorClass::Permanent
        );
    }
}
