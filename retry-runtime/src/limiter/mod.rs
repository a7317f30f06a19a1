//! `RateLimiter`: one upstream limit shared by every caller. A turn before each
//! attempt, paid for in every dimension of the limit (requests, tokens), a
//! cool-down every caller waits out, limits learned from the server's headers
//! and a request rate from throttles.

mod cost;
mod handed;
#[cfg(all(test, feature = "redis"))]
#[path = "../../tests/support/redis_server.rs"]
mod redis_server;
#[cfg(feature = "redis")]
mod shared;
mod state;
mod time;
#[cfg(feature = "tokio")]
mod wait_async;
mod wait_blocking;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::http::{self, HeaderMap};
use crate::{Clock, ErrorClass};

pub use cost::{Cost, Limits};
use state::{Amounts, Check, Outcome, REQUESTS, State, Ticket};

/// A rate limit shared by every caller of one upstream limit: an API key, an
/// organisation, a model. Per-call retry cannot respect a shared limit — told
/// "retry after 1 s", a hundred callers all come back together — so the state
/// that respects it lives here, shared by every call that names it:
///
/// 1. **A turn before every attempt**, the first included, in arrival order:
///    when every limit of the key can pay the call's [`Cost`] — one request,
///    and its tokens if it names them. Waiting for a turn does not use up an
///    attempt, and a large call is not overtaken.
/// 2. **A shared cool-down**: a `RateLimit` or `Overloaded` failure with a server
///    hint holds back every caller until the hint has passed (a hint past a
///    minute closes the key a minute, then one call a minute probes it); so
///    does a `remaining: 0` with a reset for a limit not known. A hint in
///    whole seconds on a refusal whose own answer told a known limit what was
///    left is that limit's reset rounded up: the others wait only what the
///    rounding cannot add, the bucket pacing the next turn from the server's
///    count; the refused call still waits the whole hint.
/// 3. **Limits learned**: each limit — requests, tokens, input and output
///    tokens — from its `-limit` header (or [`Limits`] at construction), paced
///    a margin below it, each response's `-remaining` re-anchoring what is
///    left ([`observe_at`](RateLimiter::observe_at)); `remaining: 0` on a known
///    limit means the next call waits for its cost to refill. With nothing
///    known there is no pacing: a turn is one atomic read. The request rate
///    is adaptive too: lowered to 70% once per throttle *episode* and
///    climbing back with successes (CUBIC, as the AWS SDKs' adaptive mode),
///    never below 0.5 requests per second.
/// 4. **Bounded like a sleep**: a caller whose turn would come after more than
///    `max_delay` of waiting or past its `deadline` gets no turn and sends no
///    request (see [`Throttled`](crate::Throttled)).
///
/// ```
/// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
/// use ai_retry::RateLimiter;
/// use ai_retry::http::{HeaderMap, HeaderValue};
///
/// static OPENAI: RateLimiter = RateLimiter::new();
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-limit-requests", HeaderValue::from_static("600"));
/// OPENAI.observe(&headers);
/// // 600 a minute is 10 a second: turns are paced a margin below that.
/// let rate = OPENAI.snapshot().rate.unwrap();
/// assert!(rate > 9.0 && rate < 10.0);
/// ```
#[derive(Debug)]
pub struct RateLimiter {
    /// `false` while turns need no look at the state: the success path's only read.
    engaged: AtomicBool,
    successes: AtomicU64,
    waiting: AtomicU32,
    /// The last announced request limit, for the snapshot and the store's seed.
    known_limit: AtomicU64,
    /// The limits given at construction, which `reset` goes back to.
    seed: Limits,
    /// Whether the limits came from the server's headers.
    learned: AtomicBool,
    /// Whether an answer that says nothing about the limit was reported.
    answered: AtomicBool,
    state: Mutex<State<Instant>>,
    /// The turns this process's schedule handed out lately (taken under the
    /// state's lock).
    handed: Mutex<handed::Handed>,
    /// Wakes the waiting callers when the schedule moved sooner (a response's
    /// `remaining`, a refund, a reset): a call that goes late is paid for but
    /// not yet counted by the server, and a response then over-credits it.
    #[cfg(feature = "tokio")]
    sooner: tokio::sync::Notify,
    /// The fleet's state in Redis, once `share_redis` was called.
    #[cfg(feature = "redis")]
    shared: std::sync::OnceLock<std::sync::Arc<shared::Shared>>,
}

