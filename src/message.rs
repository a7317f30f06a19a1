//! The one line an API error body says.

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
