//! The one line an API error says: its body's message, or a transport error
//! with its causes.

use std::fmt;

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
/// own text says little without them ("error sending request").
#[derive(Clone, Copy, Debug)]
pub struct WithSources<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for WithSources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
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
    fn an_error_and_its_sources_on_one_line() {
        let error = Outer(std::io::Error::other("connection reset"));
        assert_eq!(
            WithSources(&error).to_string(),
            "error sending request: connection reset"
        );
    }
}
