//! A `RateLimiter`'s state in Redis, shared by every process of a fleet: the
//! same state machine (`limiter.lua` mirrors `state.rs`), one script call — one
//! round trip — per update. Redis is never a new way to fail: a slow or failed
//! call marks the store degraded, the limiter falls back to its in-process
//! state, and a background probe brings it back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

use super::state::{Check, State, Ticket};
use super::time::{Micros, Time};
use super::{RateLimiter, Sent, Turn};
use crate::Throttled;
use crate::redis_store::{self, BOUND, PROBE_EVERY};

/// How long a read of the schedule serves every waiter of this process.
const READ_FRESH: Duration = Duration::from_millis(50);

static SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("limiter.lua")));

/// The store: a connection that reconnects by itself, the key, and whether the
/// last call went through.
pub(crate) struct Shared {
    conn: ConnectionManager,
    key: String,
    healthy: AtomicBool,
    probing: AtomicBool,
    /// The last read of the schedule, shared by the waiters of this process.
    read: tokio::sync::Mutex<Option<Read>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("key", &self.key)
            .field("healthy", &self.is_healthy())
            .finish()
    }
}

#[derive(Clone)]
struct Read {
    taken: Instant,
    now: Micros,
    state: State<Micros>,
}

/// What the store said to a caller asking for a turn.
pub(crate) enum Reply {
    /// No schedule running: go now.
    Free,
    /// A ticket whose turn is now, sent at this instant of the store's clock.
    Go(Micros),
    /// A ticket: look again at `at`, when the store's clock said `now`.
    Wait {
        ticket: Ticket,
        at: Micros,
        now: Micros,
    },
    /// No turn in time: it was this far away.
    Late(Duration),
}

/// What a record or observation tells the store.
pub(crate) enum Update {
    Success {
        sent: Option<Micros>,
    },
    Throttle {
        sent: Option<Micros>,
        hint: Option<Duration>,
    },
    Overloaded {
        hint: Duration,
    },
    Observe {
        limit: Option<u64>,
        reset: Option<Duration>,
    },
    Release {
        ticket: Ticket,
    },
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn opt(value: Option<u64>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}

impl Shared {
    /// A store for `key` at `url`; the connection is made lazily and remade
    /// after failures, so a Redis that is down now is not an error.
    pub(crate) fn new(url: &str, key: &str) -> redis::RedisResult<Arc<Shared>> {
        let conn = redis_store::connection(url)?;
        Ok(Arc::new(Shared {
            conn,
            key: format!("ai-retry:limiter:{key}"),
            healthy: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            read: tokio::sync::Mutex::new(None),
        }))
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// One script call, cut off after [`BOUND`].
    async fn call(&self, op: &str, args: &[String]) -> Option<redis::Value> {
        let mut invocation = SCRIPT.key(&self.key);
        invocation.arg(op).arg("");
        for arg in args {
            invocation.arg(arg);
        }
        let mut conn = self.conn.clone();
        let reply = tokio::time::timeout(BOUND, invocation.invoke_async(&mut conn)).await;
        match reply {
            Ok(Ok(value)) => Some(value),
            _ => None,
        }
    }

    /// Asks for a turn for a caller that may wait up to `max_wait`; `None`
    /// when the store did not answer in time.
    pub(crate) async fn reserve(&self, max_wait: Duration) -> Option<Reply> {
        let value = self
            .call("reserve", &[micros(max_wait).to_string()])
            .await?;
        let (kind, ticket, value, now): (String, u64, String, String) =
            redis::from_redis_value(value).ok()?;
        let (value, now) = (value.parse::<u64>().ok()?, Micros(now.parse().ok()?));
        Some(match kind.as_str() {
            "free" => Reply::Free,
            "go" => Reply::Go(now),
            "wait" => Reply::Wait {
                ticket,
                at: Micros(value),
                now,
            },
            _ => Reply::Late(Duration::from_micros(value)),
        })
    }

    /// Where `ticket` stands, from a read of the schedule that every waiter of
    /// this process shares (one read per [`READ_FRESH`] at most).
    pub(crate) async fn check(
        &self,
        ticket: Ticket,
        latest: Micros,
    ) -> Option<(Check<Micros>, Micros)> {
        let mut read = self.read.lock().await;
        let fresh = read
            .as_ref()
            .is_some_and(|r| r.taken.elapsed() < READ_FRESH);
        if !fresh {
            *read = Some(self.read_state().await?);
        }
        let read = read.as_ref()?;
        let now = Micros(read.now.0 + micros(read.taken.elapsed()));
        Some((read.state.check(ticket, now, latest), now))
    }

    async fn read_state(&self) -> Option<Read> {
        let value = self.call("read", &[]).await?;
        let (_, fields, now, _): (String, Vec<(String, String)>, String, String) =
            redis::from_redis_value(value).ok()?;
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse::<f64>().ok())
        };
        Some(Read {
            taken: Instant::now(),
            now: Micros(now.parse().ok()?),
            state: State::from_fields(field),
        })
    }

