//! A `RateLimiter`'s state in Redis, shared by every process of a fleet: the
//! same state machine (`limiter.lua` mirrors `state.rs`), one script call — one
//! round trip — per update, over the process's one connection to that Redis
//! (`redis_hub`). Redis is never a new way to fail: a call that misses the
//! bound degrades the connection, every caller then uses the in-process state
//! without waiting on Redis, and the connection's probe brings it back —
//! writing what this process learned meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::handed::Handed;
use super::state::{Amounts, Check, DIMENSIONS, Seed, State, Ticket};
use super::time::{Micros, Time};
use super::{Cost, Limits, RateLimiter, Sent, Turn};
use crate::Throttled;
use crate::redis_hub::{self, Call, Link, Member, Place, Task};

/// The epoch of a key that carried none (written by an older script); no
/// key's is as low, being the microsecond it was created.
const NO_EPOCH: u64 = 1;

/// How long a read of the schedule serves every waiter of this process.
const READ_FRESH: Duration = Duration::from_millis(50);

static SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("limiter.lua")));

/// One limiter's key on one Redis link, and this process's view of it.
pub(crate) struct Shared {
    link: Arc<Link>,
    place: Place,
    key: String,
    /// The last state the store sent back, and the read in flight, if any.
    cache: Mutex<Cache>,
    /// What this process knows, kept current by the limiter, for the store.
    seed: Mutex<SeedAt>,
    /// `reset()` was called while the store did not answer: the next
    /// reconnect clears the store first, back to these limits.
    clear_pending: Mutex<Option<Limits>>,
    /// The turns in the store's schedule this process handed out lately.
    handed: Mutex<Handed>,
    /// The epoch of the key whose positions this process's queue is on,
    /// since its state went on from a read of it: 0 never, [`NO_EPOCH`] a
    /// key that carried none.
    followed: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("key", &self.key)
            .field("healthy", &self.link.is_healthy())
            .finish()
    }
}

#[derive(Default)]
struct Cache {
    read: Option<Read>,
    pending: Option<watch::Receiver<Option<Option<Read>>>>,
    /// Whether this process's own state went on from `read` already.
    followed: bool,
}

/// The store's state as of `taken` (this process's clock), when the store's
/// clock said `now`.
#[derive(Clone, Debug)]
pub(crate) struct Read {
    taken: Instant,
    now: Micros,
    state: State<Micros>,
    /// When the key was created: the positions' epoch.
    epoch: Option<u64>,
}

impl Read {
    /// The store's clock now, estimated from this read.
    fn now(&self) -> Micros {
        self.now.saturating_add(self.taken.elapsed())
    }
}

/// [`Seed`] with its times on the wall clock, so it can be kept current under
/// the limiter's lock and sent later from another thread.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SeedAt {
    pub(crate) limits: [Option<u64>; DIMENSIONS],
    pub(crate) learned: bool,
    pub(crate) cool_until: Option<SystemTime>,
    pub(crate) probing: bool,
    pub(crate) busy_until: Option<SystemTime>,
    pub(crate) positions: Option<(Amounts, Amounts)>,
}

impl SeedAt {
    fn at(&self, now: SystemTime) -> Seed {
        let left = |t: Option<SystemTime>| t.and_then(|t| t.duration_since(now).ok());
        Seed {
            limits: self.limits,
            learned: self.learned,
            cool: left(self.cool_until),
            probing: self.probing,
            busy: left(self.busy_until),
            positions: self.positions,
        }
    }
}

/// What the store said to a caller asking for a turn.
pub(crate) enum Reply {
    /// No schedule running: go now.
    Free,
    /// A ticket whose turn is now, sent at this instant of the store's clock.
    Go { ticket: Ticket, now: Micros },
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
        cost: Cost,
    },
    Overloaded {
        hint: Duration,
    },
    /// An answer that says nothing about the limit: first contact is over.
    Answered,
    /// A waiter of this process went, at the place `ticket` costing `cost`:
    /// the store learns what the server can have counted.
    Granted {
        ticket: Ticket,
        cost: Amounts,
    },
    /// A response's headers: each dimension's limit and remaining, a
    /// cool-down to apply, and when its request was sent (the store's clock).
    Observe {
        quotas: [(Option<u64>, Option<u64>); DIMENSIONS],
        reset: Option<Duration>,
        sent: Option<Micros>,
        /// Where the turns this process handed out by then end.
        handed: Option<Amounts>,
    },
    Release {
        ticket: Ticket,
        cost: Amounts,
    },
    /// `reset()`: back to the limits given at construction.
    Clear {
        limits: Limits,
    },
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn opt(value: Option<u64>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}

fn flag(value: bool) -> String {
    if value { "1" } else { "0" }.to_string()
}

/// Numbers as the script reads them back exactly.
fn num(value: f64) -> String {
    format!("{value:?}")
}

/// `n` arguments the script reads as absent.
fn absent(n: usize) -> impl Iterator<Item = String> {
    std::iter::repeat_n(String::new(), n)
}

fn nums(values: impl IntoIterator<Item = f64>) -> impl Iterator<Item = String> {
    values.into_iter().map(num)
}

/// A reply of the script: kind, ticket, value, the store's clock, the state.
type Raw = (String, Vec<String>, String, String, Vec<(String, String)>);

