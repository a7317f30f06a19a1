//! The one line an API error says: its body's message, or a transport error
//! with its causes — never a secret.

use std::borrow::Cow;
use std::fmt;

/// [`error_message`] of a body read with a limit, saying when it was cut.
pub fn capped_message(body: &crate::body::Capped) -> String {
    let message = error_message(&body.bytes);
    match body.cut {
        true => format!(
            "{message} (body cut at {})",
            crate::body::size(body.bytes.len())
        ),
        false => message,
    }
}

/// The `error.message` of an OpenAI or Anthropic error body, else the start of
/// the body, on one line of at most 160 characters.
pub fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message"))
        .and_then(|m| m.as_str());
    let text = match message {
        Some(message) => message.to_string(),
        None => String::from_utf8_lossy(body).into_owned(),
    };
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 160 {
        line.chars().take(160).chain(['…']).collect()
    } else {
        line
    }
}

/// An error and its sources on one line, `outer: cause: root cause` — reqwest's
/// own text says little without them ("error sending request") — with the
/// values of key-like URL query parameters redacted ([`redact_secrets`]). A
/// cause whose text its outer error already holds (reqwest's "error sending
/// request for url (…)" quoted by a middleware that wraps it) is said once.
#[derive(Clone, Copy, Debug)]
pub struct WithSources<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for WithSources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // Said already — at the end, or inside a wrapper's own text that
            // quotes its whole chain (async-openai's "http error: {0}").
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = cause.source();
        }
        f.write_str(&redact_secrets(&line))
    }
}

/// `text` with the value of every URL query parameter named like a secret
/// replaced by `REDACTED`: `key`, `token`, `secret`, `password`, `sig`,
/// `signature`, `auth`, and any name ending in one of them (`api_key`,
/// `api-key`, `apikey`, `subscription-key`, `access_token`, `client_secret`),
/// in any case. Gateways that take the API key in the URL put it there, and
/// reqwest's errors quote the URL.
///
/// ```
/// use ai_retry::reqwest::redact_secrets;
///
/// let said = "error sending request for url (http://gw/v1/chat?api_key=sk-123&model=x)";
/// assert_eq!(
///     redact_secrets(said),
///     "error sending request for url (http://gw/v1/chat?api_key=REDACTED&model=x)"
/// );
/// ```
pub fn redact_secrets(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !matches!(bytes[i], b'?' | b'&' | b';') {
            i += 1;
            continue;
        }
        let name_start = i + 1;
        let name_end = text[name_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .map_or(text.len(), |n| name_start + n);
        if bytes.get(name_end) != Some(&b'=') || !secret_name(&text[name_start..name_end]) {
            i = name_end.max(i + 1);
            continue;
        }
        let value_start = name_end + 1;
        let value_end = text[value_start..]
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '&' | '#' | ')' | '"' | '\'' | '>' | ',' | ';')
            })
            .map_or(text.len(), |n| value_start + n);
        if value_end > value_start {
            out.push_str(&text[copied..value_start]);
            out.push_str("REDACTED");
            copied = value_end;
        }
        i = value_end.max(i + 1);
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// A query parameter name that holds a secret.
fn secret_name(name: &str) -> bool {
    const SECRETS: [&str; 7] = [
        "key",
        "token",
        "secret",
        "password",
        "sig",
        "signature",
        "auth",
    ];
    let name = name.to_ascii_lowercase();
    SECRETS.iter().any(|secret| name.ends_with(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("error sending request")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn secrets_in_urls_are_redacted_and_nothing_else() {
        let cases = [
            ("http://h/v1?key=abc", "http://h/v1?key=REDACTED"),
            (
                "http://h/v1?x=1&api-key=abc&y=2",
                "http://h/v1?x=1&api-key=REDACTED&y=2",
            ),
            (
                "(http://h/?Subscription-Key=abc)",
                "(http://h/?Subscription-Key=REDACTED)",
            ),
            ("u?access_token=a.b.c#frag", "u?access_token=REDACTED#frag"),
            ("u?APIKEY=z u?sig=q", "u?APIKEY=REDACTED u?sig=REDACTED"),
            ("u?monkey=z", "u?monkey=REDACTED"),
            ("u?model=gpt&keys=3", "u?model=gpt&keys=3"),
            ("u?key=", "u?key="),
            ("no url here: key=abc", "no url here: key=abc"),
            ("ends?token", "ends?token"),
            ("ünïcode?key=ä€", "ünïcode?key=REDACTED"),
        ];
        for (text, redacted) in cases {
            assert_eq!(redact_secrets(text), redacted, "{text}");
        }
    }

    #[test]
    fn a_cause_already_quoted_is_said_once() {
        #[derive(Debug)]
        struct Wrapper(Outer);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "middleware: {}", self.0)
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let error = Wrapper(Outer(std::io::Error::other("reset")));
        assert_eq!(
            WithSources(&error).to_string(),
            "middleware: error sending request: reset"
        );
    }

    #[test]
    fn a_chain_a_wrapper_already_quotes_is_not_repeated() {
        #[derive(Debug)]
        struct Quoting(Outer);
        impl fmt::Display for Quoting {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "http error: {}: {}", self.0, self.0.0)
            }
        }
        impl std::error::Error for Quoting {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let error = Quoting(Outer(std::io::Error::other("connection refused")));
        assert_eq!(
            WithSources(&error).to_string(),
            "http error: error sending request: connection refused"
        );
    }

    #[test]
    fn an_error_and_its_sources_on_one_line() {
        let error = Outer(std::io::Error::other("connection reset"));
        assert_eq!(
            WithSources(&error).to_string(),
            "error sending request: connection reset"
        );
    }
}
