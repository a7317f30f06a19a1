//! What kind of failure an error is, and which kinds a call retries.

use std::fmt;
use std::ops::BitOr;
use std::time::Duration;

use crate::{Throttled, TimedOut};

/// The kind of failure an error represents; `#[retry(on = …)]` names these.
///
/// Every class but [`Permanent`](ErrorClass::Permanent) is *transient*: worth
/// another attempt.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorClass {
    /// The server limits the caller's rate (HTTP 429).
    RateLimit = 0,
    /// No answer in time: HTTP 408/504 or a client-side timeout.
    Timeout = 1,
    /// The server sheds load (HTTP 503, Anthropic's 529).
    Overloaded = 2,
    /// The server failed (HTTP 409, 500, 502, other 5xx).
    Server = 3,
    /// No response at all: connect, DNS, or a reset before the response.
    Connection = 4,
    /// Retrying cannot help: bad request, auth, quota, billing, malformed data.
    Permanent = 5,
}

impl ErrorClass {
    /// Every class, in declaration order.
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::RateLimit,
        ErrorClass::Timeout,
        ErrorClass::Overloaded,
        ErrorClass::Server,
        ErrorClass::Connection,
        ErrorClass::Permanent,
    ];

    /// The class's name as written in `#[retry(on = …)]`.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::ErrorClass;
    /// assert_eq!(ErrorClass::RateLimit.name(), "RateLimit");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            ErrorClass::RateLimit => "RateLimit",
            ErrorClass::Timeout => "Timeout",
            ErrorClass::Overloaded => "Overloaded",
            ErrorClass::Server => "Server",
            ErrorClass::Connection => "Connection",
            ErrorClass::Permanent => "Permanent",
        }
    }

    /// The class with this name, if any.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::ErrorClass;
    /// assert_eq!(ErrorClass::from_name("Timeout"), Some(ErrorClass::Timeout));
    /// assert_eq!(ErrorClass::from_name("timeout"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<ErrorClass> {
        ErrorClass::ALL
            .into_iter()
            .find(|class| class.name() == name)
    }

    /// `true` for every class except [`Permanent`](ErrorClass::Permanent).
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::ErrorClass;
    /// assert!(ErrorClass::Overloaded.is_transient());
    /// assert!(!ErrorClass::Permanent.is_transient());
    /// ```
    pub const fn is_transient(self) -> bool {
        !matches!(self, ErrorClass::Permanent)
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`ErrorClass`]es: the classes a call retries.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::ErrorClass;
/// use ai_retry::runtime::ClassSet;
///
/// let set = ErrorClass::RateLimit | ErrorClass::Timeout;
/// assert!(set.contains(ErrorClass::Timeout));
/// assert!(!set.contains(ErrorClass::Server));
/// assert!(ClassSet::TRANSIENT.contains(ErrorClass::Server));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClassSet(u8);

impl ClassSet {
    /// No class.
    pub const EMPTY: ClassSet = ClassSet(0);
    /// Every class but [`ErrorClass::Permanent`]: `on = transient`, the default.
    pub const TRANSIENT: ClassSet = ClassSet::ALL.without(ErrorClass::Permanent);
    /// Every class.
    pub const ALL: ClassSet = ClassSet(0b11_1111);

    /// This set plus `class`.
    pub const fn with(self, class: ErrorClass) -> ClassSet {
        ClassSet(self.0 | class.bit())
    }

    /// This set less `class`.
    pub const fn without(self, class: ErrorClass) -> ClassSet {
        ClassSet(self.0 & !class.bit())
    }

    /// Whether `class` is in the set.
    pub const fn contains(self, class: ErrorClass) -> bool {
        self.0 & class.bit() != 0
    }
}

impl From<ErrorClass> for ClassSet {
    fn from(class: ErrorClass) -> ClassSet {
        ClassSet::EMPTY.with(class)
    }
}

impl BitOr for ErrorClass {
    type Output = ClassSet;
    fn bitor(self, rhs: ErrorClass) -> ClassSet {
        ClassSet::from(self).with(rhs)
    }
}

impl BitOr<ErrorClass> for ClassSet {
    type Output = ClassSet;
    fn bitor(self, rhs: ErrorClass) -> ClassSet {
        self.with(rhs)
    }
}