impl Shared {
    pub(crate) fn new(link: Arc<Link>, url: &str, name: &str) -> Arc<Shared> {
        Arc::new(Shared {
            link,
            place: Place::new(url, name),
            key: format!("ai-retry:limiter:{name}"),
            cache: Mutex::default(),
            seed: Mutex::default(),
            clear_pending: Mutex::new(None),
            handed: Mutex::new(Handed::new()),
            followed: AtomicU64::new(0),
        })
    }

    pub(crate) fn handed(&self) -> MutexGuard<'_, Handed> {
        self.handed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where the turns this process handed out by `sent` end in the store's
    /// schedule, if it remembers.
    pub(crate) fn handed_by(&self, sent: Instant) -> Option<Amounts> {
        self.handed().by(sent)
    }

    /// Whether this process's queue is on the store's positions.
    pub(crate) fn followed(&self) -> bool {
        self.followed.load(Ordering::Relaxed) != 0
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.link.is_healthy()
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps what this process knows current (called under the limiter's lock).
    pub(crate) fn remember(&self, seed: SeedAt) {
        *self
            .seed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = seed;
    }

    fn seed_now(&self) -> Seed {
        self.seed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .at(SystemTime::now())
    }

    fn call(&self, op: &str, args: Vec<String>) -> Call {
        let mut all = vec![op.to_string(), String::new()];
        all.extend(args);
        Call {
            script: &SCRIPT,
            keys: vec![self.key.clone()],
            args: all,
        }
    }

    /// Parses a reply and keeps the state it carries for this process's waiters.
    fn take(&self, value: redis::Value) -> Option<(String, Ticket, u64, Micros)> {
        let (kind, ticket, value, now, fields): Raw = redis::from_redis_value(value).ok()?;
        let mut place = [0.0; DIMENSIONS];
        for (position, text) in place.iter_mut().zip(&ticket) {
            *position = text.parse().ok()?;
        }
        let ticket = place;
        let (value, now) = (value.parse::<u64>().ok()?, Micros(now.parse().ok()?));
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse::<f64>().ok())
        };
        let read = Read {
            taken: Instant::now(),
            now,
            state: State::from_fields(field),
            epoch: field("epoch").map(|epoch| epoch as u64),
        };
        let mut cache = self.cache();
        // A reply that left before a newer one came back does not replace it.
        if cache.read.as_ref().is_none_or(|r| r.now <= now) {
            cache.read = Some(read);
            cache.followed = false;
        }
        Some((kind, ticket, value, now))
    }

    /// Asks for a turn for a caller that may wait up to `max_wait`; `None`
    /// when the store did not answer in time. The seed rides along: the store
    /// takes the limit where it has none, and everything where the key was gone.
    pub(crate) async fn reserve(&self, max_wait: Duration, cost: &Amounts) -> Option<Reply> {
        let seed = self.seed_now();
        let mut args = vec![micros(max_wait).to_string()];
        args.extend(nums(*cost));
        args.extend(seed.limits.map(opt));
        args.push(opt(seed.cool.map(micros)));
        let call = self.link.run(self.call("reserve", args));
        let value = self.link.unless_degraded(call).await??;
        let (kind, ticket, value, now) = self.take(value)?;
        Some(match kind.as_str() {
            "free" => Reply::Free,
            "go" => Reply::Go { ticket, now },
            "wait" => Reply::Wait {
                ticket,
                at: Micros(value),
                now,
            },
            _ => Reply::Late(Duration::from_micros(value)),
        })
    }

    /// Where `ticket` stands, from a read of the schedule that every waiter of
    /// this process shares: at most one read per [`READ_FRESH`], and a waiter
    /// that finds one in flight waits for it — never past the bound — rather
    /// than queueing for its own. `None` when the store did not answer.
    pub(crate) async fn check(
        self: &Arc<Self>,
        ticket: &Ticket,
        cost: &Amounts,
        latest: Micros,
    ) -> Option<(Check<Micros>, Micros)> {
        let read = self.fresh_read().await?;
        let now = read.now();
        Some((read.state.check(ticket, cost, now, latest), now))
    }

    async fn fresh_read(self: &Arc<Self>) -> Option<Read> {
        let mut pending = {
            let mut cache = self.cache();
            if let Some(read) = cache.read.as_ref()
                && read.taken.elapsed() < READ_FRESH
            {
                return Some(read.clone());
            }
            match &cache.pending {
                Some(pending) => pending.clone(),
                None => {
                    let (done, pending) = watch::channel(None);
                    let shared = self.clone();
                    redis_hub::spawn(async move {
                        let read = shared.read_here().await;
                        shared.cache().pending = None;
                        let _ = done.send(Some(read));
                    })?;
                    cache.pending = Some(pending.clone());
                    pending
                }
            }
        };
        let read = self
            .link
            .unless_degraded(async move {
                pending
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .map(|r| r.clone())
            })
            .await??;
        read.flatten()
    }

    /// One read of the store, on the Redis thread.
    async fn read_here(self: &Arc<Self>) -> Option<Read> {
        let value = self.link.run_here(self.call("read", Vec::new())).await?;
        self.take(value)?;
        self.cache().read.clone()
    }

