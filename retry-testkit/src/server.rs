//! The server: accept loop, one hyper connection per client, and the handler
//! that turns the next fault into a response.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::oneshot;

use crate::api::{self, Api, Refusal, TokenCost};
use crate::limiter::{Admission, Limiter, Quota, RateLimit, TokenLimit, TokenQuota, TokenRefusal};
use crate::{ATTEMPT_HEADER, Chaos, Fault, Hint, IDEMPOTENCY_HEADER};

type Body = BoxBody<Bytes, io::Error>;

/// How the server behaves.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// One fault per request, in order; then normal answers.
    pub script: Vec<Fault>,
    /// Once the script is used up, refuse with 429 beyond this rate per API key.
    pub rate_limit: Option<RateLimit>,
    /// Once the script is used up, refuse with 429 beyond these token limits
    /// per API key (alone, or beside `rate_limit`).
    pub tokens: Option<TokenLimit>,
    /// Delay every answer by this much (the network and model time); a
    /// refusal is not delayed: servers refuse at once.
    pub latency: Duration,
    /// The loopback port to listen on; 0 picks a free one.
    pub port: u16,
    /// Print each request to stderr as it is answered.
    pub echo: bool,
    /// What to do once the script is used up (outside rate-limit mode):
    /// `Fault::Ok` unless set, e.g. `Fault::Status(503)` for an outage.
    pub fallback: Option<Fault>,
    /// Chaos mode: once the script is used up, every fault it knows, at random.
    pub chaos: Option<Chaos>,
}

impl Config {
    /// A server that plays `script`, then answers.
    pub fn script(script: impl IntoIterator<Item = Fault>) -> Config {
        Config {
            script: script.into_iter().collect(),
            ..Config::default()
        }
    }

    /// A server in rate-limit mode.
    pub fn rate_limited(limit: RateLimit) -> Config {
        Config {
            rate_limit: Some(limit),
            ..Config::default()
        }
    }

    /// A server that limits tokens (see [`TokenLimit`]).
    pub fn token_limited(tokens: TokenLimit) -> Config {
        Config {
            tokens: Some(tokens),
            ..Config::default()
        }
    }

    /// Answers take `latency` (refusals stay instant).
    pub fn with_latency(mut self, latency: Duration) -> Config {
        self.latency = latency;
        self
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// When it arrived, since the server started.
    pub at: Duration,
    /// The endpoint's API, if the path was one.
    pub api: Option<Api>,
    /// The request path.
    pub path: String,
    /// The client's attempt-count header ([`ATTEMPT_HEADER`]).
    pub attempt: Option<u32>,
    /// The client's idempotency key ([`IDEMPOTENCY_HEADER`]).
    pub idempotency_key: Option<String>,
    /// Whether it asked for a stream.
    pub stream: bool,
    /// What the server did: the fault, or `ok`.
    pub fault: String,
    /// The status sent; 0 when the connection was dropped.
    pub status: u16,
    /// It came before the time the server had told this caller to wait for.
    /// A caller is its idempotency key, else its API key on its connection.
    pub early: bool,
}

struct State {
    started: Instant,
    config: Config,
    script: Mutex<VecDeque<Fault>>,
    chaos: Mutex<StdRng>,
    limiter: Mutex<Limiter>,
    log: Mutex<Vec<RequestRecord>>,
    ids: AtomicU64,
    /// Connections accepted so far: a caller without an idempotency key is
    /// known by its connection.
    connections: AtomicU64,
    /// Bytes sent in endless bodies so far.
    endless: Arc<AtomicU64>,
}

/// A running server on 127.0.0.1; it stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<State>,
    _stop: oneshot::Sender<()>,
}

impl TestServer {
    /// Starts the server on a free loopback port, on the current tokio runtime.
    pub async fn start(config: Config) -> io::Result<TestServer> {
        let (listener, addr, state) = bind(config)?;
        let (stop, stopped) = oneshot::channel();
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tokio::spawn(serve(listener, state.clone(), stopped));
        Ok(TestServer {
            addr,
            state,
            _stop: stop,
        })
    }