/// A turn given by a [`RateLimiter`]: pass it back with the attempt's outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Turn {
    sent: Sent,
}

/// When a turn was given, and by which store: a schedule's send time is what
/// tells a throttle of the current episode from one of an earlier wave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Sent {
    /// No schedule was running.
    #[default]
    Unpaced,
    /// This process's schedule, at this instant.
    Local(Instant),
    /// The shared store's, at this microsecond of its clock (`None`: no
    /// schedule was running there).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Shared(Option<u64>),
}

impl Turn {
    /// A turn given while no schedule was running.
    pub const UNPACED: Turn = Turn {
        sent: Sent::Unpaced,
    };

    /// When this process's schedule gave it.
    fn local_sent(self) -> Option<Instant> {
        match self.sent {
            Sent::Local(at) => Some(at),
            _ => None,
        }
    }
}

/// What a [`RateLimiter`] knows, at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct LimiterSnapshot {
    /// The pacing rate in requests per second; `None` while unknown (no pacing).
    pub rate: Option<f64>,
    /// The limit the server last announced, in requests per minute.
    pub limit_per_minute: Option<u64>,
    /// The token limit per minute (input and output together), if known.
    pub tokens_per_minute: Option<u64>,
    /// The input-token limit per minute, if known.
    pub input_tokens_per_minute: Option<u64>,
    /// The output-token limit per minute, if known.
    pub output_tokens_per_minute: Option<u64>,
    /// How long the current cool-down has left.
    pub cool_down: Duration,
    /// How long a caller arriving now would wait for its turn: the cool-down
    /// and the queue ahead of it.
    pub next_turn: Duration,
    /// Callers waiting for a turn now.
    pub waiting: u32,
    /// Throttle episodes seen: each lowered the rate once.
    pub throttles: u64,
    /// Whether a hint longer than a minute holds the key: one call a minute
    /// goes, as a probe, until one succeeds.
    pub probing: bool,
    /// Where the state lives.
    pub store: Store,
}

/// Where a [`RateLimiter`]'s state lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Store {
    /// In this process only.
    Local,
    /// In Redis, shared by every process that names the same key
    /// (`share_redis`, feature `redis`).
    Shared,
    /// Shared, but Redis did not answer in time: this process uses its own
    /// state until a background probe finds Redis again.
    Degraded,
}

/// What [`RateLimiter::reserve`] found.
enum Reserve {
    /// No schedule is running: go now.
    Free,
    /// A place in the schedule whose turn has come: go now.
    Go(Turn),
    /// A place in the schedule, when to look again, and the latest it may come.
    Ticket(Ticket, Instant, Instant),
    /// The turn would come too late: this far away.
    TooLate(Duration),
}

impl RateLimiter {
    /// A limiter that knows nothing yet: no pacing until the server says more.
    pub const fn new() -> RateLimiter {
        RateLimiter::with_limits(Limits::NONE)
    }

    /// A limiter that starts from a known limit of `requests` a minute (paced a
    /// margin below it) and still learns. `0` is the same as [`new`](RateLimiter::new).
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::RateLimiter;
    ///
    /// static ANTHROPIC: RateLimiter = RateLimiter::per_minute(50);
    /// assert_eq!(ANTHROPIC.snapshot().limit_per_minute, Some(50));
    /// ```
    pub const fn per_minute(requests: u32) -> RateLimiter {
        RateLimiter::with_limits(Limits::NONE.requests(requests))
    }

