//! Go-style duration strings: `"12ms"`, `"1.5s"`, `"6m0s"`, `"1h2m3.5s"`.
//!
//! OpenAI's `x-ratelimit-reset-*` headers use this form, and the `#[retry]`
//! attribute parses its `initial`, `max_delay`, `deadline` and `timeout` strings
//! with the same function, so the two can never disagree.

use std::time::Duration;

/// Two-letter units come first, so that `ms` is never read as `m` followed by `s`.
const UNITS: &[(&str, f64)] = &[
    ("ns", 1e-9),
    ("us", 1e-6),
    ("µs", 1e-6),
    ("μs", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
];

/// The unit names accepted by [`parse_duration`], for error messages.
pub const DURATION_UNITS: &str = "ns, us, ms, s, m, h";

/// Parses a Go-style duration: one or more `<number><unit>` pairs, where the number
/// may have a fraction and the unit is one of `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`.
/// A lone `"0"` is zero.
///
/// Returns `None` for anything else: an empty string, a sign, a missing unit, a
/// number without digits, or a total that does not fit a [`Duration`].
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::runtime::parse_duration;
/// use std::time::Duration;
///
/// assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
/// assert_eq!(parse_duration("6m0s"), Some(Duration::from_secs(360)));
/// assert_eq!(parse_duration("12ms"), Some(Duration::from_millis(12)));
/// assert_eq!(parse_duration("-1s"), None);
/// assert_eq!(parse_duration("soon"), None);
/// ```
pub fn parse_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total_secs = 0.0_f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let value = parse_decimal(number)?;
        let &(unit, scale) = UNITS.iter().find(|(unit, _)| after.starts_with(unit))?;
        total_secs += value * scale;
        rest = &after[unit.len()..];
    }
    if !total_secs.is_finite() {
        return None;
    }
    Duration::try_from_secs_f64(total_secs).ok()
}

/// Parses `digits[.digits]` (either side may be empty, not both): no sign, no
/// exponent, no `inf`. Server hints use the same rule, so `"1e3"` is not a hint.
pub(crate) fn parse_decimal(text: &str) -> Option<f64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    // Infinite when the digits overflow a float: still a number, saturated by the caller.
    text.parse::<f64>().ok().filter(|v| !v.is_nan())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_forms() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Some(ms(250)));
        assert_eq!(parse_duration("1s"), Some(ms(1000)));
        assert_eq!(parse_duration("2m"), Some(ms(120_000)));
        assert_eq!(parse_duration("1h2m3.5s"), Some(ms(3_723_500)));
        assert_eq!(parse_duration(".5s"), Some(ms(500)));
        assert_eq!(parse_duration("7.66s"), Some(ms(7660)));
        assert_eq!(parse_duration("1500us"), Some(Duration::from_micros(1500)));
        assert_eq!(parse_duration("1500µs"), Some(Duration::from_micros(1500)));
        assert_eq!(parse_duration("10ns"), Some(Duration::from_nanos(10)));
    }

    #[test]
    fn rejects_non_durations() {
        for bad in [
            "", "s", "5", "1x", "-1s", "+1s", "1.2.3s", ".s", "1e3s", "inf", "1 s", " 1s", "1s ",
            "NaN", "1ss",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn too_large_is_none_not_a_panic() {
        assert_eq!(parse_duration("99999999999999999999999h"), None);
        assert_eq!(parse_duration(&"9".repeat(400)), None);
    }
}
