//! The two APIs' wire formats: requests read, answers and errors written as
//! OpenAI and Anthropic write them.

use serde_json::{Value, json};

/// Which API an endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions`.
    OpenAi,
    /// `POST /v1/messages`.
    Anthropic,
}

/// What the server needs from a request body.
#[derive(Debug)]
pub(crate) struct ChatRequest {
    pub model: String,
    pub prompt: String,
    pub stream: bool,
    /// The characters of every message and of `system`: what input tokens are estimated from.
    pub input_chars: usize,
    /// `max_tokens` (or `max_completion_tokens`): the most it may answer.
    pub max_tokens: u64,
}

/// What a request costs of a key's token limits, counted at admission as the
/// providers count it: OpenAI ceil(characters / 4) + `max_tokens` as one
/// total; Anthropic input ceil(characters / 4), output `max_tokens`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TokenCost {
    pub total: u64,
    pub input: u64,
    pub output: u64,
}

impl ChatRequest {
    pub(crate) fn cost(&self) -> TokenCost {
        let input = self.input_chars.div_ceil(4) as u64;
        TokenCost {
            total: input + self.max_tokens,
            input,
            output: self.max_tokens,
        }
    }
}

fn text_chars(content: &Value) -> usize {
    match content {
        Value::String(text) => text.chars().count(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(|t| t.chars().count())
            .sum(),
        _ => 0,
    }
}

/// Reads the model, the last user message and the stream flag; `None` when the
/// body is not the API's JSON.
pub(crate) fn parse_request(body: &[u8]) -> Option<ChatRequest> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let model = value.get("model")?.as_str()?.to_string();
    let messages = value.get("messages")?.as_array()?;
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    let prompt = match last_user.get("content")? {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => return None,
    };
    let stream = value
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let input_chars = value.get("system").map_or(0, text_chars)
        + messages
            .iter()
            .filter_map(|m| m.get("content"))
            .map(text_chars)
            .sum::<usize>();
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|name| value.get(*name)?.as_u64())
        .unwrap_or(0);
    Some(ChatRequest {
        model,
        prompt,
        stream,
        input_chars,
        max_tokens,
    })
}

/// A refusal for tokens, in the API's words: OpenAI's says how long in its
/// message, Anthropic's names the limit (the wait is in `retry-after`).
pub(crate) fn token_refusal(
    api: Api,
    model: &str,
    limit: &str,
    per_minute: u64,
    used: u64,
    requested: u64,
    wait: std::time::Duration,
) -> Value {
    match api {
        Api::OpenAi => error(
            api,
            "tokens",
            Some("rate_limit_exceeded"),
            &format!(
                "Rate limit reached for {model} in organization org-testkit on tokens per min (TPM): Limit {per_minute}, Used {used}, Requested {requested}. Please try again in {}. Visit https://platform.openai.com/account/rate-limits to learn more.",
                go_duration(wait)
            ),
        ),
        Api::Anthropic => error(
            api,
            "rate_limit_error",
            None,
            &format!(
                "This request would exceed the rate limit for your organization of {per_minute} {limit} per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."
            ),
        ),
    }
}

/// A wait as OpenAI writes it: `120ms`, `1.5s`, `6m0s`.
pub(crate) fn go_duration(wait: std::time::Duration) -> String {
    let ms = wait.as_millis();
    if ms < 1000 {
        return format!("{}ms", ms.max(1));
    }
    let secs = wait.as_secs_f64();
    if secs < 60.0 {
        let text = format!("{secs:.3}");
        return format!("{}s", text.trim_end_matches('0').trim_end_matches('.'));
    }
    let whole = wait.as_secs();
    format!("{}m{}s", whole / 60, whole % 60)
}

/// The answer the server gives: deterministic, so tests can compare it.
pub fn answer_for(prompt: &str) -> String {
    format!("Hello from retry-testkit! You said: {prompt}")
}

/// The answer split into the tokens a stream sends.
pub(crate) fn tokens(answer: &str) -> Vec<String> {
    answer.split_inclusive(' ').map(str::to_string).collect()
}

pub(crate) fn completion(api: Api, id: u64, model: &str, answer: &str) -> Value {
    match api {
        Api::OpenAi => json!({
            "id": format!("chatcmpl-testkit-{id}"),
            "object": "chat.completion",
            "created": 1_750_000_000,
            "model": model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": answer },
                "finish_reason": "stop"
            }],
            "usage": { "prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21 }
        }),
        Api::Anthropic => json!({
            "id": format!("msg_testkit_{id}"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{ "type": "text", "text": answer }],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": { "input_tokens": 9, "output_tokens": 12 }
        }),
    }
}

