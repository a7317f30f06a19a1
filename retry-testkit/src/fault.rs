//! What the server does with one request: answer, or fail the way OpenAI and
//! Anthropic fail under load.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::RngExt;
use rand::rngs::StdRng;

/// The server's hint on a 429, in each form real servers send.
#[derive(Clone, Debug, PartialEq)]
pub enum Hint {
    /// No hint at all.
    None,
    /// `retry-after: <seconds>` (fractional allowed).
    RetryAfterSecs(f64),
    /// `retry-after-ms: <milliseconds>`.
    RetryAfterMs(f64),
    /// `retry-after: <HTTP-date>` this many whole seconds from now.
    RetryAfterDate(u64),
    /// OpenAI `x-ratelimit-remaining-requests: 0` + `x-ratelimit-reset-requests: <Go duration>`.
    OpenAiReset(String),
    /// Anthropic `anthropic-ratelimit-requests-remaining: 0` + `-reset: <RFC 3339>` this far from now.
    AnthropicReset(Duration),
    /// A raw `retry-after` value, garbage included (`"-5"`, `"99999999999"`, `"soon"`).
    RawRetryAfter(String),
}

/// One scripted response.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The normal answer.
    Ok,
    /// 429 rate limit with a hint.
    RateLimit(Hint),
    /// 429 `insufficient_quota` (OpenAI) / usage limit (Anthropic): never worth retrying.
    Quota,
    /// 429 "Request too large" (OpenAI) / 413 `request_too_large` (Anthropic).
    TooLarge,
    /// 429 spend limit reached: never worth retrying.
    SpendLimit,
    /// Any status with the API's error body: 400, 401, 403, 404, 500, 502, 503, 504, 529…
    Status(u16),
    /// A status with `x-should-retry: true|false`.
    ShouldRetry(u16, bool),
    /// Wait this long before answering (longer than the client's timeout).
    Hang(Duration),
    /// Close the connection without a response.
    Drop,
    /// 200 with a body that is not the API's JSON.
    Malformed,
    /// A stream that sends this many tokens, then dies without its terminator.
    StreamDies(usize),
    /// This status with a body that never ends (a broken gateway's page, an
    /// answer that goes on): 200 sends an answer that never closes — a
    /// stream of tokens without end when a stream was asked for — any other
    /// status an HTML page without end. [`TestServer::endless_bytes`](crate::TestServer::endless_bytes)
    /// counts what was sent.
    Endless(u16),
}

impl Fault {
    /// Anthropic's overload: 529 `overloaded_error`.
    pub const OVERLOADED: Fault = Fault::Status(529);
}

/// Chaos mode: every fault the server knows, mixed at random (seeded, so a
/// failing run can be replayed), absurd headers included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Chaos {
    /// The random seed.
    pub seed: u64,
    /// How long a hang lasts: longer than the client's timeout.
    pub hang: Duration,
}

impl Chaos {
    /// The next fault: about 40% answers, the rest spread over every failure.
    pub fn pick(&self, rng: &mut StdRng) -> Fault {
        let ms = |rng: &mut StdRng, low: u64, high: u64| rng.random_range(low..high);
        match rng.random_range(0..100u32) {
            0..40 => Fault::Ok,
            40..43 => Fault::RateLimit(Hint::RetryAfterSecs(ms(rng, 20, 300) as f64 / 1000.0)),
            43..46 => Fault::RateLimit(Hint::RetryAfterMs(ms(rng, 20, 300) as f64)),
            46..48 => Fault::RateLimit(Hint::RetryAfterDate(1)),
            48..51 => Fault::RateLimit(Hint::OpenAiReset(format!("{}ms", ms(rng, 20, 300)))),
            51..54 => Fault::RateLimit(Hint::AnthropicReset(Duration::from_millis(ms(
                rng, 20, 300,
            )))),
            54..56 => Fault::RateLimit(Hint::RawRetryAfter("99999999999".into())),
            56..58 => Fault::RateLimit(Hint::RawRetryAfter("-5".into())),
            58..60 => Fault::RateLimit(Hint::RawRetryAfter("Wed, 99 Foo 1999 soon".into())),
            60..62 => Fault::RateLimit(Hint::None),
            62..77 => Fault::Status([500, 502, 503, 504, 529][rng.random_range(0..5usize)]),
            77..80 => Fault::Hang(self.hang),
            80..85 => Fault::Drop,
            85..88 => Fault::Malformed,
            88..90 => Fault::Quota,
            90..91 => Fault::TooLarge,
            91..92 => Fault::SpendLimit,
            92..93 => Fault::ShouldRetry(500, false),
            93..94 => Fault::ShouldRetry(400, true),
            94..97 => Fault::StreamDies(rng.random_range(0..4usize)),
            _ => Fault::Status([400, 401, 404][rng.random_range(0..3usize)]),
        }
    }
}

/// Parses the binary's script syntax: `ok`, `429`, `429:retry-after=2`,
/// `429:retry-after-ms=1500`, `429:retry-after-date=3`, `429:openai-reset=1s`,
/// `429:anthropic-reset=2s`, `429:retry-after-raw=soon`, `quota`, `too-large`,
/// `spend-limit`, `<status>`, `should-retry=<bool>:<status>`, `hang=30s`, `drop`,
/// `malformed`, `stream-dies=3`.
impl FromStr for Fault {
    type Err = String;