    /// The limits the store knows, as last read.
    pub(crate) fn limits(&self) -> Option<[Option<u64>; DIMENSIONS]> {
        Some(self.cache().read.as_ref()?.state.limits())
    }

    /// The fleet's state as last read, the store's clock now, and whether
    /// this process went on from an earlier read of the same key — unless
    /// it went on from this read already: once per read.
    fn to_follow(&self) -> Option<(State<Micros>, Micros, bool)> {
        let mut cache = self.cache();
        if cache.followed {
            return None;
        }
        let read = cache.read.as_ref()?;
        let (state, now) = (read.state.clone(), read.now());
        let epoch = read.epoch.unwrap_or(NO_EPOCH);
        let again = self.followed.swap(epoch, Ordering::Relaxed) == epoch;
        cache.followed = true;
        Some((state, now, again))
    }

    /// `at` (this process's clock, `now` being now) on the store's clock, as
    /// the last read tells their difference.
    pub(crate) fn store_time(&self, at: Instant, now: Instant) -> Option<Micros> {
        let cache = self.cache();
        let store_now = cache.read.as_ref()?.now();
        let ago = micros(now.saturating_duration_since(at));
        Some(Micros(store_now.0.saturating_sub(ago)))
    }

    /// The store's state as last read, and the store's clock now; `None`
    /// before any read. A read older than [`READ_FRESH`] is refreshed in the
    /// background for the next look.
    pub(crate) fn view(self: &Arc<Self>) -> Option<(State<Micros>, Micros)> {
        let cache = self.cache();
        let read = cache.read.as_ref()?;
        if read.taken.elapsed() >= READ_FRESH && cache.pending.is_none() && self.is_healthy() {
            let shared = self.clone();
            let _ = redis_hub::spawn(async move { shared.read_here().await });
        }
        Some((read.state.clone(), read.now()))
    }

    /// Sends an update without waiting for it; a miss degrades the link.
    pub(crate) fn send(&self, update: Update) {
        let (op, args) = match update {
            Update::Success { sent } => (
                "record",
                vec!["ok".into(), opt(sent.map(|s| s.0)), String::new()],
            ),
            Update::Throttle { sent, hint, cost } => {
                let mut args = vec![
                    "throttle".into(),
                    opt(sent.map(|s| s.0)),
                    opt(hint.map(micros)),
                ];
                args.extend(nums(cost.amounts()));
                ("record", args)
            }
            Update::Overloaded { hint } => (
                "record",
                vec!["overload".into(), String::new(), micros(hint).to_string()],
            ),
            Update::Answered => (
                "record",
                vec!["answered".into(), String::new(), String::new()],
            ),
            Update::Granted { ticket, cost } => {
                let mut args = vec!["granted".into(), String::new(), String::new()];
                args.extend(nums(cost).chain(nums(ticket)));
                ("record", args)
            }
            Update::Observe {
                quotas,
                reset,
                sent,
                handed,
            } => {
                let mut args = vec![opt(sent.map(|s| s.0)), opt(reset.map(micros))];
                for (limit, remaining) in quotas {
                    args.extend([opt(limit), opt(remaining)]);
                }
                match handed {
                    Some(handed) => args.extend(nums(handed)),
                    None => args.extend(absent(DIMENSIONS)),
                }
                ("observe", args)
            }
            Update::Release { ticket, cost } => {
                ("release", nums(ticket).chain(nums(cost)).collect())
            }
            Update::Clear { limits } => {
                if !self.is_healthy() {
                    // Cleared on reconnect, before anything else is written.
                    *self
                        .clear_pending
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(limits);
                    return;
                }
                let limits = limits.per_dimension().map(|l| l.to_string());
                ("clear", limits.to_vec())
            }
        };
        self.link.send(self.call(op, args));
    }
}

impl Member for Shared {
    /// Writes what this process knows — its limit, a live cool-down or probe,
    /// how long its own queue still runs — and clears first if `reset()` was
    /// called meanwhile.
    fn reconnect(self: Arc<Self>) -> Task<bool> {
        Box::pin(async move {
            let seed = self.seed_now();
            let pending = || {
                self.clear_pending
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
            };
            let clear = pending().take();
            let mut args: Vec<String> = seed.limits.map(opt).to_vec();
            args.extend([
                flag(seed.learned),
                opt(seed.cool.map(micros)),
                flag(seed.probing),
                opt(seed.busy.map(micros)),
                flag(clear.is_some()),
            ]);
            args.extend(
                clear
                    .unwrap_or_default()
                    .per_dimension()
                    .map(|l| l.to_string()),
            );
            match seed.positions {
                Some((next, gone)) => args.extend(nums(next).chain(nums(gone))),
                None => args.extend(absent(2 * DIMENSIONS)),
            }
            let epoch = self.followed.load(Ordering::Relaxed);
            args.push(opt((epoch > NO_EPOCH).then_some(epoch)));
            match self.link.run_here(self.call("seed", args)).await {
                Some(value) => self.take(value).is_some(),
                None => {
                    if clear.is_some() {
                        *pending() = clear;
                    }
                    false
                }
            }
        })
    }
}

