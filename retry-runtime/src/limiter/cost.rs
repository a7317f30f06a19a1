//! What a call spends of a limiter's limits, and the limits a limiter starts
//! from: requests, tokens, input tokens, output tokens.

use super::state::{self, Amounts};

/// What one call spends of a [`RateLimiter`](super::RateLimiter)'s limits:
/// one request always, and the tokens it will use, as a total (OpenAI's
/// `-tokens` limit) or split into input and output (Anthropic's limits; the
/// total counts both). The `cost` key of `#[retry]` takes any expression
/// that converts into one: a token count (`u32`, `u64`, `usize`), an
/// `(input, output)` pair, or a `Cost`.
///
/// A call naming no cost spends [`Cost::NONE`]: one request, no tokens — so
/// a limiter that knows only token limits does not hold it back.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::Cost;
///
/// let openai = Cost::tokens(1_500); // prompt tokens + max_tokens
/// let anthropic = Cost::split(400, 1_024); // input, and max_tokens
/// assert_eq!(anthropic.total_tokens(), 1_424);
/// assert_eq!((anthropic.input_tokens(), anthropic.output_tokens()), (400, 1_024));
/// assert_eq!(Cost::from(1_500u32), openai);
/// assert_eq!(Cost::from((400u32, 1_024u32)), anthropic);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cost {
    tokens: u32,
    input: u32,
    output: u32,
}

impl Cost {
    /// One request and no tokens.
    pub const NONE: Cost = Cost {
        tokens: 0,
        input: 0,
        output: 0,
    };

    /// One request and `tokens` tokens, input and output together.
    pub const fn tokens(tokens: u32) -> Cost {
        Cost {
            tokens,
            input: 0,
            output: 0,
        }
    }

    /// One request, `input` input tokens and `output` output tokens.
    pub const fn split(input: u32, output: u32) -> Cost {
        Cost {
            tokens: 0,
            input,
            output,
        }
    }

    /// The input tokens, when split.
    pub const fn input_tokens(self) -> u32 {
        self.input
    }

    /// The output tokens, when split.
    pub const fn output_tokens(self) -> u32 {
        self.output
    }

    /// The tokens in all.
    pub const fn total_tokens(self) -> u32 {
        self.tokens
            .saturating_add(self.input)
            .saturating_add(self.output)
    }

    /// The cost in each dimension, in the state machine's order.
    pub(crate) fn amounts(self) -> Amounts {
        [
            1.0,
            f64::from(self.total_tokens()),
            f64::from(self.input),
            f64::from(self.output),
        ]
    }
}

impl From<u32> for Cost {
    fn from(tokens: u32) -> Cost {
        Cost::tokens(tokens)
    }
}

impl From<u64> for Cost {
    fn from(tokens: u64) -> Cost {
        Cost::tokens(u32::try_from(tokens).unwrap_or(u32::MAX))
    }
}

impl From<usize> for Cost {
    fn from(tokens: usize) -> Cost {
        Cost::tokens(u32::try_from(tokens).unwrap_or(u32::MAX))
    }
}

impl From<(u32, u32)> for Cost {
    fn from((input, output): (u32, u32)) -> Cost {
        Cost::split(input, output)
    }
}

/// The limits per minute a [`RateLimiter`](super::RateLimiter) starts from
/// (it still learns them from the server's headers); `0` is unknown.
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::{Limits, RateLimiter};
///
/// // A tier-1 OpenAI key: 500 requests and 30,000 tokens a minute.
/// static OPENAI: RateLimiter = RateLimiter::with_limits(Limits::NONE.requests(500).tokens(30_000));
/// assert_eq!(OPENAI.snapshot().tokens_per_minute, Some(30_000));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    requests: u32,
    tokens: u32,
    input_tokens: u32,
    output_tokens: u32,
}

impl Limits {
    /// Nothing known.
    pub const NONE: Limits = Limits {
        requests: 0,
        tokens: 0,
        input_tokens: 0,
        output_tokens: 0,
    };

    /// Requests a minute.
    pub const fn requests(mut self, per_minute: u32) -> Limits {
        self.requests = per_minute;
        self
    }

    /// Tokens a minute, input and output together.
    pub const fn tokens(mut self, per_minute: u32) -> Limits {
        self.tokens = per_minute;
        self
    }

    /// Input tokens a minute.
    pub const fn input_tokens(mut self, per_minute: u32) -> Limits {
        self.input_tokens = per_minute;
        self
    }

    /// Output tokens a minute.
    pub const fn output_tokens(mut self, per_minute: u32) -> Limits {
        self.output_tokens = per_minute;
        self
    }

    /// In the state machine's order.
    pub(crate) const fn per_dimension(self) -> state::Limits {
        [
            self.requests,
            self.tokens,
            self.input_tokens,
            self.output_tokens,
        ]
    }
}