    /// A limiter that starts from these limits (see [`Limits`]) and still learns.
    pub const fn with_limits(limits: Limits) -> RateLimiter {
        let per_dimension = limits.per_dimension();
        RateLimiter {
            // The first turn looks at the state once, to start measuring.
            engaged: AtomicBool::new(true),
            successes: AtomicU64::new(0),
            waiting: AtomicU32::new(0),
            known_limit: AtomicU64::new(per_dimension[REQUESTS] as u64),
            seed: limits,
            learned: AtomicBool::new(false),
            answered: AtomicBool::new(false),
            state: Mutex::new(State::new(per_dimension)),
            handed: Mutex::new(handed::Handed::new()),
            #[cfg(feature = "tokio")]
            sooner: tokio::sync::Notify::const_new(),
            #[cfg(feature = "redis")]
            shared: std::sync::OnceLock::new(),
        }
    }

    /// The limiter's clock: what [`observe_at`](RateLimiter::observe_at)
    /// wants for a request's send time. tokio's, which paused-clock tests
    /// control, inside a runtime; std's outside.
    pub fn now() -> Instant {
        now()
    }

    /// [`observe_at`](RateLimiter::observe_at) a response that arrived now.
    /// When answers take a while (a completion: seconds), pass the request's
    /// send time to `observe_at`: what a response says was true when its
    /// request was admitted.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::RateLimiter;
    /// use ai_retry::http::{HeaderMap, HeaderValue};
    /// use std::time::Duration;
    ///
    /// let limiter = RateLimiter::new();
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-ratelimit-remaining-requests", HeaderValue::from_static("0"));
    /// headers.insert("x-ratelimit-reset-requests", HeaderValue::from_static("20s"));
    /// limiter.observe(&headers);
    /// // No limit known: the reset is a cool-down.
    /// assert!(limiter.snapshot().cool_down > Duration::from_secs(19));
    /// ```
    pub fn observe(&self, headers: &HeaderMap) {
        self.observe_at(headers, now());
    }

    /// Learns from the headers of a response to a request sent at `sent`
    /// (from [`RateLimiter::now`]): every limit announced
    /// (`x-ratelimit-limit-{requests,tokens}`,
    /// `anthropic-ratelimit-{requests,input-tokens,output-tokens}-limit`, per
    /// minute), and what each had left when the request was admitted
    /// (`-remaining`), which re-anchors that limit's bucket at `sent` — so
    /// the calls granted since are still counted. `remaining: 0` on a known
    /// limit makes the next call wait for its own cost to refill; on a limit
    /// not known, the reset (see [`http::reset_hint_at`]) is a cool-down.
    /// Call it on every response, successes and refusals.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::RateLimiter;
    /// use ai_retry::http::{HeaderMap, HeaderValue};
    ///
    /// let limiter = RateLimiter::new();
    /// let sent = RateLimiter::now();
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-ratelimit-limit-tokens", HeaderValue::from_static("60000"));
    /// headers.insert("x-ratelimit-remaining-tokens", HeaderValue::from_static("58800"));
    /// limiter.observe_at(&headers, sent);
    /// assert_eq!(limiter.snapshot().tokens_per_minute, Some(60_000));
    /// ```
    pub fn observe_at(&self, headers: &HeaderMap, sent: Instant) {
        let quotas = http::quotas(headers).each();
        let reset = http::reset_hint_at(headers, SystemTime::now());
        if quotas
            .iter()
            .all(|q| q.limit.is_none() && q.remaining.is_none())
            && reset.is_none()
        {
            return;
        }
        let now = now();
        let sent = sent.min(now);
        let mut state = self.lock();
        let paid = state.paid(now);
        for (d, quota) in quotas.iter().enumerate() {
            if let Some(limit) = quota.limit {
                state.learn(d, now, limit);
                self.learned.store(true, Ordering::Relaxed);
                if d == REQUESTS {
                    self.known_limit.store(limit, Ordering::Relaxed);
                }
            }
        }
        let known = state.limits();
        // A call of a burst handed out just after this one's send may have
        // reached the server first: counted too, as a burst's answers may
        // only lower what a bucket holds.
        let handed = self.handed().by(sent + state::BURST);
        let mut cooled = None;
        for (d, quota) in quotas.iter().enumerate() {
            match (quota.remaining, known[d]) {
                (Some(remaining), Some(_)) => {
                    state.resync(d, now, sent, remaining, handed.map(|h| h[d]));
                }
                // Exhausted with no limit to pace by: wait for the reset.
                (Some(0), None) => cooled = reset,
                _ => {}
            }
        }
        if let Some(reset) = cooled {
            state.cool_down(now, reset);
        }
        self.settle(&state, now);
        self.wake_if_sooner(&state, paid, now);
        drop(state);
        #[cfg(feature = "redis")]
        if let Some(shared) = self.healthy_store() {
            shared.send(shared::Update::Observe {
                quotas: quotas.map(|q| (q.limit, q.remaining)),
                reset: cooled,
                sent: shared.store_time(sent, now),
                handed: shared.handed_by(sent + state::BURST),
            });
        }
    }