    /// Starts the server on a thread of its own, for blocking clients and
    /// programs without a tokio runtime.
    pub fn start_in_thread(config: Config) -> io::Result<TestServer> {
        let (listener, addr, state) = bind(config)?;
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let served = state.clone();
        std::thread::Builder::new()
            .name("retry-testkit".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, served, stopped).await,
                        Err(error) => eprintln!("retry-testkit: cannot listen: {error}"),
                    }
                })
            })?;
        Ok(TestServer {
            addr,
            state,
            _stop: stop,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What `OPENAI_BASE_URL` should be: `http://127.0.0.1:PORT/v1`.
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// What `ANTHROPIC_BASE_URL` should be: `http://127.0.0.1:PORT`.
    pub fn anthropic_base_url(&self) -> String {
        self.url()
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends faults to the script.
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.state.script).extend(faults);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state.log).clone()
    }

    /// Bytes sent so far in [`Fault::Endless`] bodies: where the clients
    /// stopped reading (plus what the sockets' buffers held).
    pub fn endless_bytes(&self) -> u64 {
        self.state.endless.load(Ordering::Relaxed)
    }

    /// Every request since the last call, removed from the log: long runs stay
    /// in constant memory.
    pub fn take_requests(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut *lock(&self.state.log))
    }
}

fn bind(config: Config) -> io::Result<(std::net::TcpListener, SocketAddr, Arc<State>)> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", config.port))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let state = Arc::new(State {
        started: Instant::now(),
        script: Mutex::new(config.script.iter().cloned().collect()),
        chaos: Mutex::new(StdRng::seed_from_u64(config.chaos.map_or(0, |c| c.seed))),
        config,
        limiter: Mutex::new(Limiter::default()),
        log: Mutex::new(Vec::new()),
        ids: AtomicU64::new(1),
        connections: AtomicU64::new(0),
        endless: Arc::new(AtomicU64::new(0)),
    });
    Ok((listener, addr, state))
}

/// A poisoned lock only means a handler panicked mid-update; the data is still
/// the best record there is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let state = state.clone();
        let connection = state.connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                handle(state.clone(), request, connection)
            });
            // A dropped connection (the `Drop` fault, a client gone) is not an error here.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What the handler decided, before the response is built.
