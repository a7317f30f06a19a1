//! What a chat request will cost, estimated from the JSON body about to be
//! sent, with the providers' own rules — before it is sent, so a
//! [`RateLimiter`](crate::RateLimiter) can pace on it:
//!
//! - OpenAI (and compatible): ceil(prompt characters / 4) tokens of input,
//!   plus `max_tokens` or `max_completion_tokens` of output, as one total
//!   ([`Cost::tokens`]);
//! - Anthropic (`…/v1/messages`): input ceil(characters / 4) of `system` and
//!   the messages, output `max_tokens` ([`Cost::split`]).
//!
//! The server counts the real tokens; each response's `remaining` corrects
//! the limiter afterwards. A body that is not such JSON costs one request.
//!
//! ```
//! use ai_retry::{Cost, estimate};
//!
//! let body = br#"{"model": "gpt-4o-mini", "max_tokens": 500,
//!                 "messages": [{"role": "user", "content": "Say hello in forty characters, please."}]}"#;
//! assert_eq!(estimate::cost("https://api.openai.com/v1/chat/completions", body), Cost::tokens(10 + 500));
//!
//! let body = br#"{"model": "claude-3-5-haiku-latest", "max_tokens": 1024, "system": "Be brief.",
//!                 "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello!"}]}]}"#;
//! assert_eq!(estimate::cost("https://api.anthropic.com/v1/messages", body), Cost::split(4, 1024));
//! ```

use serde_json::Value;

use crate::Cost;

/// The cost of sending `body` to `url` (a URL or a path): Anthropic's rules
/// for a path ending in `/messages`, OpenAI's otherwise.
pub fn cost(url: &str, body: &[u8]) -> Cost {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return Cost::NONE;
    };
    let path = url.split(['?', '#']).next().unwrap_or(url);
    match path.trim_end_matches('/').ends_with("/messages") {
        true => anthropic(&json),
        false => openai(&json),
    }
}

/// OpenAI's rule on a chat completion request: prompt characters / 4,
/// rounded up, plus the most it may answer.
pub fn openai(request: &Value) -> Cost {
    let chars: usize = messages(request).map(text_chars).sum();
    let output = number(request, "max_completion_tokens").or_else(|| number(request, "max_tokens"));
    Cost::tokens(tokens(chars).saturating_add(output.unwrap_or(0)))
}

/// Anthropic's rule on a Messages request: input characters / 4 of `system`
/// and the messages, rounded up; output `max_tokens`.
pub fn anthropic(request: &Value) -> Cost {
    let system = request.get("system").map_or(0, text_of);
    let chars: usize = system + messages(request).map(text_chars).sum::<usize>();
    Cost::split(tokens(chars), number(request, "max_tokens").unwrap_or(0))
}

fn messages(request: &Value) -> impl Iterator<Item = &Value> {
    request
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The characters of a message's text: its `content`, a string or blocks.
fn text_chars(message: &Value) -> usize {
    message.get("content").map_or(0, text_of)
}

/// A string's characters, or the sum of the `text` of an array's blocks.
fn text_of(content: &Value) -> usize {
    match content {
        Value::String(text) => text.chars().count(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .map(|text| text.chars().count())
            .sum(),
        _ => 0,
    }
}

/// ceil(chars / 4), as a token count.
fn tokens(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
}

fn number(request: &Value, name: &str) -> Option<u32> {
    let value = request.get(name)?.as_u64()?;
    Some(u32::try_from(value).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_body_shape() {
        let openai = br#"{"messages": [{"role": "system", "content": "12345678"},
                          {"role": "user", "content": [{"type": "text", "text": "abcd"}, {"type": "image_url"}]}],
                          "max_completion_tokens": 100, "max_tokens": 7}"#;
        assert_eq!(cost("/v1/chat/completions", openai), Cost::tokens(3 + 100));
        let no_output = r#"{"messages": [{"role": "user", "content": "ä€😀"}]}"#;
        assert_eq!(
            cost("/chat/completions?key=x", no_output.as_bytes()),
            Cost::tokens(1)
        );
        let anthropic = br#"{"system": [{"type": "text", "text": "sys!"}], "max_tokens": 64,
                             "messages": [{"role": "user", "content": "hello"}]}"#;
        assert_eq!(cost("http://h/v1/messages/", anthropic), Cost::split(3, 64));
        assert_eq!(cost("/v1/chat/completions", b"not json"), Cost::NONE);
        assert_eq!(cost("/v1/messages", b"[1, 2]"), Cost::NONE);
    }
}