    /// What governs the next turn now: while shared, the store's state (as
    /// this process last read it: every turn and report reads it back, and a
    /// read older than 50 ms is refreshed in the background for the next
    /// look); while local or degraded, this process's own.
    pub fn snapshot(&self) -> LimiterSnapshot {
        let store = self.store();
        #[cfg(feature = "redis")]
        if store == Store::Shared
            && let Some((state, now)) = self.shared.get().and_then(|shared| shared.view())
        {
            return self.snapshot_of(&state, now, store);
        }
        let now = now();
        let state = self.lock();
        self.snapshot_of(&state, now, store)
    }

    fn snapshot_of<T: time::Time>(
        &self,
        state: &State<T>,
        now: T,
        store: Store,
    ) -> LimiterSnapshot {
        let known = self.known_limit.load(Ordering::Relaxed);
        let limits = state.limits();
        LimiterSnapshot {
            rate: state.rate(),
            limit_per_minute: state.limit_per_minute().or((known > 0).then_some(known)),
            tokens_per_minute: limits[state::TOKENS],
            input_tokens_per_minute: limits[state::INPUT],
            output_tokens_per_minute: limits[state::OUTPUT],
            cool_down: state.cool_down_left(now),
            next_turn: state.next_turn(now).saturating_duration_since(now),
            waiting: self.waiting.load(Ordering::Relaxed),
            throttles: state.episodes(),
            probing: state.probing(),
            store,
        }
    }

    /// Forgets what was learned — the cool-down or probing, the adaptive rate,
    /// the throttle episodes, a limit learned from headers — and starts again
    /// from the limit given at construction, here and, when shared, in the
    /// store (at once, or on reconnect if Redis does not answer now). An
    /// operator's way out when a server's answer closed the key by mistake.
    /// Callers already waiting keep their order. Other processes of a fleet
    /// follow the store; their own in-process states, used only while Redis
    /// does not answer, keep what they learned.
    ///
    /// ```
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::RateLimiter;
    /// use ai_retry::http::{HeaderMap, HeaderValue};
    /// use std::time::Duration;
    ///
    /// let limiter = RateLimiter::new();
    /// let mut headers = HeaderMap::new();
    /// headers.insert("retry-after", HeaderValue::from_static("86400"));
    /// headers.insert("x-ratelimit-remaining-requests", HeaderValue::from_static("0"));
    /// headers.insert("x-ratelimit-reset-requests", HeaderValue::from_static("24h0m0s"));
    /// limiter.observe(&headers);
    /// assert!(limiter.snapshot().probing);
    /// limiter.reset();
    /// assert_eq!(limiter.snapshot().cool_down, Duration::ZERO);
    /// assert!(!limiter.snapshot().probing);
    /// ```
    pub fn reset(&self) {
        let now = now();
        let mut state = self.lock();
        let paid = state.paid(now);
        let seed = self.seed.per_dimension();
        state.clear(now, seed);
        self.known_limit
            .store(u64::from(seed[REQUESTS]), Ordering::Relaxed);
        self.learned.store(false, Ordering::Relaxed);
        self.answered.store(false, Ordering::Relaxed);
        self.successes.store(0, Ordering::Relaxed);
        self.settle(&state, now);
        self.wake_if_sooner(&state, paid, now);
        drop(state);
        #[cfg(feature = "redis")]
        if let Some(shared) = self.shared.get() {
            shared.send(shared::Update::Clear { limits: self.seed });
        }
    }

