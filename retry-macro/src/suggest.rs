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
}