struct Plan {
    fault: Fault,
    early: bool,
    /// A refusal from rate-limit mode: the wait to announce.
    refused: Option<Duration>,
    /// A refusal for tokens.
    tokens_refused: Option<TokenRefusal>,
    /// What the realistic bucket has left, said on every response.
    quota: Option<Quota>,
    /// What each token limit has left, said on every response.
    token_quotas: Vec<TokenQuota>,
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
    connection: u64,
) -> Result<Response<Body>, io::Error> {
    let now = Instant::now();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let api_key = header("x-api-key")
        .or_else(|| header("authorization"))
        .unwrap_or_default();
    let (attempt, idempotency_key) = (
        header(ATTEMPT_HEADER).and_then(|a| a.parse().ok()),
        header(IDEMPOTENCY_HEADER),
    );
    // A caller is its idempotency key, kept across its attempts; without
    // one, its API key on its connection: concurrent callers of one key each
    // hold a connection of their own, and a retry goes back on its caller's
    // (the pool gives it back), so neither is taken for the other.
    let caller = idempotency_key
        .clone()
        .unwrap_or_else(|| format!("{api_key} #{connection}"));
    let path = request.uri().path().to_string();
    // Only the paths the real APIs serve: a base URL missing its `/v1`
    // gets the 404 the real API sends, not an answer.
    let api = match (request.method(), path.as_str()) {
        (&Method::POST, "/v1/chat/completions") => Some(Api::OpenAi),
        (&Method::POST, "/v1/messages") => Some(Api::Anthropic),
        _ => None,
    };
    // Who the client meant to call, for a 404 in that API's shape.
    let meant = match header("anthropic-version").or_else(|| header("x-api-key")) {
        Some(_) => Api::Anthropic,
        None => Api::OpenAi,
    };
    let method = request.method().to_string();
    let mut record = RequestRecord {
        at: now - state.started,
        api,
        path,
        attempt,
        idempotency_key,
        stream: false,
        fault: String::new(),
        status: 0,
        early: false,
    };
    let body = Limited::new(request.into_body(), 1 << 20)
        .collect()
        .await
        .map(|b| b.to_bytes());
    let Some(api) = api else {
        let body = match meant {
            Api::OpenAi => api::error(
                Api::OpenAi,
                "invalid_request_error",
                None,
                &format!("Invalid URL ({method} {})", record.path),
            ),
            Api::Anthropic => api::error(Api::Anthropic, "not_found_error", None, "Not Found"),
        };
        return Ok(finish(
            &state,
            record,
            "not found (served: POST /v1/chat/completions, POST /v1/messages)",
            json(StatusCode::NOT_FOUND, &body),
        ));
    };
    let Some(chat) = body.ok().as_deref().and_then(api::parse_request) else {
        let error = api::error(
            api,
            "invalid_request_error",
            None,
            "The request body is not a valid chat request.",
        );
        return Ok(finish(
            &state,
            record,
            "bad request",
            json(StatusCode::BAD_REQUEST, &error),
        ));
    };
    record.stream = chat.stream;
    let plan = plan(&state, &api_key, &caller, now, chat.cost());
    record.early = plan.early;
    let fault_name = plan.fault.to_string();
    let id = state.ids.fetch_add(1, Ordering::Relaxed);
    let limit = state.config.rate_limit;
    // Refusals come at once; answers take the model's time.
    if let Some(refusal) = &plan.tokens_refused {
        let mut response = token_refused(api, &chat.model, refusal);
        token_headers(api, response.headers_mut(), &plan.token_quotas);
        return Ok(finish(&state, record, "rate limited (tokens)", response));
    }
    if let (Some(wait), Some(limit)) = (plan.refused, limit) {
        let mut response = rate_limited(api, wait, limit);
        token_headers(api, response.headers_mut(), &plan.token_quotas);
        return Ok(finish(&state, record, "rate limited", response));
    }
    if !state.config.latency.is_zero() {
        tokio::time::sleep(state.config.latency).await;
    }
    let response = match plan.fault {
        Fault::Drop => {
            finish(&state, record, &fault_name, Response::new(empty()));
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "scripted drop",
            ));
        }
        Fault::StreamDies(_) if !chat.stream => {
            finish(&state, record, &fault_name, Response::new(empty()));
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "scripted drop",
            ));
        }
        Fault::Hang(delay) => {
            // Logged on arrival: the client gives up long before the answer.
            let response = finish(&state, record, &fault_name, answer(api, id, &chat, None));
            tokio::time::sleep(delay).await;
            return Ok(response);
        }
        Fault::Ok => {
            let mut response = answer(api, id, &chat, None);
            if let (Some(quota), Some(limit)) = (plan.quota, limit) {
                quota_headers(response.headers_mut(), quota, limit);
            }
            token_headers(api, response.headers_mut(), &plan.token_quotas);
            response
        }
        Fault::StreamDies(tokens) => answer(api, id, &chat, Some(tokens)),
        Fault::Endless(status) => endless(api, status, chat.stream, state.endless.clone()),
        Fault::Malformed => {
            let mut response = Response::new(full(
                r#"{"id": "chatcmpl-broken", "choices": [{"message": "#,
            ));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Fault::RateLimit(hint) => {
            let (response, announced) = rate_limit_fault(api, &hint);
            if let Some(at) = announced {
                lock(&state.limiter).announce(&caller, at);
            }
            response
        }
        Fault::Quota => refused(api, Refusal::Quota),
        Fault::TooLarge => refused(api, Refusal::TooLarge),
        Fault::SpendLimit => refused(api, Refusal::SpendLimit),
        Fault::Status(status) => json(status_code(status), &api::status_error(api, status)),
        Fault::ShouldRetry(status, flag) => {
            let mut response = json(status_code(status), &api::status_error(api, status));
            response.headers_mut().insert(
                "x-should-retry",
                HeaderValue::from_static(if flag { "true" } else { "false" }),
            );
            response
        }
    };
    Ok(finish(&state, record, &fault_name, response))
}