    fn store(&self) -> Store {
        #[cfg(feature = "redis")]
        if let Some(shared) = self.shared.get() {
            return match shared.is_healthy() {
                true => Store::Shared,
                false => Store::Degraded,
            };
        }
        Store::Local
    }

    /// A turn at once when no schedule or cool-down is running: one atomic read.
    #[inline]
    pub fn try_turn_now(&self) -> Option<Turn> {
        (!self.engaged.load(Ordering::Acquire)).then_some(Turn::UNPACED)
    }

    /// Reports a success on `turn`: successes raise a lowered rate again.
    #[inline]
    pub fn succeeded(&self, turn: Turn) {
        #[cfg(feature = "redis")]
        if let (Sent::Shared(sent), Some(shared)) = (turn.sent, self.healthy_store()) {
            shared.send(shared::Update::Success {
                sent: sent.map(time::Micros),
            });
        }
        if self.engaged.load(Ordering::Relaxed) {
            let successes = self.successes.fetch_add(1, Ordering::Relaxed) + 1;
            self.record(turn, &state::ONE_REQUEST, Outcome::Success, successes);
        } else {
            // Idle: a plain load and store, no locked instruction. Concurrent
            // successes may count once between them; the count only estimates
            // the admitted rate should a first throttle come.
            let successes = self.successes.load(Ordering::Relaxed);
            self.successes.store(successes + 1, Ordering::Relaxed);
        }
    }

    /// Reports a failure on `turn`: a `RateLimit` lowers the rate (once per
    /// episode) and, with a hint, starts a cool-down; an `Overloaded` with a hint
    /// starts a cool-down; other failures say nothing about the limit.
    pub fn failed(&self, turn: Turn, class: ErrorClass, hint: Option<Duration>) {
        self.failed_costing(turn, Cost::NONE, class, hint);
    }

    /// [`failed`](RateLimiter::failed) for a call that took its turn paying
    /// `cost`: a refused call's tokens were never spent, and are given back.
    pub fn failed_costing(
        &self,
        turn: Turn,
        cost: Cost,
        class: ErrorClass,
        hint: Option<Duration>,
    ) {
        let outcome = match (class, hint) {
            (ErrorClass::RateLimit, hint) => Outcome::Throttle(hint),
            (ErrorClass::Overloaded, Some(hint)) => Outcome::Overloaded(hint),
            // No answer came back: nothing learned.
            (ErrorClass::Connection | ErrorClass::Timeout, _) => return,
            // An answer, but not about the limit.
            _ => return self.answered(turn),
        };
        let successes = self.successes.load(Ordering::Relaxed);
        #[cfg(feature = "redis")]
        if let (Sent::Shared(sent), Some(shared)) = (turn.sent, self.healthy_store()) {
            let sent = sent.map(time::Micros);
            shared.send(match outcome {
                Outcome::Throttle(hint) => shared::Update::Throttle { sent, hint, cost },
                Outcome::Overloaded(hint) => shared::Update::Overloaded { hint },
                Outcome::Success => shared::Update::Success { sent },
            });
        }
        self.record(turn, &cost.amounts(), outcome, successes);
    }