    /// Sends an update; `false` when the store did not take it in time.
    pub(crate) async fn update(&self, update: Update) -> bool {
        let (op, args) = match update {
            Update::Success { sent } => (
                "record",
                vec!["ok".into(), opt(sent.map(|s| s.0)), String::new()],
            ),
            Update::Throttle { sent, hint } => (
                "record",
                vec![
                    "throttle".into(),
                    opt(sent.map(|s| s.0)),
                    opt(hint.map(micros)),
                ],
            ),
            Update::Overloaded { hint } => (
                "record",
                vec!["overload".into(), String::new(), micros(hint).to_string()],
            ),
            Update::Observe { limit, reset } => {
                ("observe", vec![opt(limit), opt(reset.map(micros))])
            }
            Update::Release { ticket } => ("release", vec![ticket.to_string()]),
        };
        self.call(op, &args).await.is_some()
    }

    /// Whether Redis answers a PING within [`BOUND`].
    async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        let ping = redis::cmd("PING");
        let reply = tokio::time::timeout(BOUND, ping.query_async::<String>(&mut conn)).await;
        matches!(reply, Ok(Ok(_)))
    }

    /// First contact: shared from the first call when Redis answers now,
    /// degraded (and probing) when it does not.
    async fn connect(self: &Arc<Self>) {
        match self.ping().await {
            true => self.healthy.store(true, Ordering::Release),
            false => self.degrade(),
        }
    }

    /// Marks the store degraded and, once, starts probing for its return.
    pub(crate) fn degrade(self: &Arc<Self>) {
        if self.healthy.swap(false, Ordering::AcqRel) {
            #[cfg(feature = "tracing")]
            tracing::warn!(key = %self.key, "rate limiter: Redis did not answer in time; using in-process state");
        }
        self.probe();
    }

    /// Pings until Redis answers, then marks the store healthy. One probe at a time.
    pub(crate) fn probe(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.probing.store(false, Ordering::Release);
            return;
        };
        let shared = self.clone();
        runtime.spawn(async move {
            loop {
                if shared.ping().await {
                    shared.healthy.store(true, Ordering::Release);
                    shared.probing.store(false, Ordering::Release);
                    #[cfg(feature = "tracing")]
                    tracing::info!(key = %shared.key, "rate limiter: Redis answers again; state shared");
                    return;
                }
                tokio::time::sleep(PROBE_EVERY).await;
            }
        });
    }

    /// Sends `update` without waiting for it; a failure degrades the store.
    pub(crate) fn send(self: &Arc<Self>, update: Update) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let shared = self.clone();
        runtime.spawn(async move {
            if !shared.update(update).await {
                shared.degrade();
            }
        });
    }
}

impl RateLimiter {
    /// Shares this limiter's state — cool-down, pacing schedule, learned rate,
    /// throttle episodes — with every process that shares `key` on the Redis at
    /// `url`: a fleet then behaves like one client of the key. Each turn is one
    /// script call (one round trip); waiting callers of one process share their
    /// reads of the schedule; the keys expire ten minutes after their last use.
    ///
    /// Redis is never a new way to fail: a call that Redis does not answer
    /// within 100 ms uses this process's own state, which keeps learning all
    /// along; the store is then [`Store::Degraded`](super::Store::Degraded)
    /// until a background probe finds Redis again. Only a malformed `url` is an
    /// error: a Redis that is down now is a degraded start. Blocking callers use
    /// the in-process state only.
    ///
    /// ```no_run
    /// use retry_runtime::RateLimiter;
    ///
    /// static OPENAI: RateLimiter = RateLimiter::new();
    ///
    /// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
    /// OPENAI.share_redis("redis://127.0.0.1:6379/", "openai:org-123").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn share_redis(&self, url: &str, key: &str) -> redis::RedisResult<()> {
        let shared = Shared::new(url, key)?;
        let shared = self.shared.get_or_init(|| shared);
        self.engaged.store(true, Ordering::Release);
        shared.connect().await;
        Ok(())
    }

    /// The store, while it answers.
    pub(super) fn healthy_store(&self) -> Option<&Arc<Shared>> {
        self.shared.get().filter(|shared| shared.is_healthy())
    }

    /// A turn from the shared store; `Err(left)` when it did not answer in time,
    /// with the wait still allowed, for the in-process state to give the turn.
    pub(super) async fn shared_turn(
        &self,
        max_wait: Duration,
    ) -> Result<Result<Turn, Throttled>, Duration> {
        let Some(shared) = self.healthy_store() else {
            return Err(max_wait);
        };
        let started = Instant::now();
        let left = || max_wait.saturating_sub(started.elapsed());
        let Some(reply) = shared.reserve(max_wait).await else {
            shared.degrade();
            return Err(left());
        };
        let (ticket, at, now) = match reply {
            Reply::Free => return Ok(Ok(Turn::shared(None))),
            Reply::Go(now) => return Ok(Ok(Turn::shared(Some(now)))),
            Reply::Late(wait) => return Ok(Err(Throttled::new(wait))),
            Reply::Wait { ticket, at, now } => (ticket, at, now),
        };
        let latest = now.saturating_add(max_wait);
        let waiter = SharedWaiter::new(self, shared, ticket);
        let mut wake = tokio::time::Instant::now() + at.saturating_duration_since(now);
        loop {
            Box::pin(tokio::time::sleep_until(wake)).await;
            let Some((check, now)) = shared.check(ticket, latest).await else {
                shared.degrade();
                return Err(left());
            };
            match check {
                Check::Go => return Ok(Ok(waiter.served(now))),
                Check::WaitUntil(at) => {
                    wake = tokio::time::Instant::now() + at.saturating_duration_since(now);
                }
                Check::TooLate(wait) => return Ok(Err(Throttled::new(wait))),
            }
        }
    }
}