impl RateLimiter {
    /// Shares this limiter's state — cool-down, pacing schedule, learned rate,
    /// throttle episodes — with every process that shares `key` on the Redis at
    /// `url`: a fleet then behaves like one client of the key. Each turn is one
    /// script call (one round trip); waiting callers of one process share their
    /// reads of the schedule; the keys expire ten minutes after their last use.
    ///
    /// What this process knows reaches the store: a limit given at
    /// construction fills in where the store has none, a limit learned from
    /// the server's headers replaces the store's, and a live cool-down is
    /// written — on connect, on every reconnect, and whenever the key is gone
    /// (expired, flushed, a Redis restarted empty).
    ///
    /// Redis is never a new way to fail: the first call that Redis does not
    /// answer within 100 ms marks the connection degraded
    /// ([`Store::Degraded`](super::Store::Degraded)); from then on no caller
    /// waits on Redis — each uses this process's own state, which kept
    /// learning all along — until a background probe finds Redis running the
    /// limiter's script again. Only a malformed `url` is an error: a Redis that
    /// is down now is a degraded start. The Redis calls run on a thread of
    /// their own, one connection per URL for every limiter and budget of the
    /// process, so they outlive the runtime that called `share_redis`.
    /// Blocking callers use the in-process state only.
    ///
    /// A limiter is shared once: calling this again with the same `url` and
    /// `key` does nothing, with another is an error (`InvalidClientConfig`).
    ///
    /// ```no_run
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::RateLimiter;
    ///
    /// static OPENAI: RateLimiter = RateLimiter::new();
    ///
    /// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
    /// OPENAI.share_redis("redis://127.0.0.1:6379/", "openai:org-123").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn share_redis(&self, url: &str, key: &str) -> redis::RedisResult<()> {
        if let Some(shared) = self.shared.get() {
            return shared.place.again("rate limiter", url, key);
        }
        let link = redis_hub::link(url)?;
        let shared = {
            // Under the state's lock, so `settle` sees the store as soon as it is set.
            let state = self.lock();
            let shared = self
                .shared
                .get_or_init(|| Shared::new(link.clone(), url, key))
                .clone();
            self.engaged.store(true, Ordering::Release);
            self.remember(&state, super::now());
            shared
        };
        link.join(shared).await;
        Ok(())
    }

    /// The store, while it answers.
    pub(super) fn healthy_store(&self) -> Option<&Arc<Shared>> {
        self.shared.get().filter(|shared| shared.is_healthy())
    }

    /// A turn from the shared store; a [`Fallback`] when it does not answer
    /// in time, with the wait still allowed, for the in-process state to give
    /// the turn. That state first goes on from the fleet's state as last
    /// read — its queue, its rate — and keeps learning from this process's
    /// answers: a caller that held a place in the queue keeps it, new
    /// callers queue after it, and a rate that climbs moves them all sooner.
    pub(super) async fn shared_turn(
        &self,
        shared: &Arc<Shared>,
        max_wait: Duration,
        cost: Cost,
    ) -> Result<Result<Turn, Throttled>, Fallback> {
        let fallback = |left, ticket| {
            self.follow_store(shared);
            Fallback { left, ticket }
        };
        if !shared.is_healthy() {
            return Err(fallback(max_wait, None));
        }
        let started = Instant::now();
        let left = || max_wait.saturating_sub(started.elapsed());
        let cost = cost.amounts();
        let Some(reply) = shared.reserve(max_wait, &cost).await else {
            return Err(fallback(left(), None));
        };
        self.adopt_store_limits(shared);
        let (ticket, at, now) = match reply {
            Reply::Free => return Ok(Ok(Turn::shared(None))),
            Reply::Go { ticket, now } => {
                shared.handed().push(Instant::now(), &ticket, &cost);
                return Ok(Ok(Turn::shared(Some(now))));
            }
            Reply::Late(wait) => return Ok(Err(Throttled::new(wait))),
            Reply::Wait { ticket, at, now } => (ticket, at, now),
        };
        let latest = now.saturating_add(max_wait);
        let mut waiter = SharedWaiter::new(self, shared, ticket, cost);
        let mut wake = tokio::time::Instant::now() + at.saturating_duration_since(now);
        loop {
            Box::pin(tokio::time::sleep_until(wake)).await;
            // Never waiting on a Redis that does not answer: the caller
            // goes on in the in-process queue, at the place it holds.
            let live = match shared.is_healthy() {
                true => shared.check(&ticket, &cost, latest).await,
                false => None,
            };
            let Some((check, now)) = live else {
                waiter.forget();
                return Err(fallback(left(), Some(ticket)));
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

impl RateLimiter {
    /// The in-process state goes on from the fleet's state as last read,
    /// once per read: every caller of this process then waits in one queue
    /// — the fleet's, with the other processes' places in it kept free.
    fn follow_store(&self, shared: &Shared) {
        let now = super::now();
        let mut state = self.lock();
        let Some((store, store_now, again)) = shared.to_follow() else {
            return;
        };
        let clock = |at: Micros| match at.checked_duration_since(store_now) {
            Some(ahead) => Some(now.saturating_add(ahead)),
            None => now.checked_sub(store_now.saturating_duration_since(at)),
        };
        let paid = state.paid(now);
        // This process's callers hold (about) every place queued: no other
        // process keeps a copy of this queue.
        let waiting = f64::from(self.waiting.load(Ordering::Relaxed));
        let alone = waiting + 1.0 >= store.queued(store_now);
        state.follow(now, &store, clock, alone, again);
        // The turns handed out lately, at their places in that queue.
        let handed = shared.handed().clone();
        *self.handed() = handed;
        self.settle(&state, now);
        self.wake_if_sooner(&state, paid, now);
    }

    /// The in-process state learns the limits the store knows, so that it
    /// paces as the fleet did should Redis stop answering.
    fn adopt_store_limits(&self, shared: &Shared) {
        let Some(limits) = shared.limits() else {
            return;
        };
        let now = super::now();
        let mut state = self.lock();
        if state.limits() == limits {
            return;
        }
        for (d, limit) in limits.iter().enumerate() {
            if let Some(limit) = *limit {
                state.learn(d, now, limit);
            }
        }
        if let Some(limit) = limits[super::REQUESTS] {
            self.known_limit.store(limit, Ordering::Relaxed);
        }
        self.settle(&state, now);
    }
}

impl Turn {
    fn shared(sent: Option<Micros>) -> Turn {
        Turn {
            sent: Sent::Shared(sent.map(|s| s.0)),
        }
    }
}

/// Where a caller goes when the store does not answer: the in-process state,
/// with the wait it may still take, and the place it held in the fleet's
/// queue, if it had one.
pub(super) struct Fallback {
    pub(super) left: Duration,
    pub(super) ticket: Option<Ticket>,
}

/// A caller in the shared schedule: counted as waiting, and its ticket given
/// back if it leaves before its turn.
struct SharedWaiter<'a> {
    limiter: &'a RateLimiter,
    shared: &'a Arc<Shared>,
    ticket: Option<Ticket>,
    cost: Amounts,
    /// When the wait began, for the wait histogram.
    #[cfg(feature = "metrics")]
    since: Instant,
}

impl<'a> SharedWaiter<'a> {
    fn new(
        limiter: &'a RateLimiter,
        shared: &'a Arc<Shared>,
        ticket: Ticket,
        cost: Amounts,
    ) -> SharedWaiter<'a> {
        limiter.waiting.fetch_add(1, Ordering::Relaxed);
        SharedWaiter {
            limiter,
            shared,
            ticket: Some(ticket),
            cost,
            #[cfg(feature = "metrics")]
            since: Instant::now(),
        }
    }

    /// The store is no longer asked: its ticket is not given back there.
    fn forget(&mut self) {
        self.ticket = None;
    }

    fn served(mut self, now: Micros) -> Turn {
        if let Some(ticket) = self.ticket.take() {
            self.shared
                .handed()
                .push(Instant::now(), &ticket, &self.cost);
            self.shared.send(Update::Granted {
                ticket,
                cost: self.cost,
            });
        }
        #[cfg(feature = "metrics")]
        crate::metrics::limiter_wait(self.since.elapsed());
        Turn::shared(Some(now))
    }
}

impl Drop for SharedWaiter<'_> {
    fn drop(&mut self) {
        self.limiter.waiting.fetch_sub(1, Ordering::Relaxed);
        if let Some(ticket) = self.ticket
            && self.shared.is_healthy()
        {
            self.shared.send(Update::Release {
                ticket,
                cost: self.cost,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    //! The script and the Rust state machine, on the same operations at the
    //! same instants, end in the same state.

    use super::*;
    use crate::limiter::redis_server;
    use crate::limiter::state::{Limits as StateLimits, Outcome};
    use proptest::prelude::*;

    type Quotas = [(Option<u64>, Option<u64>); DIMENSIONS];

    #[derive(Clone, Debug)]
    enum Op {
        Reserve {
            max_wait_ms: u64,
            cost: Amounts,
            seed_limits: [Option<u64>; DIMENSIONS],
            seed_cool_ms: Option<u64>,
        },
        Success {
            sent_ago_ms: Option<u64>,
        },
        /// An answer that says nothing about the limit.
        Answered,
        /// A held ticket, this far back, was handed its turn.
        Granted {
            back: usize,
        },
        Throttle {
            sent_ago_ms: Option<u64>,
            hint_ms: Option<u64>,
            cost: Amounts,
            /// Sent when the last observed answer was: the refusal whose
            /// headers were just observed.
            observed: bool,
        },
        Overloaded {
            hint_ms: u64,
        },
        Observe {
            sent_ago_ms: Option<u64>,
            reset_ms: Option<u64>,
            quotas: Quotas,
            /// Where the turns handed out by the send end, as a process
            /// remembers it.
            handed: Option<[u32; DIMENSIONS]>,
        },
        /// Gives back the ticket handed out `back` reserves ago, if any.
        Release {
            back: usize,
        },
        Seed {
            limits: [Option<u64>; DIMENSIONS],
            learned: bool,
            cool_ms: Option<u64>,
            probing: bool,
            busy_ms: Option<u64>,
            clear: Option<StateLimits>,
            /// Where the process's queue ends on the store's positions, and
            /// where its turns handed out end.
            positions: Option<([u32; DIMENSIONS], [u32; DIMENSIONS])>,
            /// Whether they are positions of this key (its epoch), or of one
            /// that was gone since.
            same_key: bool,
        },
        Clear {
            limits: StateLimits,
        },
        /// The key is gone (expired, flushed): the next reserve seeds it.
        Expire,
    }

    fn cost() -> impl Strategy<Value = Amounts> {
        prop_oneof![
            Just([1.0, 0.0, 0.0, 0.0]),
            (0..3_000u32).prop_map(|t| [1.0, f64::from(t), 0.0, 0.0]),
            (0..2_000u32, 0..1_000u32).prop_map(|(i, o)| [
                1.0,
                f64::from(i + o),
                f64::from(i),
                f64::from(o)
            ]),
        ]
    }

    fn limits() -> impl Strategy<Value = [Option<u64>; DIMENSIONS]> {
        [
            proptest::option::of(1..5_000u64),
            proptest::option::of(1_000..200_000u64),
            proptest::option::of(1_000..200_000u64),
            proptest::option::of(1_000..100_000u64),
        ]
    }

    fn seed_limits() -> impl Strategy<Value = StateLimits> {
        [0..3_000u32, 0..100_000u32, 0..100_000u32, 0..100_000u32]
    }

    fn quotas() -> impl Strategy<Value = Quotas> {
        let quota = (
            proptest::option::of(1..200_000u64),
            proptest::option::of(prop_oneof![Just(0u64), 0..50_000u64]),
        );
        [quota.clone(), quota.clone(), quota.clone(), quota]
    }

    fn op() -> impl Strategy<Value = Op> {
        let ago = proptest::option::of(0..3_000u64);
        // Hints up to three minutes: past a minute, they become probes;
        // often in whole seconds, as `retry-after` gives them, and short.
        let hint = prop_oneof![
            0..180_000u64,
            (0..180u64).prop_map(|s| s * 1000),
            (1..4u64).prop_map(|s| s * 1000),
        ];
        prop_oneof![
            4 => (0..120_000u64, cost(), limits(), proptest::option::of(0..90_000u64))
                .prop_map(|(max_wait_ms, cost, seed_limits, seed_cool_ms)| Op::Reserve {
                    max_wait_ms, cost, seed_limits, seed_cool_ms,
                }),
            3 => ago.clone().prop_map(|sent_ago_ms| Op::Success { sent_ago_ms }),
            2 => ((ago.clone(), proptest::option::of(hint.clone()), cost()), any::<bool>())
                .prop_map(|((sent_ago_ms, hint_ms, cost), observed)| Op::Throttle { sent_ago_ms, hint_ms, cost, observed }),
            1 => hint.clone().prop_map(|hint_ms| Op::Overloaded { hint_ms }),
            1 => Just(Op::Answered),
            1 => (0..4usize).prop_map(|back| Op::Granted { back }),
            2 => (ago, proptest::option::of(hint.clone()), quotas(), proptest::option::of([0..300u32, 0..200_000u32, 0..100_000u32, 0..100_000u32]))
                .prop_map(|(sent_ago_ms, reset_ms, quotas, handed)| Op::Observe { sent_ago_ms, reset_ms, quotas, handed }),
            1 => (0..4usize).prop_map(|back| Op::Release { back }),
            1 => (
                limits(),
                any::<bool>(),
                proptest::option::of(hint),
                any::<bool>(),
                proptest::option::of(0..10_000u64),
                proptest::option::weighted(0.2, seed_limits()),
                proptest::option::of(([0..300u32, 0..200_000u32, 0..100_000u32, 0..100_000u32], [0..300u32, 0..200_000u32, 0..100_000u32, 0..100_000u32])),
                any::<bool>(),
            )
                .prop_map(|(limits, learned, cool_ms, probing, busy_ms, clear, positions, same_key)| Op::Seed {
                    limits, learned, cool_ms, probing, busy_ms, clear,
                    positions,
                    same_key,
                }),
            1 => seed_limits().prop_map(|limits| Op::Clear { limits }),
            1 => Just(Op::Expire),
        ]
    }

    fn run(conn: &mut redis::Connection, key: &str, now: u64, args: &[String]) -> Raw {
        let mut invocation = SCRIPT.key(key);
        invocation.arg(&args[0]).arg(now.to_string());
        for arg in &args[1..] {
            invocation.arg(arg);
        }
        let value: redis::Value = invocation.invoke(conn).expect("the script runs");
        redis::from_redis_value(value).expect("a reply of five parts")
    }

    fn state_of(fields: &[(String, String)]) -> State<Micros> {
        State::from_fields(|name| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse().ok())
        })
    }

    fn read(conn: &mut redis::Connection, key: &str) -> State<Micros> {
        let fields: Vec<(String, String)> = redis::cmd("HGETALL").arg(key).query(conn).unwrap();
        state_of(&fields)
    }

    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (None, None) => true,
            // Times to a few microseconds (the script keeps µs as doubles),
            // rates and levels to a relative 1e-9 (cube roots, divisions).
            (Some(a), Some(b)) => (a - b).abs() <= 2.0 + a.abs().max(b.abs()) * 1e-9,
            _ => false,
        }
    }

    fn text(v: Option<u64>) -> String {
        v.map_or_else(String::new, |v| v.to_string())
    }

    /// What the script does with the limits and cool-down a reserve carries.
    fn seed_on_reserve(
        rust: &mut State<Micros>,
        exists: bool,
        t: Micros,
        limits: &[Option<u64>; DIMENSIONS],
        cool_ms: Option<u64>,
    ) {
        if !exists {
            rust.seed(
                t,
                &Seed {
                    limits: *limits,
                    cool: cool_ms.map(Duration::from_millis),
                    ..Seed::default()
                },
            );
            return;
        }
        let known = rust.limits();
        for (d, limit) in limits.iter().enumerate() {
            if let Some(limit) = *limit
                && known[d].is_none()
            {
                rust.learn(d, t, limit);
            }
        }
    }

    #[test]
    fn the_script_and_the_state_machine_agree() {
        let server = redis_server::RedisServer::start();
        let client = redis::Client::open(server.url()).unwrap();
        let conn = std::cell::RefCell::new(client.get_connection().unwrap());
        let case = std::cell::Cell::new(0);
        proptest!(ProptestConfig::with_cases(300), |(
            start_ms in 0..1_000u64,
            ops in proptest::collection::vec((0..70_000u64, op()), 1..60),
        )| {
            case.set(case.get() + 1);
            let key = format!("agree:{}", case.get());
            let mut rust = State::<Micros>::new([0; DIMENSIONS]);
            let mut rust_exists = false;
            let mut successes = 0;
            let mut held: Vec<(Ticket, Amounts)> = Vec::new();
            let mut last_observed: Option<Micros> = None;
            let mut now = 1_700_000_000_000_000 + start_ms * 1000;
            for (step, (dt_ms, op)) in ops.into_iter().enumerate() {
                // Mostly small steps; now and then one past a probe's minute.
                now += if dt_ms > 60_000 { dt_ms } else { dt_ms % 1_500 } * 1000;
                let t = Micros(now);
                let sent = |ago: Option<u64>| ago.map(|a| Micros(now - a * 1000));
                let ms = Duration::from_millis;
                let args: Vec<String> = match &op {
                    Op::Reserve { max_wait_ms, cost, seed_limits, seed_cool_ms } => {
                        seed_on_reserve(&mut rust, rust_exists, t, seed_limits, *seed_cool_ms);
                        let latest = t.saturating_add(ms(*max_wait_ms));
                        let (kind, value, ticket) = if rust.is_idle(t) {
                            rust.sample(t, successes);
                            ("free", now, None)
                        } else {
                            match rust.reserve(t, latest, cost, successes) {
                                Ok((ticket, Check::Go)) => ("go", now, Some(ticket)),
                                Ok((ticket, Check::WaitUntil(at))) => ("wait", at.0, Some(ticket)),
                                Ok((_, Check::TooLate(wait))) | Err(wait) => {
                                    ("late", wait.as_micros() as u64, None)
                                }
                            }
                        };
                        let mut args = vec!["reserve".into(), (max_wait_ms * 1000).to_string()];
                        args.extend(nums(*cost));
                        args.extend(seed_limits.map(text));
                        args.push(text(seed_cool_ms.map(|c| c * 1000)));
                        let reply = run(&mut conn.borrow_mut(), &key, now, &args);
                        rust_exists = true;
                        prop_assert_eq!(reply.0.as_str(), kind, "step {}: {:?}", step, op);
                        let lua_value: f64 = reply.2.parse().unwrap();
                        prop_assert!(close(Some(value as f64), Some(lua_value)), "step {}: {:?}: {} vs {}", step, op, value, lua_value);
                        if let Some(ticket) = ticket {
                            for (d, text) in reply.1.iter().enumerate() {
                                let lua: f64 = text.parse().unwrap();
                                prop_assert!(close(Some(ticket[d]), Some(lua)), "step {}: ticket {:?} vs {:?}", step, ticket, reply.1);
                            }
                            held.push((ticket, *cost));
                        }
                        // The reply carries the state as saved.
                        let carried = state_of(&reply.4);
                        for ((name, r), (_, l)) in rust.fields().into_iter().zip(carried.fields()) {
                            prop_assert!(close(r, l), "step {}: {:?}: reply's {} rust {:?} lua {:?}", step, op, name, r, l);
                        }
                        Vec::new()
                    }
                    Op::Success { sent_ago_ms } => {
                        successes += 1;
                        rust.record(t, sent(*sent_ago_ms), &crate::limiter::state::ONE_REQUEST, Outcome::Success, successes);
                        vec!["record".into(), "ok".into(), text(sent(*sent_ago_ms).map(|s| s.0)), String::new()]
                    }
                    Op::Throttle { sent_ago_ms, hint_ms, cost, observed } => {
                        let hint = hint_ms.map(ms);
                        let sent = match observed {
                            true => last_observed.or(sent(*sent_ago_ms)),
                            false => sent(*sent_ago_ms),
                        };
                        rust.record(t, sent, cost, Outcome::Throttle(hint), successes);
                        let mut args = vec![
                            "record".into(),
                            "throttle".into(),
                            text(sent.map(|s| s.0)),
                            text(hint_ms.map(|h| h * 1000)),
                        ];
                        args.extend(nums(*cost));
                        args
                    }
                    Op::Granted { back } => match held.len().checked_sub(back + 1) {
                        Some(i) => {
                            let (ticket, cost) = held.remove(i);
                            rust.granted(t, &ticket, &cost);
                            let mut args = vec!["record".into(), "granted".into(), String::new(), String::new()];
                            args.extend(nums(cost).chain(nums(ticket)));
                            args
                        }
                        None => Vec::new(),
                    },
                    Op::Answered => {
                        rust.hear(t);
                        vec!["record".into(), "answered".into(), String::new(), String::new()]
                    }
                    Op::Overloaded { hint_ms } => {
                        rust.record(t, None, &crate::limiter::state::ONE_REQUEST, Outcome::Overloaded(ms(*hint_ms)), successes);
                        vec!["record".into(), "overload".into(), String::new(), (hint_ms * 1000).to_string()]
                    }
                    Op::Observe { sent_ago_ms, reset_ms, quotas, handed } => {
                        let at = sent(*sent_ago_ms).unwrap_or(t);
                        last_observed = Some(at);
                        for (d, (limit, _)) in quotas.iter().enumerate() {
                            if let Some(limit) = limit {
                                rust.learn(d, t, *limit);
                            }
                        }
                        let known = rust.limits();
                        for (d, (_, remaining)) in quotas.iter().enumerate() {
                            if let (Some(remaining), Some(_)) = (remaining, known[d]) {
                                rust.resync(d, t, at, *remaining, handed.map(|h| f64::from(h[d])));
                            }
                        }
                        if let Some(reset) = reset_ms {
                            rust.cool_down(t, ms(*reset));
                        }
                        let mut args = vec![
                            "observe".into(),
                            text(sent(*sent_ago_ms).map(|s| s.0)),
                            text(reset_ms.map(|r| r * 1000)),
                        ];
                        for (limit, remaining) in quotas {
                            args.extend([text(*limit), text(*remaining)]);
                        }
                        args.extend((0..DIMENSIONS).map(|d| text(handed.map(|h| u64::from(h[d])))));
                        args
                    }
                    Op::Release { back } => match held.len().checked_sub(back + 1) {
                        Some(i) => {
                            let (ticket, cost) = held.remove(i);
                            rust.release(&ticket, &cost);
                            let mut args = vec!["release".into()];
                            args.extend(nums(ticket).chain(nums(cost)));
                            args
                        }
                        None => Vec::new(),
                    },
                    Op::Seed { limits, learned, cool_ms, probing, busy_ms, clear, positions, same_key } => {
                        let epoch: Option<String> = redis::cmd("HGET").arg(&key).arg("epoch").query(&mut *conn.borrow_mut()).unwrap();
                        // The script takes the positions only for this key.
                        let taken = rust_exists && *same_key && epoch.is_some() && positions.is_some();
                        if let Some(clear) = clear {
                            rust.clear(t, *clear);
                            successes = 0;
                        }
                        rust.seed(t, &Seed {
                            limits: *limits,
                            learned: *learned,
                            cool: cool_ms.map(ms),
                            probing: *probing,
                            busy: busy_ms.map(ms),
                            positions: positions
                                .filter(|_| taken)
                                .map(|(next, gone)| (next.map(f64::from), gone.map(f64::from))),
                        });
                        let bit = |b: bool| if b { "1".to_string() } else { "0".to_string() };
                        let mut args = vec!["seed".to_string()];
                        args.extend(limits.map(text));
                        args.extend([
                            bit(*learned),
                            text(cool_ms.map(|c| c * 1000)),
                            bit(*probing),
                            text(busy_ms.map(|b| b * 1000)),
                            bit(clear.is_some()),
                        ]);
                        args.extend(clear.unwrap_or_default().map(|l| l.to_string()));
                        match positions {
                            Some((next, gone)) => args.extend(next.iter().chain(gone).map(|n| n.to_string())),
                            None => args.extend(absent(2 * DIMENSIONS)),
                        }
                        args.push(match same_key {
                            true => epoch.unwrap_or_default(),
                            false => "1".to_string(),
                        });
                        args
                    }
                    Op::Clear { limits } => {
                        rust.clear(t, *limits);
                        successes = 0;
                        let mut args = vec!["clear".to_string()];
                        args.extend(limits.map(|l| l.to_string()));
                        args
                    }
                    Op::Expire => {
                        let _: () = redis::cmd("DEL").arg(&key).query(&mut *conn.borrow_mut()).unwrap();
                        rust = State::new([0; DIMENSIONS]);
                        rust_exists = false;
                        successes = 0;
                        held.clear();
                        Vec::new()
                    }
                };
                if !args.is_empty() {
                    run(&mut conn.borrow_mut(), &key, now, &args);
                    rust_exists = true;
                }
                if rust_exists {
                    let lua = read(&mut conn.borrow_mut(), &key);
                    for ((name, r), (_, l)) in rust.fields().into_iter().zip(lua.fields()) {
                        prop_assert!(close(r, l), "step {}: {:?}: {} rust {:?} lua {:?}", step, op, name, r, l);
                    }
                    // Nothing outlives its use by more than the idle expiry and
                    // the longest cool-down, whatever the hint.
                    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut *conn.borrow_mut()).unwrap();
                    prop_assert!(ttl <= 660_000, "step {}: ttl {}", step, ttl);
                }
            }
        });
    }
}