    /// An answer came back that says nothing about the limit: first contact,
    /// if it still paces, is over. Once per limiter (until `reset`).
    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    fn answered(&self, turn: Turn) {
        if self.answered.swap(true, Ordering::Relaxed) {
            return;
        }
        #[cfg(feature = "redis")]
        if let (Sent::Shared(_), Some(shared)) = (turn.sent, self.healthy_store()) {
            shared.send(shared::Update::Answered);
        }
        let now = now();
        let mut state = self.lock();
        let paid = state.paid(now);
        state.hear(now);
        self.settle(&state, now);
        self.wake_if_sooner(&state, paid, now);
    }

    fn record(&self, turn: Turn, cost: &Amounts, outcome: Outcome, successes: u64) {
        let now = now();
        let mut state = self.lock();
        let paid = state.paid(now);
        // A shared turn's send time is on the store's clock: this process's
        // state learns its cool-downs, the store counts its episodes.
        state.record(now, turn.local_sent(), cost, outcome, successes);
        self.settle(&state, now);
        self.wake_if_sooner(&state, paid, now);
    }

    /// Looks for a turn for a caller arriving now that may wait up to
    /// `max_wait` and will spend `cost`.
    fn reserve(&self, max_wait: Duration, cost: &Amounts) -> Reserve {
        let now = now();
        let successes = self.successes.load(Ordering::Relaxed);
        let mut state = self.lock();
        if state.is_idle(now) {
            state.sample(now, successes);
            self.settle(&state, now);
            return Reserve::Free;
        }
        let latest = latest(now, max_wait);
        let reserved = state.reserve(now, latest, cost, successes);
        self.settle(&state, now);
        match reserved {
            Ok((ticket, Check::WaitUntil(at))) => Reserve::Ticket(ticket, at, latest),
            Ok((ticket, Check::Go)) => {
                self.hand(now, &ticket, cost);
                #[cfg(feature = "metrics")]
                crate::metrics::limiter_wait(Duration::ZERO);
                Reserve::Go(Turn {
                    sent: Sent::Local(now),
                })
            }
            Ok((_, Check::TooLate(wait))) | Err(wait) => Reserve::TooLate(wait),
        }
    }

    /// Where `ticket` stands now.
    fn recheck(&self, ticket: &Ticket, cost: &Amounts, latest: Instant) -> Check<Instant> {
        let now = now();
        let mut state = self.lock();
        let check = state.check(ticket, cost, now, latest);
        if check == Check::Go {
            state.granted(now, ticket, cost);
            self.hand(now, ticket, cost);
            self.settle(&state, now);
        }
        check
    }

    fn release(&self, ticket: &Ticket, cost: &Amounts) {
        self.lock().release(ticket, cost);
    }

    /// The fast path is open exactly while the state is idle and not shared.
    /// Called under the state's lock after every change, which is also when a
    /// shared limiter keeps what it knows current for the store.
    fn settle(&self, state: &State<Instant>, now: Instant) {
        #[cfg(feature = "redis")]
        let shared = self.remember(state, now);
        #[cfg(not(feature = "redis"))]
        let shared = false;
        self.engaged
            .store(shared || !state.is_idle(now), Ordering::Release);
    }

    /// Wakes the waiting callers if the schedule now pays further by `now`
    /// than `before`: their turns may have come. Blocking waiters look again
    /// on their own, at most a recheck later.
    #[cfg_attr(not(feature = "tokio"), allow(unused_variables))]
    fn wake_if_sooner(&self, state: &State<Instant>, before: Amounts, now: Instant) {
        #[cfg(feature = "tokio")]
        if state
            .paid(now)
            .iter()
            .zip(before)
            .any(|(after, before)| *after > before)
        {
            self.sooner.notify_waiters();
        }
    }