/// The stream's opening events (Anthropic's `message_start`; none for OpenAI).
pub(crate) fn stream_start(api: Api, id: u64, model: &str) -> String {
    match api {
        Api::OpenAi => String::new(),
        Api::Anthropic => {
            let start = json!({"type": "message_start", "message": {"id": format!("msg_testkit_{id}"), "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "usage": {"input_tokens": 9, "output_tokens": 0}}});
            let block = json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}});
            format!(
                "event: message_start\ndata: {start}\n\nevent: content_block_start\ndata: {block}\n\n"
            )
        }
    }
}

/// One token as a stream event.
pub(crate) fn stream_token(api: Api, id: u64, model: &str, token: &str) -> String {
    match api {
        Api::OpenAi => {
            let chunk = json!({"id": format!("chatcmpl-testkit-{id}"), "object": "chat.completion.chunk", "created": 1_750_000_000, "model": model, "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": null}]});
            format!("data: {chunk}\n\n")
        }
        Api::Anthropic => {
            let delta = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}});
            format!("event: content_block_delta\ndata: {delta}\n\n")
        }
    }
}

/// The stream's closing events, terminator included (`[DONE]`, `message_stop`).
pub(crate) fn stream_end(api: Api, id: u64, model: &str) -> String {
    match api {
        Api::OpenAi => {
            let last = json!({"id": format!("chatcmpl-testkit-{id}"), "object": "chat.completion.chunk", "created": 1_750_000_000, "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
            format!("data: {last}\n\ndata: [DONE]\n\n")
        }
        Api::Anthropic => {
            let stop = json!({"type": "content_block_stop", "index": 0});
            let delta = json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 12}});
            format!(
                "event: content_block_stop\ndata: {stop}\n\nevent: message_delta\ndata: {delta}\n\nevent: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n"
            )
        }
    }
}

/// An error body in the API's own shape.
pub(crate) fn error(api: Api, kind: &str, code: Option<&str>, message: &str) -> Value {
    match api {
        Api::OpenAi => {
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        }
        Api::Anthropic => json!({"type": "error", "error": {"type": kind, "message": message}}),
    }
}

/// The body each API sends with `status`, for the statuses the fault script uses.
pub(crate) fn status_error(api: Api, status: u16) -> Value {
    let (openai_type, anthropic_type, message) = match status {
        400 => (
            "invalid_request_error",
            "invalid_request_error",
            "Invalid request.",
        ),
        401 => (
            "invalid_request_error",
            "authentication_error",
            "Incorrect API key provided.",
        ),
        403 => (
            "invalid_request_error",
            "permission_error",
            "You do not have access to this resource.",
        ),
        404 => (
            "invalid_request_error",
            "not_found_error",
            "The model does not exist.",
        ),
        408 => ("timeout", "timeout_error", "Request timed out."),
        429 => (
            "requests",
            "rate_limit_error",
            "Rate limit reached. Please try again later.",
        ),
        503 => (
            "server_error",
            "overloaded_error",
            "The engine is currently overloaded, please try again later.",
        ),
        529 => ("server_error", "overloaded_error", "Overloaded"),
        500..=599 => (
            "server_error",
            "api_error",
            "The server had an error while processing your request.",
        ),
        _ => (
            "invalid_request_error",
            "invalid_request_error",
            "Request failed.",
        ),
    };
    match api {
        Api::OpenAi => error(api, openai_type, None, message),
        Api::Anthropic => error(api, anthropic_type, None, message),
    }
}

/// Failures that waiting cannot fix.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refusal {
    /// Out of quota or credit.
    Quota,
    /// A request larger than any rate window.
    TooLarge,
    /// A spend limit reached.
    SpendLimit,
}

/// The status and body each API sends for `refusal`.
pub(crate) fn refusal(api: Api, refusal: Refusal) -> (u16, Value) {
    let (status, kind, code, message) = match (api, refusal) {
        (Api::OpenAi, Refusal::Quota) => (
            429,
            "insufficient_quota",
            Some("insufficient_quota"),
            "You exceeded your current quota, please check your plan and billing details.",
        ),
        (Api::Anthropic, Refusal::Quota) => (
            400,
            "invalid_request_error",
            None,
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
        ),
        (Api::OpenAi, Refusal::TooLarge) => (
            429,
            "tokens",
            Some("rate_limit_exceeded"),
            "Request too large for gpt-4o in organization org-testkit on tokens per min (TPM): Limit 30000, Requested 45000. The input or output tokens must be reduced in order to run successfully.",
        ),
        (Api::Anthropic, Refusal::TooLarge) => (
            413,
            "request_too_large",
            None,
            "Request exceeds the maximum allowed number of bytes.",
        ),
        (Api::OpenAi, Refusal::SpendLimit) => (
            429,
            "insufficient_quota",
            Some("billing_hard_limit_reached"),
            "Billing hard limit has been reached.",
        ),
        (Api::Anthropic, Refusal::SpendLimit) => (
            429,
            "rate_limit_error",
            None,
            "You have reached your specified API usage limits. You will regain access on 2027-01-01 at 00:00 UTC.",
        ),
    };
    (status, error(api, kind, code, message))
}
