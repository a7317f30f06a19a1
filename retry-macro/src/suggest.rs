//! "Did you mean …?" for misspelt keys, strategies and classes.

/// The candidate closest to `word`, if it is close enough to be a likely typo:
/// equal ignoring case, or within an edit distance of a third of its length.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|&c| (c, edit_distance(&lower, &c.to_ascii_lowercase())))
        .filter(|&(c, d)| d == 0 || d <= (c.len() / 3).max(1))
        .min_by_key(|&(_, d)| d)
        .map(|(c, _)| c)
}

/// " (did you mean `x`?)" or nothing.
pub(crate) fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    closest(word, candidates).map_or_else(String::new, |c| format!(" (did you mean `{c}`?)"))
}

/// Keys people bring from other retry libraries (this crate's `Policy`,
/// backon, tokio-retry, tenacity, Polly, AWS SDKs), the key that does it
/// here, and what to know about it.
const BORROWED: &[(&[&str], &str, &str)] = &[
    (
        &[
            "max_attempts",
            "attempts",
            "max_tries",
            "tries",
            "times",
            "max_times",
            "stop",
            "stop_after_attempt",
        ],
        "max",
        " It counts attempts, the first included",
    ),
    (
        &["retries", "max_retries", "retry_count", "max_retry"],
        "max",
        " It counts attempts, the first included: `max = retries + 1`",
    ),
    (
        &[
            "wait",
            "strategy",
            "jitter",
            "wait_exponential",
            "retry_strategy",
        ],
        "backoff",
        r#" As in `backoff = "exp_jitter"`"#,
    ),
    (
        &[
            "delay",
            "min_delay",
            "base",
            "base_delay",
            "initial_delay",
            "min_interval",
            "initial_interval",
            "factor",
        ],
        "initial",
        "",
    ),
    (
        &[
            "max_interval",
            "max_backoff",
            "cap",
            "max_wait",
            "max_sleep",
        ],
        "max_delay",
        "",
    ),
    (
        &[
            "max_elapsed_time",
            "total_timeout",
            "max_total_delay",
            "total_delay",
            "stop_after_delay",
            "max_duration",
        ],
        "deadline",
        " The bound on the whole call",
    ),
    (
        &["attempt_timeout", "per_attempt_timeout", "request_timeout"],
        "timeout",
        " The bound on each attempt",
    ),
    (
        &["retry_if", "retry_on", "retry", "condition", "predicate"],
        "on",
        " For classes; `when` for a function",
    ),
    (
        &["notify", "on_error", "before_sleep", "after", "on_retrying"],
        "on_retry",
        "",
    ),
    (&["rate_limiter", "ratelimiter"], "limiter", ""),
];

/// " (did you mean `max`? it counts attempts …)" for a key another retry
/// library uses, else the closest of `keys`, else nothing.
pub(crate) fn did_you_mean_key(word: &str, keys: &[&str]) -> String {
    let lower = word.to_ascii_lowercase();
    match BORROWED
        .iter()
        .find(|(names, _, _)| names.contains(&lower.as_str()))
    {
        Some((_, key, note)) => format!(" (did you mean `{key}`?{note})"),
        None => did_you_mean(word, keys),
    }
}

/// `a`, `b`, `c` — for "expected one of" lists.
pub(crate) fn list(candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_only() {
        let keys = ["max", "backoff", "max_delay", "timeout", "on_retry"];
        assert_eq!(closest("maxx", &keys), Some("max"));
        assert_eq!(closest("backof", &keys), Some("backoff"));
        assert_eq!(closest("Timeout", &keys), Some("timeout"));
        assert_eq!(closest("max_dealy", &keys), Some("max_delay"));
        assert_eq!(closest("colour", &keys), None);
    }

    #[test]
    fn keys_from_other_libraries_name_ours() {
        let keys = crate::args::KEYS;
        assert!(did_you_mean_key("max_attempts", keys).contains("`max`"));
        assert!(did_you_mean_key("retries", keys).contains("max = retries + 1"));
        assert!(did_you_mean_key("wait", keys).contains("`backoff`"));
        assert!(did_you_mean_key("stop", keys).contains("`max`"));
        assert!(did_you_mean_key("max_elapsed_time", keys).contains("`deadline`"));
        assert_eq!(did_you_mean_key("maxx", keys), " (did you mean `max`?)");
        assert_eq!(did_you_mean_key("colour", keys), "");
        // Every suggestion is a key.
        for (_, key, _) in BORROWED {
            assert!(keys.contains(key), "{key}");
        }
    }
}
