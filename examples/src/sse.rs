//! Reading a chat stream (server-sent events) token by token, for OpenAI's
//! `data: {…}` … `data: [DONE]` and Anthropic's typed events … `message_stop`.

use ai_retry::http::HeaderMap;
use serde_json::Value;

use crate::ApiError;

/// Which stream format to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI chat completion chunks.
    OpenAi,
    /// Anthropic message events.
    Anthropic,
}

/// A response body read as a stream of tokens.
#[derive(Debug)]
pub struct TokenStream {
    response: reqwest::Response,
    dialect: Dialect,
    buffer: String,
    done: bool,
    tokens: usize,
}

impl TokenStream {
    /// Reads `response`'s body as `dialect` events.
    pub fn new(response: reqwest::Response, dialect: Dialect) -> TokenStream {
        TokenStream {
            response,
            dialect,
            buffer: String::new(),
            done: false,
            tokens: 0,
        }
    }

    /// The next token; `None` after the stream's terminator. A body that ends
    /// without one is [`ApiError::Incomplete`], never a short answer.
    pub async fn next_token(&mut self) -> Result<Option<String>, ApiError> {
        loop {
            if self.done {
                return Ok(None);
            }
            while let Some(event) = self.take_event() {
                if let Some(token) = self.read_event(&event)? {
                    self.tokens += 1;
                    return Ok(Some(token));
                }
                if self.done {
                    return Ok(None);
                }
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                // A timeout stays a timeout; a body cut off mid-chunk is the
                // stream ending early, said as such rather than as reqwest's
                // "error decoding response body".
                Err(error) if error.is_timeout() => return Err(error.into()),
                Ok(None) | Err(_) => return Err(self.incomplete()),
            }
        }
    }

    /// The stream closed before its terminator.
    pub fn incomplete(&self) -> ApiError {
        ApiError::Incomplete {
            tokens: self.tokens,
            terminator: match self.dialect {
                Dialect::OpenAi => "[DONE]",
                Dialect::Anthropic => "message_stop",
            },
        }
    }

    /// One whole event from the buffer, if one has arrived.
    fn take_event(&mut self) -> Option<String> {
        let normalized = self.buffer.replace("\r\n", "\n");
        let end = normalized.find("\n\n")?;
        let event = normalized[..end].to_string();
        self.buffer = normalized[end + 2..].to_string();
        Some(event)
    }

    fn read_event(&mut self, event: &str) -> Result<Option<String>, ApiError> {
        let data: String = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim_start)
            .collect::<Vec<_>>()
            .join("\n");
        if data.is_empty() {
            return Ok(None);
        }
        if self.dialect == Dialect::OpenAi && data == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        let value: Value = serde_json::from_str(&data)
            .map_err(|e| ApiError::Malformed(format!("stream event is not JSON: {e}")))?;
        match self.dialect {
            Dialect::OpenAi => {
                if value.get("error").is_some() {
                    return Err(ApiError::from_response(
                        500,
                        &HeaderMap::new(),
                        data.as_bytes(),
                    ));
                }
                let token = value
                    .pointer("/choices/0/delta/content")
                    .and_then(Value::as_str);
                Ok(token.filter(|t| !t.is_empty()).map(str::to_string))
            }
            Dialect::Anthropic => match value.get("type").and_then(Value::as_str) {
                Some("content_block_delta") => Ok(value
                    .pointer("/delta/text")
                    .and_then(Value::as_str)
                    .map(str::to_string)),
                Some("message_stop") => {
                    self.done = true;
                    Ok(None)
                }
                // An overload mid-stream arrives as an `error` event on a 200; its
                // `overloaded_error` body classifies as `Overloaded`.
                Some("error") => Err(ApiError::from_response(
                    500,
                    &HeaderMap::new(),
                    data.as_bytes(),
                )),
                _ => Ok(None),
            },
        }
    }
}