/// The script first; then rate-limit mode — the token limits checked, then
/// the request limit, then the tokens spent: a refusal spends nothing —;
/// then an answer.
fn plan(state: &State, api_key: &str, caller: &str, now: Instant, cost: TokenCost) -> Plan {
    let mut limiter = lock(&state.limiter);
    let early = limiter.is_early(caller, now);
    let scripted = lock(&state.script).pop_front();
    let chaotic = || {
        state
            .config
            .chaos
            .map(|chaos| chaos.pick(&mut lock(&state.chaos)))
    };
    let mut plan = Plan {
        fault: Fault::Ok,
        early,
        refused: None,
        tokens_refused: None,
        quota: None,
        token_quotas: Vec::new(),
    };
    if let Some(fault) = scripted.or_else(chaotic) {
        plan.fault = fault;
        return plan;
    }
    let tokens = state.config.tokens;
    if let Some(tokens) = tokens {
        match limiter.check_tokens(tokens, api_key, cost, now) {
            Ok(quotas) => plan.token_quotas = quotas,
            Err(refusal) => {
                plan.fault = Fault::RateLimit(Hint::None);
                plan.token_quotas = limiter
                    .check_tokens(tokens, api_key, TokenCost::default(), now)
                    .unwrap_or_default();
                if !refusal.too_large {
                    limiter.announce(caller, now + refusal.wait);
                }
                plan.tokens_refused = Some(refusal);
                return plan;
            }
        }
    }
    match state
        .config
        .rate_limit
        .map(|limit| limiter.admit(limit, api_key, caller, now))
    {
        Some(Admission::Refused { wait, early }) => {
            plan.fault = Fault::RateLimit(Hint::None);
            plan.early = early;
            plan.refused = Some(wait);
            // Nothing spent: say what the token buckets hold.
            if let Some(tokens) = tokens {
                plan.token_quotas = limiter
                    .check_tokens(tokens, api_key, TokenCost::default(), now)
                    .unwrap_or_default();
            }
        }
        Some(Admission::Allowed(quota)) => plan.quota = quota,
        None if tokens.is_none() => {
            plan.fault = state.config.fallback.clone().unwrap_or(Fault::Ok);
        }
        None => {}
    }
    if plan.refused.is_none()
        && let Some(tokens) = tokens
    {
        limiter.spend_tokens(tokens, api_key, cost, now);
    }
    plan
}

fn finish(
    state: &State,
    mut record: RequestRecord,
    fault: &str,
    response: Response<Body>,
) -> Response<Body> {
    record.fault = fault.to_string();
    record.status = if fault == "drop" || fault.starts_with("stream-dies") && !record.stream {
        0
    } else {
        response.status().as_u16()
    };
    if state.config.echo {
        eprintln!("{}", log_line(&record));
    }
    lock(&state.log).push(record);
    response
}

/// One request on one line: when, where, the client's attempt header and
/// idempotency key, and what the server did.
fn log_line(record: &RequestRecord) -> String {
    let mut line = format!("{:>9.3}s {}", record.at.as_secs_f64(), record.path);
    if record.stream {
        line.push_str(" stream");
    }
    if let Some(attempt) = record.attempt {
        line.push_str(&format!(" attempt={attempt}"));
    }
    if let Some(key) = &record.idempotency_key {
        line.push_str(&format!(" key={key}"));
    }
    match record.status {
        0 => line.push_str(&format!(" -> no answer ({})", record.fault)),
        status => line.push_str(&format!(" -> {status} {}", record.fault)),
    }
    if record.early {
        line.push_str(" EARLY: before the time this caller was told");
    }
    line
}