impl Turn {
    fn shared(sent: Option<Micros>) -> Turn {
        Turn {
            sent: Sent::Shared(sent.map(|s| s.0)),
        }
    }
}

/// A caller in the shared schedule: counted as waiting, and its ticket given
/// back if it leaves before its turn.
struct SharedWaiter<'a> {
    limiter: &'a RateLimiter,
    shared: &'a Arc<Shared>,
    ticket: Option<Ticket>,
    /// When the wait began, for the wait histogram.
    #[cfg(feature = "metrics")]
    since: Instant,
}

impl<'a> SharedWaiter<'a> {
    fn new(limiter: &'a RateLimiter, shared: &'a Arc<Shared>, ticket: Ticket) -> SharedWaiter<'a> {
        limiter.waiting.fetch_add(1, Ordering::Relaxed);
        SharedWaiter {
            limiter,
            shared,
            ticket: Some(ticket),
            #[cfg(feature = "metrics")]
            since: Instant::now(),
        }
    }

    fn served(mut self, now: Micros) -> Turn {
        self.ticket = None;
        #[cfg(feature = "metrics")]
        crate::metrics::limiter_wait(self.since.elapsed());
        Turn::shared(Some(now))
    }
}

impl Drop for SharedWaiter<'_> {
    fn drop(&mut self) {
        self.limiter.waiting.fetch_sub(1, Ordering::Relaxed);
        if let Some(ticket) = self.ticket {
            self.shared.send(Update::Release { ticket });
        }
    }
}

#[cfg(test)]
mod tests {
    //! The script and the Rust state machine, on the same operations at the
    //! same instants, end in the same state.

    use super::*;
    use crate::limiter::redis_server;
    use crate::limiter::state::Outcome;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Reserve {
            max_wait_ms: u64,
        },
        Success {
            sent_ago_ms: Option<u64>,
        },
        Throttle {
            sent_ago_ms: Option<u64>,
            hint_ms: Option<u64>,
        },
        Overloaded {
            hint_ms: u64,
        },
        Observe {
            limit: Option<u64>,
            reset_ms: Option<u64>,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let ago = proptest::option::of(0..3_000u64);
        prop_oneof![
            3 => (0..10_000u64).prop_map(|max_wait_ms| Op::Reserve { max_wait_ms }),
            3 => ago.clone().prop_map(|sent_ago_ms| Op::Success { sent_ago_ms }),
            2 => (ago, proptest::option::of(0..5_000u64))
                .prop_map(|(sent_ago_ms, hint_ms)| Op::Throttle { sent_ago_ms, hint_ms }),
            1 => (0..5_000u64).prop_map(|hint_ms| Op::Overloaded { hint_ms }),
            1 => (proptest::option::of(1..5_000u64), proptest::option::of(0..3_000u64))
                .prop_map(|(limit, reset_ms)| Op::Observe { limit, reset_ms }),
        ]
    }

    fn run(conn: &mut redis::Connection, key: &str, now: u64, args: &[String]) -> redis::Value {
        let mut invocation = SCRIPT.key(key);
        invocation.arg(&args[0]).arg(now.to_string());
        for arg in &args[1..] {
            invocation.arg(arg);
        }
        invocation.invoke(conn).expect("the script runs")
    }

