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

/// A response body read as a stream of tokens, at most `max_body` bytes of
/// it in all.
#[derive(Debug)]
pub struct TokenStream {
    response: reqwest::Response,
    dialect: Dialect,
    /// Received and not yet taken as events; line ends normalised to `\n`.
    buffer: String,
    /// A `\r` that ended the last chunk: its `\n` may open the next.
    carriage_return: bool,
    done: bool,
    tokens: usize,
    received: usize,
    max_body: usize,
}

impl TokenStream {
    /// Reads `response`'s body as `dialect` events, no more than `max_body`
    /// bytes of it — and so no event larger: a server that never ends an
    /// event, or a stream, is an error, not a buffer without end.
    pub fn new(response: reqwest::Response, dialect: Dialect, max_body: usize) -> TokenStream {
        TokenStream {
            response,
            dialect,
            buffer: String::new(),
            carriage_return: false,
            done: false,
            tokens: 0,
            received: 0,
            max_body,
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
                Ok(Some(bytes)) => {
                    self.received += bytes.len();
                    if self.received > self.max_body {
                        return Err(ApiError::TooLarge {
                            what: "the answer",
                            limit: self.max_body,
                        });
                    }
                    self.push(&String::from_utf8_lossy(&bytes));
                }
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

    /// Appends a chunk with its line ends (`\r\n`, `\r`, `\n`) made `\n`, a
    /// `\r\n` split across two chunks included.
    fn push(&mut self, chunk: &str) {
        let mut chunk = chunk;
        if std::mem::take(&mut self.carriage_return) && chunk.starts_with('\n') {
            chunk = &chunk[1..];
        }
        // A `\r` alone ends a line too; one at the chunk's end may be half a `\r\n`.
        self.carriage_return = chunk.ends_with('\r');
        self.buffer
            .push_str(&chunk.replace("\r\n", "\n").replace('\r', "\n"));
    }

    /// One whole event from the buffer, if one has arrived.
    fn take_event(&mut self) -> Option<String> {
        let end = self.buffer.find("\n\n")?;
        let event = self.buffer[..end].to_string();
        self.buffer.drain(..end + 2);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> TokenStream {
        let response = reqwest::Response::from(http::Response::new(reqwest::Body::from("")));
        TokenStream::new(response, Dialect::OpenAi, 1 << 20)
    }

    #[test]
    fn line_ends_split_across_chunks_still_end_events() {
        let mut events = stream();
        for chunk in [
            "data: a\r",
            "\n\r",
            "\ndata: b\r\n",
            "\r\ndata: c\r\r",
            "data: d\n\n",
        ] {
            events.push(chunk);
        }
        let mut taken = Vec::new();
        while let Some(event) = events.take_event() {
            taken.push(event);
        }
        assert_eq!(taken, ["data: a", "data: b", "data: c", "data: d"]);
        assert!(events.buffer.is_empty());
    }
}