/// Tells the retry loop what kind of failure an error is, and what the server
/// asked for.
///
/// Implement it for your API's error type, usually from what the HTTP response
/// said, with [`http::classify`](crate::http::classify) and
/// [`http::server_hint`](crate::http::server_hint):
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::{Classify, ErrorClass};
/// use std::time::Duration;
///
/// enum ApiError {
///     Status { class: ErrorClass, retry_after: Option<Duration> },
///     Network(std::io::Error),
///     BadJson(String),
/// }
///
/// impl Classify for ApiError {
///     fn class(&self) -> ErrorClass {
///         match self {
///             ApiError::Status { class, .. } => *class,
///             ApiError::Network(e) => e.class(),
///             ApiError::BadJson(_) => ErrorClass::Permanent,
///         }
///     }
///     fn retry_after(&self) -> Option<Duration> {
///         match self {
///             ApiError::Status { retry_after, .. } => *retry_after,
///             _ => None,
///         }
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Classify`, so the retry loop cannot tell which of its errors to retry",
    label = "this error type has no `Classify` impl",
    note = "implement `ai_retry::Classify` for `{Self}` (for HTTP errors, `ai_retry::http::classify` does the work),",
    note = "or retry every error with `on = any`, or name your own predicate with `when = path::to::fn`"
)]
pub trait Classify {
    /// The kind of failure this is.
    fn class(&self) -> ErrorClass;

    /// How long the server asked the caller to wait before the next attempt
    /// (`Retry-After` and friends), if it said.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl<T: Classify + ?Sized> Classify for &T {
    fn class(&self) -> ErrorClass {
        (**self).class()
    }
    fn retry_after(&self) -> Option<Duration> {
        (**self).retry_after()
    }
}

impl<T: Classify + ?Sized> Classify for Box<T> {
    fn class(&self) -> ErrorClass {
        (**self).class()
    }
    fn retry_after(&self) -> Option<Duration> {
        (**self).retry_after()
    }
}

impl<T: Classify + ?Sized> Classify for std::sync::Arc<T> {
    fn class(&self) -> ErrorClass {
        (**self).class()
    }
    fn retry_after(&self) -> Option<Duration> {
        (**self).retry_after()
    }
}

impl Classify for ErrorClass {
    fn class(&self) -> ErrorClass {
        *self
    }
}

impl Classify for TimedOut {
    fn class(&self) -> ErrorClass {
        ErrorClass::Timeout
    }
}

impl Classify for Throttled {
    fn class(&self) -> ErrorClass {
        ErrorClass::RateLimit
    }

    fn retry_after(&self) -> Option<Duration> {
        Some(self.wait())
    }
}

/// By [`std::io::ErrorKind`]: timeouts are `Timeout`; refused, reset, aborted,
/// broken or unreachable connections and early EOF are `Connection`; the rest
/// `Permanent`.
impl Classify for std::io::Error {
    fn class(&self) -> ErrorClass {
        use std::io::ErrorKind::*;
        if self.get_ref().is_some_and(|inner| inner.is::<Throttled>()) {
            return ErrorClass::RateLimit;
        }
        match self.kind() {
            TimedOut | WouldBlock => ErrorClass::Timeout,
            ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected | BrokenPipe
            | UnexpectedEof | AddrNotAvailable | Interrupted | HostUnreachable
            | NetworkUnreachable | NetworkDown => ErrorClass::Connection,
            _ => ErrorClass::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn names_round_trip() {
        for class in ErrorClass::ALL {
            assert_eq!(ErrorClass::from_name(class.name()), Some(class));
            assert_eq!(class.to_string(), class.name());
        }
    }

    #[test]
    fn transient_is_all_but_permanent() {
        for class in ErrorClass::ALL {
            assert_eq!(ClassSet::TRANSIENT.contains(class), class.is_transient());
            assert!(ClassSet::ALL.contains(class));
            assert!(!ClassSet::EMPTY.contains(class));
        }
    }

    #[test]
    fn io_errors() {
        let class = |kind| io::Error::from(kind).class();
        assert_eq!(class(io::ErrorKind::TimedOut), ErrorClass::Timeout);
        assert_eq!(
            class(io::ErrorKind::ConnectionReset),
            ErrorClass::Connection
        );
        assert_eq!(
            class(io::ErrorKind::ConnectionRefused),
            ErrorClass::Connection
        );
        assert_eq!(class(io::ErrorKind::UnexpectedEof), ErrorClass::Connection);
        assert_eq!(
            class(io::ErrorKind::PermissionDenied),
            ErrorClass::Permanent
        );
        assert_eq!(class(io::ErrorKind::InvalidData), ErrorClass::Permanent);
    }

    #[test]
    fn wrappers_delegate() {
        let e = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(Classify::class(&&e), ErrorClass::Timeout);
        assert_eq!(Box::new(TimedOut).class(), ErrorClass::Timeout);
        assert_eq!(
            std::sync::Arc::new(ErrorClass::Server).class(),
            ErrorClass::Server
        );
    }
}