    /// Hands what this process knows to its store, if shared; whether it is.
    #[cfg(feature = "redis")]
    fn remember(&self, state: &State<Instant>, now: Instant) -> bool {
        let Some(shared) = self.shared.get() else {
            return false;
        };
        let wall = SystemTime::now();
        let at = |t: Instant| {
            let left = t.saturating_duration_since(now);
            (!left.is_zero()).then(|| wall + left)
        };
        shared.remember(shared::SeedAt {
            limits: state.limits(),
            learned: self.learned.load(Ordering::Relaxed),
            cool_until: state.cool_down_until().and_then(at),
            probing: state.probing(),
            // The store's schedule starts after this process's queue; a
            // queue on the store's positions also says where it ends there,
            // which the store takes if it is still that key.
            busy_until: at(state.next_turn(now)),
            positions: shared.followed().then(|| state.positions()),
        });
        true
    }

    /// The call at `ticket` was handed its turn at `now`. On the store's
    /// positions (this process went on from the store's state while Redis
    /// was away), the store learns it too — its log, and the store itself
    /// once it answers again (else the reconnect's seed carries it) — so that
    /// answers re-anchor the fleet's schedule where these turns went.
    fn hand(&self, now: Instant, ticket: &Ticket, cost: &Amounts) {
        self.handed().push(now, ticket, cost);
        #[cfg(feature = "redis")]
        if let Some(shared) = self.shared.get().filter(|shared| shared.followed()) {
            shared.handed().push(now, ticket, cost);
            if shared.is_healthy() {
                shared.send(shared::Update::Granted {
                    ticket: *ticket,
                    cost: *cost,
                });
            }
        }
    }

    /// Taken under the state's lock, never the other way round.
    fn handed(&self) -> MutexGuard<'_, handed::Handed> {
        self.handed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A poisoned lock means a panic mid-update of plain numbers, all still valid.
    fn lock(&self) -> MutexGuard<'_, State<Instant>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for RateLimiter {
    fn default() -> RateLimiter {
        RateLimiter::new()
    }
}

/// The limiter's clock: tokio's, which paused-clock tests control, when there
/// is one (it is std's outside a runtime), so async and blocking callers agree.
fn now() -> Instant {
    Clock::Tokio.now()
}

/// The latest a caller arriving at `now` that may wait `max_wait` takes its
/// turn: a day at most, as far as an `Instant` surely goes.
fn latest(now: Instant, max_wait: Duration) -> Instant {
    now.checked_add(max_wait)
        .unwrap_or(now + Duration::from_secs(86_400))
}

/// A caller in the schedule: counted as waiting, and its ticket given back if
/// it leaves (gives up, or its future is dropped) before its turn.
struct Waiter<'a> {
    limiter: &'a RateLimiter,
    ticket: Option<Ticket>,
    cost: Amounts,
    /// When the wait began, for the wait histogram.
    #[cfg(feature = "metrics")]
    since: Instant,
}

impl<'a> Waiter<'a> {
    fn new(limiter: &'a RateLimiter, ticket: Ticket, cost: Amounts) -> Waiter<'a> {
        limiter.waiting.fetch_add(1, Ordering::Relaxed);
        Waiter {
            limiter,
            ticket: Some(ticket),
            cost,
            #[cfg(feature = "metrics")]
            since: now(),
        }
    }

    /// The turn has come: the ticket is used.
    fn served(mut self) -> Turn {
        self.ticket = None;
        let now = now();
        #[cfg(feature = "metrics")]
        crate::metrics::limiter_wait(now.saturating_duration_since(self.since));
        Turn {
            sent: Sent::Local(now),
        }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.limiter.waiting.fetch_sub(1, Ordering::Relaxed);
        if let Some(ticket) = self.ticket {
            self.limiter.release(&ticket, &self.cost);
        }
    }
}