/// The answer when waiting cannot help, in the API's own words.
fn refused(api: Api, refusal: Refusal) -> Response<Body> {
    let (status, body) = api::refusal(api, refusal);
    json(status_code(status), &body)
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn empty() -> Body {
    full(Bytes::new())
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The answer, whole or streamed; `dies_after` cuts a stream off after that many tokens.
fn answer(api: Api, id: u64, chat: &api::ChatRequest, dies_after: Option<usize>) -> Response<Body> {
    let text = api::answer_for(&chat.prompt);
    if !chat.stream {
        return json(
            StatusCode::OK,
            &api::completion(api, id, &chat.model, &text),
        );
    }
    let (mut sender, body) = http_body_util::channel::Channel::<Bytes, io::Error>::new(8);
    let model = chat.model.clone();
    tokio::spawn(async move {
        let mut events = vec![api::stream_start(api, id, &model)];
        let tokens = api::tokens(&text);
        let sent = dies_after.unwrap_or(tokens.len()).min(tokens.len());
        events.extend(
            tokens[..sent]
                .iter()
                .map(|token| api::stream_token(api, id, &model, token)),
        );
        for event in events.into_iter().filter(|e| !e.is_empty()) {
            if sender.send_data(Bytes::from(event)).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        match dies_after {
            Some(_) => sender.abort(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "scripted stream death",
            )),
            None => {
                let _ = sender
                    .send_data(Bytes::from(api::stream_end(api, id, &model)))
                    .await;
            }
        }
    });
    let mut response = Response::new(body.boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `status` with a body that never ends: until the client stops reading and
/// drops the connection, each chunk counted in `sent`.
fn endless(api: Api, status: u16, stream: bool, sent: Arc<AtomicU64>) -> Response<Body> {
    let (start, chunk, content_type): (String, String, &'static str) = match (status, stream) {
        (200, true) => {
            let token = api::stream_token(api, 0, "endless", "and on ");
            (api::stream_start(api, 0, "endless"), token.repeat(64), "text/event-stream")
        }
        (200, false) => (
            r#"{"id": "chatcmpl-endless", "choices": [{"message": {"role": "assistant", "content": ""#
                .to_string(),
            "and on ".repeat(1024),
            "application/json",
        ),
        _ => (
            "<html><head><title>502 Bad Gateway</title></head><body>".to_string(),
            "<p>The gateway is having a very long day.</p>\n".repeat(160),
            "text/html",
        ),
    };
    let (mut sender, body) = http_body_util::channel::Channel::<Bytes, io::Error>::new(4);
    tokio::spawn(async move {
        let chunk = Bytes::from(chunk);
        let mut next = Bytes::from(start);
        loop {
            let len = next.len() as u64;
            if sender.send_data(next).await.is_err() {
                return;
            }
            sent.fetch_add(len, Ordering::Relaxed);
            next = chunk.clone();
        }
    });
    let mut response = Response::new(body.boxed());
    *response.status_mut() = status_code(status);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A 429 with `hint`'s headers, and the instant those headers really announce
/// (dates are truncated to what their format can say), for spotting callers
/// who come back early.
fn rate_limit_fault(api: Api, hint: &Hint) -> (Response<Body>, Option<Instant>) {
    let mut response = json(StatusCode::TOO_MANY_REQUESTS, &api::status_error(api, 429));
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    // The monotonic clock first: the wall-clock time read after it can only be
    // later, so an announced instant is never later than the header says.
    let instant = Instant::now();
    let now = SystemTime::now();
    let until = |at: Option<SystemTime>| at.and_then(|at| at.duration_since(now).ok());
    let announced = match hint {
        Hint::None => None,
        Hint::RetryAfterSecs(s) => {
            set("retry-after", s.to_string());
            Duration::try_from_secs_f64(*s).ok()
        }
        Hint::RetryAfterMs(ms) => {
            set("retry-after-ms", ms.to_string());
            Duration::try_from_secs_f64(ms / 1000.0).ok()
        }
        Hint::RetryAfterDate(secs) => {
            let date = httpdate::fmt_http_date(now + Duration::from_secs(*secs));
            set("retry-after", date.clone());
            until(httpdate::parse_http_date(&date).ok())
        }
        Hint::RawRetryAfter(raw) => {
            set("retry-after", raw.clone());
            None
        }
        Hint::OpenAiReset(go) => {
            set("x-ratelimit-limit-requests", "500".into());
            set("x-ratelimit-remaining-requests", "0".into());
            set("x-ratelimit-reset-requests", go.clone());
            set("x-ratelimit-limit-tokens", "30000".into());
            set("x-ratelimit-remaining-tokens", "29000".into());
            set("x-ratelimit-reset-tokens", "2ms".into());
            humantime::parse_duration(go).ok()
        }
        Hint::AnthropicReset(wait) => {
            let reset = humantime::format_rfc3339_millis(now + *wait).to_string();
            set("anthropic-ratelimit-requests-limit", "50".into());
            set("anthropic-ratelimit-requests-remaining", "0".into());
            set("anthropic-ratelimit-requests-reset", reset.clone());
            set("anthropic-ratelimit-tokens-remaining", "20000".into());
            set(
                "anthropic-ratelimit-tokens-reset",
                humantime::format_rfc3339_seconds(now).to_string(),
            );
            until(humantime::parse_rfc3339(&reset).ok())
        }
    };
    (response, announced.map(|wait| instant + wait))
}

/// Rate-limit mode's refusal. Realistic: `retry-after` in whole seconds rounded
/// up, as OpenAI sends it, beside the reset in milliseconds. Reserving: every
/// hint form agrees on the reserved slot, `retry-after-ms` first.
fn rate_limited(api: Api, wait: Duration, limit: RateLimit) -> Response<Body> {
    let mut response = json(StatusCode::TOO_MANY_REQUESTS, &api::status_error(api, 429));
    let headers = response.headers_mut();
    let quota = Quota {
        remaining: 0,
        reset: wait,
    };
    quota_headers(headers, quota, limit);
    let seconds = wait.as_secs_f64().ceil().to_string();
    set_header(headers, "retry-after", &seconds);
    if limit.reserve {
        set_header(headers, "retry-after-ms", &wait.as_millis().to_string());
    }
    response
}

/// A refusal for tokens: 429 with the API's message (OpenAI's says how long),
/// `retry-after` in whole seconds (Anthropic's form); a request larger than
/// the bucket can hold is "too large", which waiting cannot fix.
fn token_refused(api: Api, model: &str, refusal: &TokenRefusal) -> Response<Body> {
    if refusal.too_large {
        return refused(api, Refusal::TooLarge);
    }
    let body = api::token_refusal(
        api,
        model,
        refusal.name,
        refusal.limit,
        refusal.used,
        refusal.requested,
        refusal.wait,
    );
    let mut response = json(StatusCode::TOO_MANY_REQUESTS, &body);
    if api == Api::Anthropic {
        let seconds = refusal.wait.as_secs_f64().ceil().max(1.0).to_string();
        set_header(response.headers_mut(), "retry-after", &seconds);
    }
    response
}

/// What each token limit has left, as the API says it: OpenAI's
/// `x-ratelimit-{limit,remaining,reset}-tokens` (a Go duration to full),
/// Anthropic's `anthropic-ratelimit-{input,output}-tokens-{limit,remaining,reset}`
/// (remaining rounded down to thousands, the reset an RFC 3339 time).
fn token_headers(api: Api, headers: &mut http::HeaderMap, quotas: &[TokenQuota]) {
    for quota in quotas {
        match (api, quota.name) {
            (Api::OpenAi, "tokens") => {
                set_header(
                    headers,
                    "x-ratelimit-limit-tokens",
                    &quota.limit.to_string(),
                );
                set_header(
                    headers,
                    "x-ratelimit-remaining-tokens",
                    &quota.remaining.to_string(),
                );
                set_header(
                    headers,
                    "x-ratelimit-reset-tokens",
                    &api::go_duration(quota.reset),
                );
            }
            (Api::Anthropic, "input tokens" | "output tokens") => {
                let prefix = match quota.name {
                    "input tokens" => "anthropic-ratelimit-input-tokens",
                    _ => "anthropic-ratelimit-output-tokens",
                };
                let reset = humantime::format_rfc3339_seconds(SystemTime::now() + quota.reset);
                let rounded = quota.remaining / 1000 * 1000;
                let header = |suffix: &str| format!("{prefix}-{suffix}");
                set_header(headers, &header("limit"), &quota.limit.to_string());
                set_header(headers, &header("remaining"), &rounded.to_string());
                set_header(headers, &header("reset"), &reset.to_string());
            }
            _ => {}
        }
    }
}

/// What the bucket has left, as OpenAI says it on every response.
fn quota_headers(headers: &mut http::HeaderMap, quota: Quota, limit: RateLimit) {
    if limit.limit_header {
        set_header(
            headers,
            "x-ratelimit-limit-requests",
            &limit.per_minute().to_string(),
        );
    }
    set_header(
        headers,
        "x-ratelimit-remaining-requests",
        &quota.remaining.to_string(),
    );
    let reset = format!("{}ms", quota.reset.as_millis());
    set_header(headers, "x-ratelimit-reset-requests", &reset);
}

fn set_header(headers: &mut http::HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        http::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(name, value);
    }
}