    fn from_str(text: &str) -> Result<Fault, String> {
        let bad = || format!("unknown fault `{text}` (see --help for the script syntax)");
        let secs = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite())
                .ok_or_else(bad)
        };
        let duration = |v: &str| humantime::parse_duration(v).map_err(|_| bad());
        Ok(match text.split_once(['=', ':']) {
            None => match text {
                "ok" => Fault::Ok,
                "429" => Fault::RateLimit(Hint::None),
                "quota" => Fault::Quota,
                "too-large" => Fault::TooLarge,
                "spend-limit" => Fault::SpendLimit,
                "drop" => Fault::Drop,
                "malformed" => Fault::Malformed,
                "overloaded" => Fault::OVERLOADED,
                status if status.bytes().all(|b| b.is_ascii_digit()) => {
                    Fault::Status(error_status(status)?)
                }
                _ => return Err(bad()),
            },
            Some(("429", hint)) => {
                Fault::RateLimit(match hint.split_once('=').ok_or_else(bad)? {
                    ("retry-after", v) => Hint::RetryAfterSecs(secs(v)?),
                    ("retry-after-ms", v) => Hint::RetryAfterMs(secs(v)?),
                    ("retry-after-date", v) => Hint::RetryAfterDate(v.parse().map_err(|_| bad())?),
                    ("retry-after-raw", v) => Hint::RawRetryAfter(v.to_string()),
                    ("openai-reset", v) => Hint::OpenAiReset(v.to_string()),
                    ("anthropic-reset", v) => Hint::AnthropicReset(duration(v)?),
                    _ => return Err(bad()),
                })
            }
            Some(("should-retry", rest)) => {
                let (flag, status) = rest.split_once(':').ok_or_else(bad)?;
                Fault::ShouldRetry(error_status(status)?, flag.parse().map_err(|_| bad())?)
            }
            Some(("hang", v)) => Fault::Hang(duration(v)?),
            Some(("stream-dies", v)) => Fault::StreamDies(v.parse().map_err(|_| bad())?),
            Some(("endless", v)) => Fault::Endless(match v {
                "200" => 200,
                status => error_status(status)?,
            }),
            Some(_) => return Err(bad()),
        })
    }
}

/// Parses a comma-separated script, as the binary's `--script` takes it.
pub fn parse_script(script: &str) -> Result<Vec<Fault>, String> {
    script
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

/// The script syntax `--script` takes: what the log prints, and what parses
/// back to the same fault.
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Ok => write!(f, "ok"),
            Fault::RateLimit(Hint::None) => write!(f, "429"),
            Fault::RateLimit(hint) => write!(f, "429:{hint}"),
            Fault::Quota => write!(f, "quota"),
            Fault::TooLarge => write!(f, "too-large"),
            Fault::SpendLimit => write!(f, "spend-limit"),
            Fault::Status(status) => write!(f, "{status}"),
            Fault::ShouldRetry(status, flag) => write!(f, "should-retry={flag}:{status}"),
            Fault::Hang(d) => write!(f, "hang={}", humantime::format_duration(*d)),
            Fault::Endless(status) => write!(f, "endless={status}"),
            Fault::Drop => write!(f, "drop"),
            Fault::Malformed => write!(f, "malformed"),
            Fault::StreamDies(n) => write!(f, "stream-dies={n}"),
        }
    }
}

/// A hint as the script writes it after `429:`.
impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hint::None => Ok(()),
            Hint::RetryAfterSecs(s) => write!(f, "retry-after={s}"),
            Hint::RetryAfterMs(ms) => write!(f, "retry-after-ms={ms}"),
            Hint::RetryAfterDate(s) => write!(f, "retry-after-date={s}"),
            Hint::OpenAiReset(go) => write!(f, "openai-reset={go}"),
            Hint::AnthropicReset(d) => {
                write!(f, "anthropic-reset={}", humantime::format_duration(*d))
            }
            Hint::RawRetryAfter(raw) => write!(f, "retry-after-raw={raw}"),
        }
    }
}

/// An error status the server can answer with its API's error body.
fn error_status(text: &str) -> Result<u16, String> {
    text.parse()
        .ok()
        .filter(|s| (400..=599).contains(s))
        .ok_or_else(|| format!("`{text}` is not an error status (400 to 599)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_syntax() {
        let script = parse_script(
            "ok, 429, 429:retry-after=2, 429:retry-after-ms=1500, 429:retry-after-date=3, \
             429:openai-reset=1s, 429:anthropic-reset=2s, 429:retry-after-raw=soon, quota, too-large, \
             spend-limit, 503, should-retry=false:500, hang=30s, drop, malformed, stream-dies=3, overloaded",
        )
        .unwrap();
        assert_eq!(script.len(), 18);
        assert_eq!(script[2], Fault::RateLimit(Hint::RetryAfterSecs(2.0)));
        assert_eq!(
            script[6],
            Fault::RateLimit(Hint::AnthropicReset(Duration::from_secs(2)))
        );
        assert_eq!(script[12], Fault::ShouldRetry(500, false));
        assert_eq!(script[13], Fault::Hang(Duration::from_secs(30)));
        assert_eq!(script[17], Fault::Status(529));
        for bad in [
            "nope",
            "429:later",
            "hang=forever",
            "99999",
            "100",
            "200",
            "should-retry=maybe:500",
            "should-retry=true:9999",
        ] {
            assert!(parse_script(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_script("100").unwrap_err(),
            "`100` is not an error status (400 to 599)"
        );
        // What the log prints is the script syntax, and parses back the same.
        for fault in &script {
            let printed = fault.to_string();
            assert_eq!(&printed.parse::<Fault>().unwrap(), fault, "{printed}");
            assert!(!printed.contains(' '), "{printed}");
        }
        assert_eq!(script[2].to_string(), "429:retry-after=2");
    }
}