    fn read(conn: &mut redis::Connection, key: &str) -> State<Micros> {
        let fields: Vec<(String, String)> = redis::cmd("HGETALL").arg(key).query(conn).unwrap();
        State::from_fields(|name| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse().ok())
        })
    }

    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (None, None) => true,
            // Times to a few microseconds (the script keeps µs as doubles), rates
            // to a relative 1e-9 (cube roots differ in the last bits).
            (Some(a), Some(b)) => (a - b).abs() <= 2.0 + a.abs().max(b.abs()) * 1e-9,
            _ => false,
        }
    }

    #[test]
    fn the_script_and_the_state_machine_agree() {
        let server = redis_server::RedisServer::start();
        let client = redis::Client::open(server.url()).unwrap();
        let conn = std::cell::RefCell::new(client.get_connection().unwrap());
        let case = std::cell::Cell::new(0);
        proptest!(ProptestConfig::with_cases(200), |(
            start_ms in 0..1_000u64,
            ops in proptest::collection::vec((0..1_500u64, op()), 1..60),
        )| {
            case.set(case.get() + 1);
            let key = format!("agree:{}", case.get());
            let mut rust = State::<Micros>::new(None);
            let mut successes = 0;
            let mut now = 1_700_000_000_000_000 + start_ms * 1000;
            for (step, (dt_ms, op)) in ops.into_iter().enumerate() {
                now += dt_ms * 1000;
                let t = Micros(now);
                let sent = |ago: Option<u64>| ago.map(|a| Micros(now - a * 1000));
                let text = |v: Option<u64>| v.map_or_else(String::new, |v| v.to_string());
                let args: Vec<String> = match &op {
                    Op::Reserve { max_wait_ms } => {
                        let latest = t.saturating_add(Duration::from_millis(*max_wait_ms));
                        let (kind, value) = if rust.is_idle(t) {
                            rust.sample(t, successes);
                            ("free", now)
                        } else {
                            match rust.reserve(t, latest, successes) {
                                Ok((_, Check::Go)) => ("go", now),
                                Ok((_, Check::WaitUntil(at))) => ("wait", at.0),
                                Ok((_, Check::TooLate(wait))) | Err(wait) => {
                                    ("late", wait.as_micros() as u64)
                                }
                            }
                        };
                        let args = vec!["reserve".into(), (max_wait_ms * 1000).to_string()];
                        let reply: (String, u64, String, String) =
                            redis::from_redis_value(run(&mut conn.borrow_mut(), &key, now, &args)).unwrap();
                        prop_assert_eq!(reply.0.as_str(), kind, "step {}: {:?}", step, op);
                        let lua_value: f64 = reply.2.parse().unwrap();
                        prop_assert!(close(Some(value as f64), Some(lua_value)), "step {}: {:?}: {} vs {}", step, op, value, lua_value);
                        Vec::new()
                    }
                    Op::Success { sent_ago_ms } => {
                        successes += 1;
                        rust.record(t, sent(*sent_ago_ms), Outcome::Success, successes);
                        vec!["record".into(), "ok".into(), text(sent(*sent_ago_ms).map(|s| s.0)), String::new()]
                    }
                    Op::Throttle { sent_ago_ms, hint_ms } => {
                        let hint = hint_ms.map(Duration::from_millis);
                        rust.record(t, sent(*sent_ago_ms), Outcome::Throttle(hint), successes);
                        vec![
                            "record".into(),
                            "throttle".into(),
                            text(sent(*sent_ago_ms).map(|s| s.0)),
                            text(hint_ms.map(|h| h * 1000)),
                        ]
                    }
                    Op::Overloaded { hint_ms } => {
                        let hint = Duration::from_millis(*hint_ms);
                        rust.record(t, None, Outcome::Overloaded(hint), successes);
                        vec!["record".into(), "overload".into(), String::new(), (hint_ms * 1000).to_string()]
                    }
                    Op::Observe { limit, reset_ms } => {
                        if let Some(limit) = limit {
                            rust.learn_limit(t, *limit);
                        }
                        if let Some(reset) = reset_ms {
                            rust.cool_down(t, Duration::from_millis(*reset));
                        }
                        vec!["observe".into(), text(*limit), text(reset_ms.map(|r| r * 1000))]
                    }
                };
                if !args.is_empty() {
                    run(&mut conn.borrow_mut(), &key, now, &args);
                }
                let lua = read(&mut conn.borrow_mut(), &key);
                for ((name, r), (_, l)) in rust.fields().into_iter().zip(lua.fields()) {
                    prop_assert!(close(r, l), "step {}: {:?}: {} rust {:?} lua {:?}", step, op, name, r, l);
                }
            }
        });
    }
}
