//! The limiter's decisions as a pure state machine over explicit instants: a
//! bucket for each dimension of an API key's limit — requests, tokens, input
//! tokens, output tokens —, the pacing schedule over them, the shared
//! cool-down, and the adaptive request rate. No clock, no locking, no waiting:
//! `RateLimiter` wraps it in a mutex, and a second store (Redis) mirrors it
//! function for function (`limiter.lua`).
//!
//! Every dimension is one [`Bucket`], the same code: at `origin`, the
//! positions below `pos` are spent and `level` more is available, refilling
//! at the dimension's rate. A call takes, in arrival order, a position in
//! every dimension — the sum of the costs of the calls before it — and its
//! turn comes when every bucket has refilled to the end of its position:
//! `origin + (position + cost − pos − level) / rate`, the latest of them, and
//! not before the cool-down. A dimension whose limit is not known does not
//! pace. The request rate is adaptive (CUBIC, as the AWS SDKs'); a token
//! rate is a margin below the limit the server announces; a response's
//! `remaining` re-anchors a bucket at the time its request was sent.

use std::time::Duration;

use super::time::Time;

/// CUBIC's multiplicative decrease: a throttle episode leaves 70% of the rate.
pub(crate) const BETA: f64 = 0.7;
/// CUBIC's scaling constant (the AWS SDKs' value): how fast the rate climbs back.
pub(crate) const SCALE: f64 = 0.4;
/// The lowest rate pacing falls to, in requests per second — unless the server
/// announced a lower limit, whose pace is then the floor.
pub(crate) const FLOOR: f64 = 0.5;
/// Pacing runs this far below a limit the server announced, so the client's
/// clock, network jitter and other users of the key do not tip it over.
pub(crate) const MARGIN: f64 = 0.95;
/// The longest cool-down one hint closes the key for. A longer hint (a proxy's
/// `retry-after: 86400`, a daily limit) becomes a probe: the key is closed this
/// long, then one call in each such span tests it, and its success opens the
/// key for every caller.
pub(crate) const LONGEST_COOL_DOWN: Duration = Duration::from_secs(60);
/// The longest cool-down a state that keeps a fleet's schedule as it is (see
/// `kept_until`) lets pass: a refusal for a turn that landed on another
/// process's, in a `retry-after` of a second or two. A longer one — an
/// overload, a closed key — holds it as any.
const KEPT_THROUGH: Duration = Duration::from_secs(2);
/// Successes are counted over at least this long to estimate the admitted rate.
const MEASURE_WINDOW: Duration = Duration::from_secs(1);

/// Until the first answer, with nothing known, callers go this many a
/// second: a first wave spread out rather than sent blind all at once, while
/// the first answer — a refusal comes back at once, with the limits in its
/// headers — teaches what the key allows.
pub(crate) const FIRST_CONTACT_PACE: f64 = 50.0;
/// A first contact no answer came back for paces no longer than this.
pub(crate) const FIRST_CONTACT_LONGEST: Duration = Duration::from_secs(5);

/// A call handed its turn this soon after another's send may still reach
/// the server first: the turns a response can have been counted with are
/// those handed out by its send and this.
pub(crate) const BURST: Duration = Duration::from_millis(10);

/// Calls granted less than this apart form a run: a call granted its turn
/// reaches the server some time later (a process starting, a loaded
/// machine), so an answer to one call of a run may not count the others
/// yet, and only ever lowers what a bucket holds. A limiter that began
/// blind takes a bucket's first word whatever it says: it is how the depth
/// of a minute's bucket is learned.
pub(crate) const RUN: Duration = Duration::from_millis(100);

/// The dimensions of a limit, in the order of every per-dimension array.
pub(crate) const DIMENSIONS: usize = 4;
/// Requests: every call spends one.
pub(crate) const REQUESTS: usize = 0;
/// Tokens, input and output together (OpenAI's `-tokens`).
pub(crate) const TOKENS: usize = 1;
/// Input tokens (Anthropic's `-input-tokens`).
pub(crate) const INPUT: usize = 2;
/// Output tokens (Anthropic's `-output-tokens`).
pub(crate) const OUTPUT: usize = 3;

/// An amount in each dimension: a call's cost, a ticket's positions.
pub(crate) type Amounts = [f64; DIMENSIONS];

/// A call's place in the schedule: its position in each dimension.
pub(crate) type Ticket = Amounts;

/// What a call that names no cost spends: one request.
pub(crate) const ONE_REQUEST: Amounts = [1.0, 0.0, 0.0, 0.0];

/// What an attempt's outcome tells the limiter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// The server answered: the limit was not hit.
    Success,
    /// A rate-limit refusal (429), with the server's hint if it gave one.
    Throttle(Option<Duration>),
    /// Overload (503, 529) with a hint: everyone waits it out, the rate stays.
    Overloaded(Duration),
}

/// How often a waiting caller looks again: a rate that climbs, or a schedule
/// that moves up, serves it sooner than it was told.
const RECHECK: Duration = Duration::from_millis(250);

/// Where a ticket stands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Check<T> {
    /// Its turn has come.
    Go,
    /// Not yet: look again then.
    WaitUntil(T),
    /// It cannot come in time: it was this far away.
    TooLate(Duration),
}

/// What a process knows, written to a store that does not know it: on
/// connect, on reconnect, and where the store's key was gone.
#[cfg(feature = "redis")]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Seed {
    /// The limits per minute this process knows, per dimension.
    pub(crate) limits: [Option<u64>; DIMENSIONS],
    /// Whether those limits came from the server's headers (they then replace
    /// the store's) rather than from construction (they fill in only where
    /// the store has none).
    pub(crate) learned: bool,
    /// How long this process's cool-down has left.
    pub(crate) cool: Option<Duration>,
    /// Whether a long hint holds the key here.
    pub(crate) probing: bool,
    /// How long this process's own queue still runs: the store's schedule
    /// starts after it.
    pub(crate) busy: Option<Duration>,
    /// Where this process's queue ends, and where the turns it handed out
    /// end, when it is on the store's positions (it went on from the store's
    /// state while Redis was away): the store hands out none below the first
    /// and pays up to the second — if it is still the key those positions
    /// are of, and then takes them instead of `busy`.
    pub(crate) positions: Option<(Amounts, Amounts)>,
}

/// One dimension's bucket. See the module's docs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Bucket<T> {
    /// The limit per minute, learned or given; `None`: no pacing by it (the
    /// request bucket paces by the adaptive rate instead).
    limit: Option<u64>,
    /// The most it was seen to hold (a response's `remaining`); 0 while unknown.
    capacity: f64,
    origin: Option<T>,
    pos: f64,
    level: f64,
    /// The position the next call takes.
    next: f64,
    /// The end of the furthest ticket that was handed its turn: what the
    /// server can have counted. A paid position need not be handed out yet
    /// (the call at the head of the queue pays for itself over time).
    gone: f64,
    /// When a response's `remaining` last re-anchored it: the send time of
    /// its request. Older news does not overwrite newer.
    synced: Option<T>,
    /// When the anchor was set: a response to a request sent before then
    /// (its answer took seconds, the schedule moved meanwhile) cannot read
    /// what was paid at its send from the anchor.
    decided: Option<T>,
    /// The send time of the newest response that said what was left here,
    /// whether or not it moved the bucket, and what it said was left: a
    /// refusal sent no later, whose cost that did not cover, was counted by
    /// the server's own word.
    told: Option<T>,
    told_left: f64,
}

impl<T: Time> Bucket<T> {
    const fn new(limit: Option<u64>) -> Bucket<T> {
        Bucket {
            limit,
            capacity: 0.0,
            origin: None,
            pos: 0.0,
            level: 0.0,
            next: 0.0,
            gone: 0.0,
            synced: None,
            decided: None,
            told: None,
            told_left: 0.0,
        }
    }

    /// The position up to which the bucket will have paid by `now`; a
    /// bucket never spent from is full, and before its anchor (a cool-down's
    /// end) it pays nothing more.
    fn reach(&self, now: T, rate: f64) -> f64 {
        match self.origin {
            Some(origin) => self.pos + self.level + now.secs_since(origin).max(0.0) * rate,
            None => f64::INFINITY,
        }
    }

    /// When the call at `position` costing `cost` can be paid.
    fn turn(&self, position: f64, cost: f64, now: T, rate: f64) -> T {
        let Some(origin) = self.origin else {
            return now;
        };
        let short = position + cost - self.pos - self.level;
        match short > 0.0 {
            true => origin.plus_secs(short / rate),
            false => origin,
        }
    }

    /// Re-anchors at `now` (the same turns for every position), the unspent
    /// level at most `capacity` while nothing is pending. An anchor still
    /// ahead (a cool-down's end) stays.
    fn rebase(&mut self, now: T, rate: f64, capacity: f64) {
        if self.origin.is_some_and(|origin| origin > now) {
            return;
        }
        if self.origin.is_none() {
            // Never anchored: full, from where the calls handed their turn
            // end; those still waiting pay from there.
            self.pos = self.gone.min(self.next);
            self.level = capacity;
            self.origin = Some(now);
            self.decided = Some(now);
            return;
        }
        let reach = self.reach(now, rate);
        if reach >= self.next {
            self.level = (reach - self.next).min(capacity);
            self.pos = self.next;
        } else {
            self.level = 0.0;
            self.pos = reach;
        }
        self.origin = Some(now);
        self.decided = Some(now);
    }

    /// After [`rebase`](Bucket::rebase): nothing paid before `until`; the
    /// calls waiting keep their order behind it. With a `unit` every call
    /// spends (one request), the first call due goes right at `until`, as the
    /// server said it could.
    fn hold_until(&mut self, until: T, rate: f64, unit: f64) {
        let Some(origin) = self.origin.filter(|origin| until > *origin) else {
            return;
        };
        if unit > 0.0 {
            let first = (self.pos / unit).floor() * unit;
            let due = self.turn(first, unit, origin, rate);
            // Within two microseconds is a tie, on the same side in the script.
            if due.plus_secs(2e-6) >= until {
                return;
            }
            self.pos = first;
            self.level = unit;
        }
        self.origin = Some(until);
    }

    /// No more available now than the bucket holds beyond what was handed
    /// out: a response re-anchoring seconds back, at a rate higher than the
    /// calls went at since, or a refund, cannot let the calls behind go in a
    /// burst the server's bucket could not pay.
    fn hold_at_most(&mut self, now: T, rate: f64, capacity: f64) {
        if self.origin.is_some_and(|origin| origin > now) {
            // Held (a cool-down): what it holds when the hold ends.
            self.level = self
                .level
                .min(self.pos.max(self.gone) - self.pos + capacity);
            return;
        }
        if self.reach(now, rate) > self.gone + capacity {
            self.pos = self.gone;
            self.level = capacity;
            self.origin = Some(now);
            self.decided = Some(now);
        }
    }

    /// The server's word: as its request reached it, `remaining` was left.
    /// What it had counted by then is known only within bounds: at least
    /// what the schedule had paid by the send, no more than the turns the
    /// caller had handed out by then (`handed`); at most every turn handed
    /// out by now (the answer took seconds, or the request reached the
    /// server after calls handed their turn later: a process slow to send,
    /// a busy server). The bucket moves
    /// only when the word holds more even at the least count, or less even
    /// at the most; with `only_lower` (the call was one of a run, whose
    /// others the server may not have counted yet) it only ever goes down.
    fn resync(
        &mut self,
        now: T,
        at: T,
        rate: f64,
        remaining: f64,
        only_lower: bool,
        handed: Option<f64>,
    ) {
        self.capacity = self.capacity.max(remaining);
        if self.told.is_none_or(|told| at >= told) {
            self.told = Some(at);
            self.told_left = remaining;
        }
        if self.synced.is_some_and(|synced| synced > at) {
            return;
        }
        // What the server can have counted by then: at most every turn
        // handed out by now; at least what was paid by the send while the
        // anchor set before it holds, and never more than the caller's own
        // turns by then — calls handed out since may not have reached it.
        let most = self.gone.min(self.next);
        let least = match (self.decided, handed) {
            (Some(decided), _) if decided <= at => self.reach(at, rate).min(most),
            (None, _) => most,
            // An anchor set since says nothing of the send: the caller's
            // turns do.
            (Some(_), Some(handed)) => handed.min(self.next),
            (Some(_), None) => return,
        };
        let least = least.min(handed.unwrap_or(f64::INFINITY));
        let was = self.reach(at, rate);
        // Moved only when the word holds whatever the server counted: it
        // holds more even if it counted the least (by a whole unit: the
        // schedule keeps its own pace rather than the answers' timing; not
        // from a call of a run), or less even if it counted the most.
        let counted = if least + remaining >= was + 1.0 && !only_lower {
            least
        } else if most + remaining < was {
            most
        } else {
            return;
        };
        self.pos = counted;
        self.level = remaining;
        self.origin = Some(at);
        self.synced = Some(at);
        self.decided = Some(now);
    }
}

#[derive(Clone, Debug)]
pub(crate) struct State<T> {
    /// Requests per second pacing allows now; `None` while nothing is known.
    rate: Option<f64>,
    /// The highest rate learning may reach: a margin below the announced limit.
    ceiling: Option<f64>,
    /// One bucket per dimension.
    buckets: [Bucket<T>; DIMENSIONS],
    /// No turn before this.
    cool_down_until: Option<T>,
    /// Since when a hint longer than [`LONGEST_COOL_DOWN`] holds the key: turns
    /// are then one per [`LONGEST_COOL_DOWN`], each a probe of the key.
    probe_since: Option<T>,
    /// The last time the rate went down: throttles answering requests sent
    /// before it belong to an episode already counted.
    last_decrease: Option<T>,
    /// CUBIC's state: the rate before the last throttle, and when it came.
    last_max: f64,
    last_throttle: Option<T>,
    /// Throttle episodes so far.
    episodes: u64,
    /// `(when, successes counted by then)`, the older and the newer sample.
    samples: [Option<(T, u64)>; 2],
    /// Whether any answer came back: until then, with nothing known, turns
    /// go at [`FIRST_CONTACT_PACE`].
    heard: bool,
    /// When the first turn was asked for.
    contact: Option<T>,
    /// The first and the last of the latest run of turns handed out less
    /// than [`RUN`] apart.
    grants: Option<(T, T)>,
    /// The schedule is kept as it is until then: the state follows a fleet's
    /// queue, as last read from a store that stopped answering, whose other
    /// processes keep their places by their own copies of it. Their copies
    /// cannot see this one climb, cool down or re-anchor, and every turn it
    /// moved would land on one of theirs — at 95% of a limit, on a turn
    /// already taken. So no climb, no decrease, no re-anchoring and no
    /// cool-down of [`KEPT_THROUGH`] or less until that queue has run; a
    /// refused caller still waits out its own hint.
    kept_until: Option<T>,
}

/// The limits per minute a limiter starts from, per dimension (`0`: unknown).
pub(crate) type Limits = [u32; DIMENSIONS];

impl<T: Time> State<T> {
    pub(crate) const fn new(limits: Limits) -> State<T> {
        let (rate, ceiling) = match limits[REQUESTS] {
            0 => (None, None),
            n => (Some(paced_below(n as u64)), Some(paced_below(n as u64))),
        };
        State {
            rate,
            ceiling,
            buckets: [
                Bucket::new(known(limits[REQUESTS])),
                Bucket::new(known(limits[TOKENS])),
                Bucket::new(known(limits[INPUT])),
                Bucket::new(known(limits[OUTPUT])),
            ],
            cool_down_until: None,
            probe_since: None,
            last_decrease: None,
            last_max: 0.0,
            last_throttle: None,
            episodes: 0,
            samples: [None, None],
            heard: false,
            contact: None,
            grants: None,
            kept_until: None,
        }
    }

    /// Whether turns can be handed out without looking: nothing paces and no
    /// cool-down could still be running.
    pub(crate) fn is_idle(&self, now: T) -> bool {
        (0..DIMENSIONS).all(|d| self.pace(d).is_none())
            && self.cool_down_until.is_none_or(|until| until <= now)
    }

    /// Whether a long hint holds the key, so that only probes go.
    pub(crate) fn probing(&self) -> bool {
        self.probe_since.is_some()
    }

    /// The cool-down's end, if one was set.
    #[cfg(feature = "redis")]
    pub(crate) fn cool_down_until(&self) -> Option<T> {
        self.cool_down_until
    }

    /// The announced request limit per minute, as last seen or given.
    pub(crate) fn limit_per_minute(&self) -> Option<u64> {
        self.buckets[REQUESTS].limit
    }

    /// The limit per minute of each dimension, as last seen or given.
    pub(crate) fn limits(&self) -> [Option<u64>; DIMENSIONS] {
        [0, 1, 2, 3].map(|d| self.buckets[d].limit)
    }

    pub(crate) fn rate(&self) -> Option<f64> {
        self.rate
    }

    pub(crate) fn episodes(&self) -> u64 {
        self.episodes
    }

    pub(crate) fn cool_down_left(&self, now: T) -> Duration {
        self.cool_down_until
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now))
    }

    /// How fast dimension `d` refills, in its units per second; `None`: it
    /// does not pace. Requests: the adaptive rate, one per minute at most
    /// while probing; tokens: a margin below the announced limit.
    fn pace(&self, d: usize) -> Option<f64> {
        if d != REQUESTS {
            return self.buckets[d].limit.map(paced_below);
        }
        let probe = 1.0 / LONGEST_COOL_DOWN.as_secs_f64();
        match (self.probe_since, self.rate) {
            (Some(_), rate) => Some(rate.map_or(probe, |rate| rate.min(probe))),
            (None, None) if self.first_contact() => Some(FIRST_CONTACT_PACE),
            (None, rate) => rate,
        }
    }

    /// Nothing known, nothing heard yet: the first contact paces.
    fn first_contact(&self) -> bool {
        !self.heard
            && self.rate.is_none()
            && self.probe_since.is_none()
            && self.buckets.iter().all(|bucket| bucket.limit.is_none())
    }

    /// An answer came back (any answer: a refusal, an error, a success):
    /// first contact is over, the callers it holds go at the pace learned,
    /// if any, from now.
    pub(crate) fn hear(&mut self, now: T) {
        if self.first_contact() {
            self.rebase(REQUESTS, now);
        }
        self.heard = true;
    }

    /// The most a bucket holds while nothing is pending: what a response
    /// showed it holding, else one request, or a second's worth of tokens.
    fn capacity(&self, d: usize, rate: f64) -> f64 {
        let bucket = &self.buckets[d];
        match (bucket.capacity > 0.0, d) {
            (true, _) => bucket.capacity,
            (false, REQUESTS) => 1.0,
            (false, _) => rate,
        }
    }

    /// What every call spends in dimension `d`: one request; tokens vary.
    fn unit(d: usize) -> f64 {
        if d == REQUESTS { 1.0 } else { 0.0 }
    }

    fn rebase(&mut self, d: usize, now: T) {
        if let Some(rate) = self.pace(d) {
            let capacity = self.capacity(d, rate);
            self.buckets[d].rebase(now, rate, capacity);
        }
    }

    /// When a call at `ticket` costing `cost` may go: every dimension paid,
    /// and not before the cool-down.
    pub(crate) fn turn_at(&self, ticket: &Ticket, cost: &Amounts, now: T) -> T {
        let mut at = now;
        for d in 0..DIMENSIONS {
            if let Some(rate) = self.pace(d).filter(|_| cost[d] > 0.0) {
                at = at.max(self.buckets[d].turn(ticket[d], cost[d], now, rate));
            }
        }
        self.cool_down_until.map_or(at, |until| at.max(until))
    }

    /// How far each dimension has paid by `now` (without limit when it does
    /// not pace): a look that later finds any further means turns moved sooner.
    pub(crate) fn paid(&self, now: T) -> Amounts {
        [0, 1, 2, 3].map(|d| match self.pace(d) {
            Some(rate) if self.cool_down_until.is_none_or(|until| until <= now) => {
                self.buckets[d].reach(now, rate)
            }
            Some(_) => f64::NEG_INFINITY,
            None => f64::INFINITY,
        })
    }

    /// The positions the next call takes, and where the calls handed their
    /// turn end.
    pub(crate) fn positions(&self) -> (Amounts, Amounts) {
        (
            [0, 1, 2, 3].map(|d| self.buckets[d].next),
            [0, 1, 2, 3].map(|d| self.buckets[d].gone),
        )
    }

    /// How many requests are queued and not yet paid at `now`.
    #[cfg(feature = "redis")]
    pub(crate) fn queued(&self, now: T) -> f64 {
        let bucket = &self.buckets[REQUESTS];
        match self.pace(REQUESTS) {
            Some(rate) => (bucket.next - bucket.reach(now, rate)).max(0.0),
            None => 0.0,
        }
    }

    /// When a call arriving at `now` costing one request would get its turn.
    pub(crate) fn next_turn(&self, now: T) -> T {
        if self.is_idle(now) {
            return now;
        }
        let (ticket, _) = self.positions();
        self.turn_at(&ticket, &ONE_REQUEST, now).max(now)
    }

    /// A ticket for a call arriving at `now` costing `cost`, and when to look
    /// again; or, if its turn surely comes after `latest`, how long it would
    /// have had to wait, and no ticket is taken.
    pub(crate) fn reserve(
        &mut self,
        now: T,
        latest: T,
        cost: &Amounts,
        successes: u64,
    ) -> Result<(Ticket, Check<T>), Duration> {
        self.sample(now, successes);
        if self.first_contact() {
            let since = *self.contact.get_or_insert(now);
            if now.saturating_duration_since(since) >= FIRST_CONTACT_LONGEST {
                self.hear(now);
            }
        }
        for d in 0..DIMENSIONS {
            // An idle spell saves up no more than the bucket holds.
            if let Some(rate) = self.pace(d)
                && self.buckets[d].reach(now, rate) >= self.buckets[d].next
            {
                self.rebase(d, now);
            }
        }
        // A place in every dimension, pacing or not: should one start to
        // pace, the calls keep their order, and those not handed their turn
        // yet wait for it.
        let ticket: Ticket = [0, 1, 2, 3].map(|d| self.buckets[d].next);
        match self.check(&ticket, cost, now, latest) {
            Check::TooLate(wait) => Err(wait),
            check => {
                if check == Check::Go {
                    self.granted(now, &ticket, cost);
                }
                for (bucket, cost) in self.buckets.iter_mut().zip(cost) {
                    bucket.next += cost;
                }
                Ok((ticket, check))
            }
        }
    }

    /// Whether the call at `ticket` may go at `now`; else when to look again,
    /// or that it cannot by `latest`. A cool-down is the server's word, and a
    /// request rate at its ceiling and token rates cannot rise, so past
    /// `latest` by any of them the caller gives up at once; a queue paced at
    /// a request rate still climbing can shorten, so its callers wait — up to
    /// `latest` — and look again.
    pub(crate) fn check(&self, ticket: &Ticket, cost: &Amounts, now: T, latest: T) -> Check<T> {
        let at = self.turn_at(ticket, cost, now);
        if at <= now {
            return Check::Go;
        }
        let climbing =
            self.probe_since.is_none() && self.rate.is_some_and(|rate| Some(rate) != self.ceiling);
        let sure = self.cool_down_until.is_some_and(|until| until > latest) || !climbing;
        if at > latest && (sure || now >= latest) {
            return Check::TooLate(at.saturating_duration_since(now));
        }
        Check::WaitUntil(at.min(latest).min(now.saturating_add(RECHECK)))
    }

    /// The call at `ticket` costing `cost` was handed its turn at `now`.
    pub(crate) fn granted(&mut self, now: T, ticket: &Ticket, cost: &Amounts) {
        for (bucket, (place, cost)) in self.buckets.iter_mut().zip(ticket.iter().zip(cost)) {
            bucket.gone = bucket.gone.max(place + cost);
        }
        self.grants = match self.grants {
            Some((first, last)) if now.saturating_duration_since(last) < RUN => Some((first, now)),
            _ => Some((now, now)),
        };
    }

    /// Whether a call sent at `at` was one of a run.
    fn in_run(&self, at: T) -> bool {
        matches!(self.grants, Some((first, last))
            if first < last && at.saturating_add(RUN) >= first && at <= last.saturating_add(RUN))
    }

    /// A caller gives its ticket back unused: when it was the last one handed
    /// out and is still to be paid, its place goes to the next arrival.
    pub(crate) fn release(&mut self, ticket: &Ticket, cost: &Amounts) {
        let last = (0..DIMENSIONS).all(|d| {
            let bucket = &self.buckets[d];
            ticket[d] + cost[d] == bucket.next && ticket[d] >= bucket.pos
        });
        if last {
            for (bucket, position) in self.buckets.iter_mut().zip(ticket) {
                bucket.next = *position;
            }
        }
    }

    /// The floor: 0.5 requests a second, or the announced limit's pace if lower.
    fn floor(&self) -> f64 {
        self.ceiling.map_or(FLOOR, |ceiling| ceiling.min(FLOOR))
    }

    fn set_rate(&mut self, now: T, rate: f64) {
        let floor = self.floor();
        let rate = match self.ceiling {
            Some(ceiling) => rate.clamp(floor, ceiling),
            None => rate.max(floor),
        };
        if self.rate == Some(rate) {
            return;
        }
        self.rebase(REQUESTS, now);
        if self.rate.is_none_or(|old| rate < old) {
            self.last_decrease = Some(now);
        }
        let started = self.pace(REQUESTS).is_none();
        self.rate = Some(rate);
        if started {
            self.start_pacing(REQUESTS, now);
        }
    }

    /// A dimension that starts pacing during a cool-down pays nothing before
    /// its end either.
    fn hold_for_cool_down(&mut self, d: usize, now: T) {
        if let Some(until) = self.cool_down_until.filter(|until| *until > now) {
            self.hold(d, now, until);
        }
    }

    /// No turn for `wait`; those already waiting keep their order behind it.
    /// A wait longer than [`LONGEST_COOL_DOWN`] closes the key that long and
    /// then lets one probe through per span, until one succeeds.
    pub(crate) fn cool_down(&mut self, now: T, wait: Duration) {
        if self.kept(now) && wait <= KEPT_THROUGH {
            return;
        }
        if wait > LONGEST_COOL_DOWN && self.probe_since.is_none() {
            // Re-anchored at the old pace before the probe's takes over.
            self.rebase(REQUESTS, now);
            self.probe_since = Some(now);
        }
        let until = now.saturating_add(wait.min(LONGEST_COOL_DOWN));
        if self.cool_down_until.is_some_and(|current| current >= until) {
            return;
        }
        for d in 0..DIMENSIONS {
            self.hold(d, now, until);
        }
        self.cool_down_until = Some(until);
    }

    /// Re-anchors dimension `d` at `now` and pays nothing in it before `until`.
    fn hold(&mut self, d: usize, now: T, until: T) {
        if let Some(rate) = self.pace(d) {
            let capacity = self.capacity(d, rate);
            let bucket = &mut self.buckets[d];
            bucket.rebase(now, rate, capacity);
            bucket.hold_until(until, rate, Self::unit(d));
        }
    }

    /// Takes in what a process knows (see [`Seed`]): what the store's script
    /// does, mirrored for the tests that compare the two.
    #[cfg(all(test, feature = "redis"))]
    pub(crate) fn seed(&mut self, now: T, seed: &Seed) {
        for (d, limit) in seed.limits.iter().enumerate() {
            let current = self.buckets[d].limit;
            if let Some(limit) = *limit
                && (current.is_none() || (seed.learned && current != Some(limit)))
            {
                self.learn(d, now, limit);
            }
        }
        if seed.probing && self.probe_since.is_none() {
            self.rebase(REQUESTS, now);
            self.probe_since = Some(now);
        }
        if let Some(cool) = seed.cool.filter(|c| !c.is_zero()) {
            self.cool_down(now, cool);
        }
        match seed.positions {
            Some((next, gone)) => {
                // Its queue is in this schedule: what it handed out was paid.
                for d in 0..DIMENSIONS {
                    let pace = self.pace(d);
                    let bucket = &mut self.buckets[d];
                    bucket.next = bucket.next.max(next[d]);
                    bucket.gone = bucket.gone.max(gone[d]);
                    if let Some(rate) = pace
                        && bucket.reach(now, rate) < bucket.gone
                    {
                        bucket.pos = bucket.gone;
                        bucket.level = 0.0;
                        bucket.origin = Some(now);
                        bucket.decided = Some(now);
                    }
                }
            }
            None => {
                if let Some(busy) = seed.busy {
                    self.push_back(now, busy);
                }
            }
        }
    }

    /// Goes on from `store`, the fleet's state as last read from the store
    /// (its instants mapped to this clock by `clock`): the queue with every
    /// process's places in it, the rate and its climb, the buckets. Kept from
    /// this state: what the read may not carry yet — a limit, a longer
    /// cool-down, a probe — and the success samples, which count this
    /// process's successes, not the fleet's — and, when this state went on
    /// from an earlier read of the same key (`again`), the positions it
    /// handed out since. Unless the queue is this process's `alone`, the
    /// schedule is kept as it is until it has run (see `kept_until`). An
    /// instant `clock` cannot map (older than this process's clock reaches)
    /// is taken as none.
    #[cfg(feature = "redis")]
    pub(crate) fn follow<U: Time>(
        &mut self,
        now: T,
        store: &State<U>,
        clock: impl Fn(U) -> Option<T>,
        alone: bool,
        again: bool,
    ) {
        let time = |t: Option<U>| t.and_then(&clock);
        let bucket = |b: &Bucket<U>| Bucket {
            limit: b.limit,
            capacity: b.capacity,
            origin: time(b.origin),
            pos: b.pos,
            level: b.level,
            next: b.next,
            gone: b.gone,
            synced: time(b.synced),
            decided: time(b.decided),
            told: time(b.told),
            told_left: b.told_left,
        };
        let mine = std::mem::replace(
            self,
            State {
                rate: store.rate,
                ceiling: store.ceiling,
                buckets: [0, 1, 2, 3].map(|d| bucket(&store.buckets[d])),
                cool_down_until: time(store.cool_down_until),
                probe_since: time(store.probe_since),
                last_decrease: time(store.last_decrease),
                last_max: store.last_max,
                last_throttle: time(store.last_throttle),
                episodes: store.episodes,
                samples: [None, None],
                heard: store.heard,
                contact: time(store.contact),
                grants: store
                    .grants
                    .and_then(|(first, last)| Some((clock(first)?, clock(last)?))),
                kept_until: None,
            },
        );
        self.samples = mine.samples;
        if again {
            for (bucket, before) in self.buckets.iter_mut().zip(&mine.buckets) {
                bucket.next = bucket.next.max(before.next);
                bucket.gone = bucket.gone.max(before.gone);
            }
        }
        for d in 0..DIMENSIONS {
            if let (None, Some(limit)) = (self.buckets[d].limit, mine.buckets[d].limit) {
                self.learn(d, now, limit);
            }
        }
        if mine.probe_since.is_some() && self.probe_since.is_none() {
            self.rebase(REQUESTS, now);
            self.probe_since = Some(now);
        }
        if let Some(until) = mine.cool_down_until.filter(|until| *until > now) {
            self.cool_down(now, until.saturating_duration_since(now));
        }
        if !alone {
            self.kept_until = Some(self.next_turn(now));
        }
    }

    /// The request schedule starts no sooner than `busy` from now: another
    /// queue (this process's own) runs until then.
    #[cfg(all(test, feature = "redis"))]
    fn push_back(&mut self, now: T, busy: Duration) {
        let Some(rate) = self.pace(REQUESTS) else {
            return;
        };
        if busy.is_zero() {
            return;
        }
        let until = now.saturating_add(busy);
        let capacity = self.capacity(REQUESTS, rate);
        let bucket = &mut self.buckets[REQUESTS];
        if bucket.turn(bucket.next, 1.0, now, rate) < until {
            bucket.rebase(now, rate, capacity);
            bucket.hold_until(until, rate, 1.0);
        }
    }

    /// Probing ends: those waiting go from `now` at the pacing rate again.
    fn end_probe(&mut self, now: T) {
        self.rebase(REQUESTS, now);
        self.probe_since = None;
        let bucket = &mut self.buckets[REQUESTS];
        bucket.pos = bucket.pos.floor();
        bucket.level = bucket.level.max(1.0);
    }

    /// Whether `sent` answers a probe: a request sent since probing began.
    fn answers_probe(&self, sent: Option<T>) -> bool {
        matches!((self.probe_since, sent), (Some(since), Some(sent)) if sent >= since)
    }

    /// Forgets what was learned — cool-down, probing, rate, episodes, limits
    /// learned — and starts again from `limits` (those given at
    /// construction). Tickets already handed out keep their order, paced
    /// afresh from `now`.
    pub(crate) fn clear(&mut self, now: T, limits: Limits) {
        self.rebase(REQUESTS, now);
        let first = self.buckets[REQUESTS].pos.floor();
        let (next, gone) = self.positions();
        *self = State::new(limits);
        for ((bucket, next), gone) in self.buckets.iter_mut().zip(next).zip(gone) {
            bucket.next = next;
            bucket.gone = gone;
        }
        // The first caller waiting goes now, the others paced behind it;
        // the token buckets start full.
        let requests = &mut self.buckets[REQUESTS];
        requests.origin = Some(now);
        requests.decided = Some(now);
        requests.pos = first;
        requests.level = 1.0;
    }

    /// The limit a server announced for dimension `d`, per minute: pacing
    /// stays a margin below it.
    pub(crate) fn learn(&mut self, d: usize, now: T, per_minute: u64) {
        self.hear(now);
        if d == REQUESTS {
            return self.learn_limit(now, per_minute);
        }
        if per_minute == 0 || self.buckets[d].limit == Some(per_minute) {
            return;
        }
        let started = self.pace(d).is_none();
        self.rebase(d, now);
        self.buckets[d].limit = Some(per_minute);
        if started {
            return self.start_pacing(d, now);
        }
        // A lower limit holds less: no more than its own second's worth.
        let rate = paced_below(per_minute);
        let capacity = self.capacity(d, rate);
        let bucket = &mut self.buckets[d];
        bucket.level = bucket.level.min(capacity);
    }

    /// Dimension `d` paces from `now` on: full, from where the calls handed
    /// their turn end — those still waiting pay from there, in order — and
    /// paying nothing before a cool-down's end.
    fn start_pacing(&mut self, d: usize, now: T) {
        self.buckets[d].origin = None;
        self.rebase(d, now);
        self.hold_for_cool_down(d, now);
    }

    /// The request limit a server announced, per minute: pacing stays a
    /// margin below it.
    pub(crate) fn learn_limit(&mut self, now: T, per_minute: u64) {
        if per_minute == 0 || self.buckets[REQUESTS].limit == Some(per_minute) {
            return;
        }
        self.buckets[REQUESTS].limit = Some(per_minute);
        let ceiling = paced_below(per_minute);
        self.ceiling = Some(ceiling);
        let rate = match self.rate {
            // Below the new ceiling after a throttle: CUBIC climbs back to it.
            Some(rate) if self.last_throttle.is_some() => rate.min(ceiling),
            _ => ceiling,
        };
        self.set_rate(now, rate);
    }

    /// A response's word on dimension `d`: `remaining` was left when its
    /// request was sent, at `at`. With the limit known, the bucket is
    /// re-anchored there — `remaining: 0` then means the next call waits for
    /// its cost to refill, not for the bucket to be full; with no limit known
    /// it tells nothing to pace by (a reset, if any, is a cool-down).
    pub(crate) fn resync(&mut self, d: usize, now: T, at: T, remaining: u64, handed: Option<f64>) {
        self.hear(now);
        if self.kept(now) {
            return;
        }
        // A limiter that began blind (first contact) takes its buckets'
        // first words whatever they say: how a minute's bucket is learned.
        // One seeded with its limits paced its first burst on them, and the
        // answers of that burst cannot tell which of its calls they counted.
        let starts = self.buckets[d].synced.is_none() && self.contact.is_some();
        let only_lower = self.in_run(at) && !starts;
        if let Some(rate) = self.pace(d) {
            self.buckets[d].resync(now, at, rate, remaining as f64, only_lower, handed);
            let capacity = self.capacity(d, rate);
            self.buckets[d].hold_at_most(now, rate, capacity);
            // The server's word is as of `at`; a cool-down running still holds.
            self.hold_for_cool_down(d, now);
        }
    }

    /// What an attempt that took its turn at `sent` (`None`: no schedule was
    /// running then) and cost `cost` came back with, at `now`; `successes` is
    /// the count of successes so far, kept outside the lock.
    pub(crate) fn record(
        &mut self,
        now: T,
        sent: Option<T>,
        cost: &Amounts,
        outcome: Outcome,
        successes: u64,
    ) {
        self.hear(now);
        self.sample(now, successes);
        match outcome {
            Outcome::Success => {
                if self.answers_probe(sent) {
                    // The probe got through: the key is open for everyone.
                    self.end_probe(now);
                    self.cool_down_until = None;
                }
                self.admitted_in_episode(now, sent, successes);
                self.climb(now);
            }
            Outcome::Overloaded(hint) => self.cool_down(now, hint),
            Outcome::Throttle(hint) => {
                self.refund(now, sent, cost);
                if let Some(hint) = hint {
                    if hint <= LONGEST_COOL_DOWN && self.answers_probe(sent) {
                        // The server's newer word is a short wait: no more probing.
                        self.end_probe(now);
                    }
                    let held = self.holds_everyone(hint, sent, cost);
                    if !held.is_zero() {
                        self.cool_down(now, held);
                    }
                }
                let new_episode = match (self.last_decrease, sent) {
                    (None, _) => true,
                    (Some(decrease), Some(sent)) => sent > decrease,
                    // Sent before pacing began, so before the last decrease.
                    (Some(_), None) => false,
                };
                if new_episode {
                    self.decrease(now, successes, hint, cost);
                }
            }
        }
    }

    /// What of a refused call's `hint` holds every caller. A hint in whole
    /// seconds (`retry-after: 1`) is the server's reset rounded up, by up to
    /// a second. When an answer at least as new as the refused call told a
    /// bucket whose limit is known that less was left than the call costs
    /// there, that bucket paces the next turn from the server's own count,
    /// and only the hint past its rounding holds the others; the refused
    /// call still waits the whole hint in its retry loop. Without such news,
    /// or past a minute (a probe), the whole hint holds everyone.
    fn holds_everyone(&self, hint: Duration, sent: Option<T>, cost: &Amounts) -> Duration {
        let whole_seconds = hint.as_micros().is_multiple_of(1_000_000);
        let news = sent.is_some_and(|sent| {
            self.buckets.iter().zip(cost).any(|(bucket, cost)| {
                bucket.limit.is_some()
                    && *cost > 0.0
                    && bucket.told_left < *cost
                    && bucket.told.is_some_and(|told| told >= sent)
            })
        });
        match whole_seconds && news && hint <= LONGEST_COOL_DOWN {
            true => hint.saturating_sub(Duration::from_secs(1)),
            false => hint,
        }
    }

    /// A refused call's tokens were never spent: given back, in every token
    /// dimension not re-anchored by a response since it was sent (whose
    /// `remaining` already counts them unspent).
    fn refund(&mut self, now: T, sent: Option<T>, cost: &Amounts) {
        for d in [TOKENS, INPUT, OUTPUT] {
            let Some(rate) = self.pace(d) else {
                continue;
            };
            let capacity = self.capacity(d, rate);
            let bucket = &mut self.buckets[d];
            let news =
                matches!((bucket.synced, sent), (Some(synced), Some(sent)) if synced >= sent);
            if cost[d] > 0.0 && !news {
                // The calls behind it go that much sooner; the bucket holds
                // no more than it can.
                bucket.level += cost[d];
                bucket.hold_at_most(now, rate, capacity);
            }
        }
    }

    /// One throttle episode: the rate drops to β of what it was (of the rate
    /// the server was seen admitting, when no rate was known yet). With
    /// nothing admitted yet there is nothing to scale: a probing pace starts
    /// instead — one request per `hint` (the server's time to its next
    /// one), or the floor — so that the callers released after the cool-down
    /// go out spread, not together, and successes climb it from there.
    fn decrease(&mut self, now: T, successes: u64, hint: Option<Duration>, cost: &Amounts) {
        if self.kept(now) {
            return;
        }
        let current = self
            .rate
            .unwrap_or_else(|| self.admitted_rate(now, successes));
        if current <= 0.0 && hint.is_some_and(|hint| hint > LONGEST_COOL_DOWN) {
            // A long hint probes the key its own way: one call a minute.
            return;
        }
        let tokens_paced = [TOKENS, INPUT, OUTPUT]
            .iter()
            .any(|&d| cost[d] > 0.0 && self.buckets[d].limit.is_some());
        if tokens_paced && self.buckets[REQUESTS].limit.is_none() {
            // The refused call's tokens are paced by the limits the server
            // announced, whose buckets each response re-anchors: no request
            // rate to learn from it.
            return;
        }
        self.episodes += 1;
        self.last_throttle = Some(now);
        if current <= 0.0 {
            let probing = hint
                .map(|hint| hint.as_secs_f64())
                .filter(|secs| *secs > 0.0)
                .map_or(FLOOR, |secs| (1.0 / secs).max(FLOOR));
            self.last_max = probing;
            self.set_rate(now, probing);
            self.last_decrease = Some(now);
            return;
        }
        self.last_max = current;
        self.set_rate(now, current * BETA);
        // Counted even when already at the floor: later throttles answering
        // requests sent before now are this episode's.
        self.last_decrease = Some(now);
    }

    /// A success answering a request sent before the last decrease belongs to
    /// the wave that was throttled: what the server admitted of that wave is a
    /// floor under the rate it can take, so the episode's maximum rises to it.
    fn admitted_in_episode(&mut self, now: T, sent: Option<T>, successes: u64) {
        if self.kept(now) {
            return;
        }
        let (Some(decrease), Some(_)) = (self.last_decrease, self.last_throttle) else {
            return;
        };
        if sent.is_some_and(|sent| sent >= decrease) {
            return;
        }
        let admitted = self.admitted_rate(now, successes);
        if admitted > self.last_max {
            self.last_max = admitted;
            if self.rate.is_some_and(|rate| rate < admitted * BETA) {
                self.set_rate(now, admitted * BETA);
            }
        }
    }

    /// CUBIC's growth after the last throttle: `C·(t − K)³ + W_max`, with
    /// `K = ∛(W_max·(1 − β)/C)`, so the rate is back at `W_max` after `K` seconds
    /// and probes beyond it after that.
    fn climb(&mut self, now: T) {
        if self.kept(now) {
            return;
        }
        let (Some(throttled), Some(rate)) = (self.last_throttle, self.rate) else {
            return;
        };
        let t = now.saturating_duration_since(throttled).as_secs_f64();
        let k = (self.last_max * (1.0 - BETA) / SCALE).cbrt();
        let cubic = SCALE * (t - k).powi(3) + self.last_max;
        if cubic.is_finite() && cubic > rate {
            self.set_rate(now, cubic);
        }
    }

    /// Whether the schedule is kept as it is (see `kept_until`).
    fn kept(&self, now: T) -> bool {
        self.kept_until.is_some_and(|until| now < until)
    }

    /// Successes per second over the last second or more.
    fn admitted_rate(&self, now: T, successes: u64) -> f64 {
        let (at, counted) = self.samples[0].or(self.samples[1]).unwrap_or((now, 0));
        let span = now.saturating_duration_since(at).max(MEASURE_WINDOW);
        successes.saturating_sub(counted) as f64 / span.as_secs_f64()
    }

    /// Keeps two samples of the success count at least a window apart.
    pub(crate) fn sample(&mut self, now: T, successes: u64) {
        let newer = self.samples[1];
        if newer.is_none_or(|(at, _)| now.saturating_duration_since(at) >= MEASURE_WINDOW) {
            self.samples = [newer, Some((now, successes))];
        }
    }
}

#[cfg(feature = "redis")]
impl State<super::time::Micros> {
    /// The state as the Redis script keeps it: a hash of numbers, absent for
    /// `None`; a bucket's fields carry its dimension's prefix (`r`, `t`, `i`, `o`).
    pub(crate) fn from_fields(field: impl Fn(&str) -> Option<f64>) -> Self {
        use super::time::Micros;
        let time = |name: &str| field(name).map(|v| Micros(v as u64));
        let pair = |t: &str, c: &str| Some((time(t)?, field(c)? as u64));
        let bucket = |d: &str| {
            let named = |name: &str| format!("{d}{name}");
            Bucket {
                limit: field(&named("lim")).map(|v| v as u64),
                capacity: field(&named("cap")).unwrap_or(0.0),
                origin: time(&named("org")),
                pos: field(&named("pos")).unwrap_or(0.0),
                level: field(&named("lvl")).unwrap_or(0.0),
                next: field(&named("nxt")).unwrap_or(0.0),
                gone: field(&named("gon")).unwrap_or(0.0),
                synced: time(&named("syn")),
                decided: time(&named("dec")),
                told: time(&named("tol")),
                told_left: field(&named("tlf")).unwrap_or(0.0),
            }
        };
        State {
            rate: field("rate"),
            ceiling: field("ceiling"),
            buckets: [bucket("r"), bucket("t"), bucket("i"), bucket("o")],
            cool_down_until: time("cool"),
            probe_since: time("probe"),
            last_decrease: time("ldec"),
            last_max: field("lmax").unwrap_or(0.0),
            last_throttle: time("lthr"),
            episodes: field("episodes").map_or(0, |v| v as u64),
            samples: [pair("s0t", "s0c"), pair("s1t", "s1c")],
            heard: field("hrd").is_some(),
            contact: time("ctc"),
            grants: time("gfst").zip(time("glst")),
            kept_until: None,
        }
    }
}

#[cfg(all(test, feature = "redis"))]
impl State<super::time::Micros> {
    /// Every field, by the script's names: what the Lua-vs-Rust test compares.
    pub(crate) fn fields(&self) -> Vec<(String, Option<f64>)> {
        let time = |t: Option<super::time::Micros>| t.map(|t| t.0 as f64);
        let mut fields = vec![
            ("rate".to_string(), self.rate),
            ("ceiling".into(), self.ceiling),
            ("cool".into(), time(self.cool_down_until)),
            ("probe".into(), time(self.probe_since)),
            ("ldec".into(), time(self.last_decrease)),
            ("lmax".into(), Some(self.last_max)),
            ("lthr".into(), time(self.last_throttle)),
            ("episodes".into(), Some(self.episodes as f64)),
            ("hrd".into(), self.heard.then_some(1.0)),
            ("ctc".into(), time(self.contact)),
            ("gfst".into(), time(self.grants.map(|(first, _)| first))),
            ("glst".into(), time(self.grants.map(|(_, last)| last))),
        ];
        for (d, bucket) in ["r", "t", "i", "o"].iter().zip(&self.buckets) {
            fields.extend([
                (format!("{d}lim"), bucket.limit.map(|v| v as f64)),
                (format!("{d}cap"), Some(bucket.capacity)),
                (format!("{d}org"), time(bucket.origin)),
                (format!("{d}pos"), Some(bucket.pos)),
                (format!("{d}lvl"), Some(bucket.level)),
                (format!("{d}nxt"), Some(bucket.next)),
                (format!("{d}gon"), Some(bucket.gone)),
                (format!("{d}syn"), time(bucket.synced)),
                (format!("{d}dec"), time(bucket.decided)),
                (format!("{d}tol"), time(bucket.told)),
                (format!("{d}tlf"), Some(bucket.told_left)),
            ]);
        }
        fields
    }
}

/// A limit given at construction: `0` is none.
const fn known(per_minute: u32) -> Option<u64> {
    match per_minute {
        0 => None,
        n => Some(n as u64),
    }
}

/// The pacing rate for a limit of `per_minute`, in its units per second.
const fn paced_below(per_minute: u64) -> f64 {
    per_minute as f64 / 60.0 * MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_contact_spreads_the_first_wave_until_an_answer_comes_back() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(60);
        let mut state = State::new([0; 4]);
        assert!(!state.is_idle(t0), "nothing heard yet: turns are looked at");
        // The first caller goes at once; the others follow at the first-contact pace.
        let turns: Vec<Instant> = (0..4)
            .map(|_| {
                let (ticket, _) = state.reserve(t0, far, &ONE_REQUEST, 0).unwrap();
                state.turn_at(&ticket, &ONE_REQUEST, t0)
            })
            .collect();
        assert_eq!(turns, [t0, t0 + ms(20), t0 + ms(40), t0 + ms(60)]);
        // An answer with nothing to pace by: the rest go at once, and turns
        // cost a look no more.
        let waiting = state.reserve(t0 + ms(5), far, &ONE_REQUEST, 0).unwrap().0;
        state.record(t0 + ms(6), Some(t0), &ONE_REQUEST, Outcome::Success, 1);
        assert_eq!(
            state.check(&waiting, &ONE_REQUEST, t0 + ms(6), far),
            Check::Go
        );
        assert!(state.is_idle(t0 + ms(6)));
        for _ in 0..5 {
            assert_eq!(
                state
                    .reserve(t0 + ms(7), t0 + ms(7), &ONE_REQUEST, 0)
                    .map(|(_, check)| check),
                Ok(Check::Go)
            );
        }
    }

    #[test]
    fn first_contact_paces_no_longer_than_its_bound_without_an_answer() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(60);
        let mut state = State::new([0; 4]);
        let _ = state.reserve(t0, far, &ONE_REQUEST, 0).unwrap();
        let later = t0 + FIRST_CONTACT_LONGEST;
        let _ = state.reserve(later - ms(1), far, &ONE_REQUEST, 0).unwrap();
        assert!(!state.is_idle(later - ms(1)));
        let (_, check) = state.reserve(later, far, &ONE_REQUEST, 0).unwrap();
        assert_eq!(check, Check::Go);
        assert!(state.is_idle(later));
    }

    #[test]
    fn calls_waiting_when_tokens_start_to_pace_pay_in_order_from_what_went() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(600);
        let cost = [1.0, 5_000.0, 0.0, 0.0];
        let mut state = State::new([0; 4]);
        // First contact: the first call goes, the second a pace later (not
        // in a burst with it), the third waits; nobody knows the token limit
        // yet.
        let (first, _) = state.reserve(t0, far, &cost, 0).unwrap();
        let (second, _) = state.reserve(t0, far, &cost, 0).unwrap();
        let (third, _) = state.reserve(t0, far, &cost, 0).unwrap();
        let went = t0 + ms(30);
        assert_eq!(state.check(&second, &cost, went, far), Check::Go);
        state.granted(went, &second, &cost);
        // The second call's answer: 60,000 tokens a minute, 1,000 left after
        // the two calls handed out by its send.
        state.learn(TOKENS, t0 + ms(35), 60_000);
        state.resync(TOKENS, t0 + ms(35), went, 1_000, Some(10_000.0));
        assert!(!state.is_idle(t0 + ms(35)));
        // The third, placed behind them while nothing paced, waits for its
        // own 5,000 beyond the 1,000 (at 950 a second).
        let due = state.turn_at(&third, &cost, t0 + ms(35));
        // (From the answer on: the bucket was seen holding 1,000 at most.)
        let expected = t0 + ms(35) + Duration::from_secs_f64(4_000.0 / 950.0);
        let off = due.max(expected) - due.min(expected);
        assert!(off < ms(1), "{due:?} vs {expected:?}");
        assert_eq!(first[TOKENS], 0.0);
    }

    #[test]
    fn an_answer_that_reached_the_server_late_does_not_lower_the_bucket() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(600);
        let cost = [1.0, 1_000.0, 0.0, 0.0];
        let mut state = State::new([0; 4]);
        // First contact: A goes, B and C a pace apart; no answer yet.
        let (_a, _) = state.reserve(t0, far, &cost, 0).unwrap();
        let (b, _) = state.reserve(t0, far, &cost, 0).unwrap();
        let (c, _) = state.reserve(t0, far, &cost, 0).unwrap();
        for (ticket, at) in [(&b, t0 + ms(20)), (&c, t0 + ms(40))] {
            assert_eq!(state.check(ticket, &cost, at, far), Check::Go);
            state.granted(at, ticket, &cost);
        }
        // A's answer: 6,000 tokens a minute, 5,000 left after A.
        state.learn(TOKENS, t0 + ms(45), 6_000);
        state.resync(TOKENS, t0 + ms(45), t0, 5_000, Some(1_000.0));
        // B's process was slow to send: C reached the server first, and B's
        // answer says 2,000 left after A, B and C. Counting B's own turn
        // alone would take 1,000 tokens the server still has for a debt.
        state.resync(TOKENS, t0 + ms(70), t0 + ms(20), 2_000, Some(2_000.0));
        // So a call of 2,000 after the three goes at once.
        let big = [1.0, 2_000.0, 0.0, 0.0];
        let (_, check) = state.reserve(t0 + ms(70), far, &big, 0).unwrap();
        assert_eq!(check, Check::Go);
    }

    #[test]
    fn a_known_limit_spaces_turns_in_arrival_order() {
        let t0 = Instant::now();
        // 600 a minute is 10 a second; paced at 95% of it.
        let mut state = State::new([600, 0, 0, 0]);
        let far = t0 + Duration::from_secs(60);
        let tickets: Vec<Ticket> = (0..4)
            .map(|_| state.reserve(t0, far, &ONE_REQUEST, 0).unwrap().0)
            .collect();
        let turns: Vec<Instant> = tickets
            .iter()
            .map(|t| state.turn_at(t, &ONE_REQUEST, t0))
            .collect();
        let interval = Duration::from_secs_f64(1.0 / 9.5);
        for (i, at) in turns.iter().enumerate() {
            assert_eq!(*at, t0 + interval * i as u32);
        }
    }

    #[test]
    fn a_cool_down_moves_those_waiting_behind_it_in_order() {
        let t0 = Instant::now();
        let mut state = State::new([600, 0, 0, 0]);
        let far = t0 + Duration::from_secs(60);
        let tickets: Vec<Ticket> = (0..3)
            .map(|_| state.reserve(t0, far, &ONE_REQUEST, 0).unwrap().0)
            .collect();
        state.cool_down(t0 + ms(1), Duration::from_secs(2));
        let at: Vec<Instant> = tickets
            .iter()
            .map(|t| state.turn_at(t, &ONE_REQUEST, t0 + ms(1)))
            .collect();
        let interval = Duration::from_secs_f64(1.0 / 9.5);
        // Ticket 0 had gone at t0; the two still waiting restart after the cool-down.
        assert_eq!(at[1], t0 + ms(2001));
        assert_eq!(at[2], t0 + ms(2001) + interval);
        // A new arrival queues behind them.
        let (next, _) = state.reserve(t0 + ms(2), far, &ONE_REQUEST, 0).unwrap();
        assert_eq!(
            state.turn_at(&next, &ONE_REQUEST, t0 + ms(2)),
            t0 + ms(2001) + interval * 2
        );
    }

    #[test]
    fn a_refusal_its_answer_counted_holds_the_others_only_past_the_hints_rounding() {
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(60);
        // What the refusal's own answer said was left, if anything.
        let refused = |left: Option<u64>| {
            // 1200 a minute: 19 a second, ~53 ms apart.
            let mut state = State::new([1200, 0, 0, 0]);
            let tickets: Vec<Ticket> = (0..3)
                .map(|_| state.reserve(t0, far, &ONE_REQUEST, 0).unwrap().0)
                .collect();
            let answered = t0 + ms(5);
            if let Some(left) = left {
                state.resync(REQUESTS, answered, t0, left, Some(1.0));
            }
            state.record(
                answered,
                Some(t0),
                &ONE_REQUEST,
                Outcome::Throttle(Some(Duration::from_secs(1))),
                0,
            );
            state.turn_at(&tickets[1], &ONE_REQUEST, answered)
        };
        // `retry-after: 1` is a reset of tens of ms rounded up: with the
        // server's count in hand, the next caller goes when the bucket has
        // paid its request again, not a second later.
        let next = refused(Some(0));
        assert!(next < t0 + ms(200), "{:?}", next - t0);
        // Without it, the whole hint holds everyone; and so when the answer
        // said requests were left: the refusal was for a limit it did not
        // show (concurrency, a daily quota).
        assert!(refused(None) >= t0 + Duration::from_secs(1));
        assert!(refused(Some(5)) >= t0 + Duration::from_secs(1));
    }

    #[test]
    fn a_turn_past_the_bound_takes_no_ticket() {
        let t0 = Instant::now();
        let mut state = State::new([0; 4]);
        state.cool_down(t0, Duration::from_secs(5));
        assert_eq!(
            state.reserve(t0, t0 + ms(100), &ONE_REQUEST, 0),
            Err(Duration::from_secs(5))
        );
        assert_eq!(state.buckets[REQUESTS].next, 0.0);
    }

    #[test]
    fn a_queue_at_a_climbing_rate_waits_but_one_at_the_ceiling_gives_up() {
        let t0 = Instant::now();
        let latest = t0 + Duration::from_secs(1);
        // Known limit, at the ceiling: the fifteenth caller's turn is surely late.
        let mut known = State::new([600, 0, 0, 0]);
        let late = (0..15)
            .map(|_| known.reserve(t0, latest, &ONE_REQUEST, 0))
            .last()
            .unwrap();
        assert!(matches!(late, Err(wait) if wait > Duration::from_secs(1)));
        // A rate learned from a throttle may climb: the caller waits and looks again.
        let mut learned = State::new([0; 4]);
        let _ = learned.reserve(t0, t0, &ONE_REQUEST, 0);
        learned.record(t0, None, &ONE_REQUEST, Outcome::Success, 1);
        learned.record(t0, Some(t0), &ONE_REQUEST, Outcome::Throttle(None), 1);
        // One success in the first second: 70% of 1/s.
        assert!((learned.rate().unwrap() - 0.7).abs() < 1e-9);
        let (_, _) = learned.reserve(t0, latest, &ONE_REQUEST, 1).unwrap();
        let (ticket, check) = learned.reserve(t0, latest, &ONE_REQUEST, 1).unwrap();
        assert_eq!(check, Check::WaitUntil(t0 + RECHECK));
        // At `latest` with the turn still ahead, it gives up.
        assert!(matches!(
            learned.check(&ticket, &ONE_REQUEST, latest, latest),
            Check::TooLate(_)
        ));
    }

    #[test]
    fn one_episode_lowers_the_rate_once() {
        let t0 = Instant::now();
        let mut state = State::new([1200, 0, 0, 0]);
        let before = state.rate().unwrap();
        let sent = Some(t0);
        for i in 0..100 {
            state.record(
                t0 + ms(10 + i),
                sent,
                &ONE_REQUEST,
                Outcome::Throttle(None),
                0,
            );
        }
        assert_eq!(state.episodes(), 1);
        assert!((state.rate().unwrap() - before * BETA).abs() < 1e-9);
        // A request sent after the decrease and refused is a new episode.
        state.record(
            t0 + ms(500),
            Some(t0 + ms(400)),
            &ONE_REQUEST,
            Outcome::Throttle(None),
            0,
        );
        assert_eq!(state.episodes(), 2);
    }

    #[test]
    fn learning_the_limit_closes_the_episode_of_the_first_wave() {
        let t0 = Instant::now();
        let mut state = State::new([0; 4]);
        // The first wave went out unpaced; its first answer announces the limit.
        state.learn_limit(t0 + ms(5), 1200);
        state.record(
            t0 + ms(6),
            None,
            &ONE_REQUEST,
            Outcome::Throttle(Some(ms(1000))),
            20,
        );
        assert_eq!(
            state.episodes(),
            0,
            "the wave was sent before the limit was known"
        );
        assert_eq!(state.rate(), Some(20.0 * MARGIN));
        assert_eq!(state.cool_down_left(t0 + ms(6)), ms(1000));
    }

    #[test]
    fn the_first_throttle_starts_from_the_admitted_rate() {
        let t0 = Instant::now();
        let mut state = State::new([0; 4]);
        let _ = state.reserve(t0, t0, &ONE_REQUEST, 0);
        state.record(t0 + ms(50), None, &ONE_REQUEST, Outcome::Throttle(None), 20);
        // 20 admitted within the first second: paced at 70% of 20/s.
        assert!((state.rate().unwrap() - 14.0).abs() < 1e-9);
    }

    #[test]
    fn successes_climb_back_to_the_ceiling_and_no_further() {
        let t0 = Instant::now();
        let mut state = State::new([1200, 0, 0, 0]);
        state.record(t0, Some(t0), &ONE_REQUEST, Outcome::Throttle(None), 0);
        let low = state.rate().unwrap();
        state.record(
            t0 + ms(500),
            Some(t0 + ms(400)),
            &ONE_REQUEST,
            Outcome::Success,
            1,
        );
        let later = state.rate().unwrap();
        assert!(later > low, "{later} > {low}");
        state.record(
            t0 + Duration::from_secs(30),
            Some(t0),
            &ONE_REQUEST,
            Outcome::Success,
            2,
        );
        assert_eq!(state.rate(), Some(20.0 * MARGIN));
    }

    #[test]
    fn a_throttle_before_any_success_starts_a_probing_pace() {
        let t0 = Instant::now();
        let mut state = State::new([0; 4]);
        let _ = state.reserve(t0, t0, &ONE_REQUEST, 0);
        let refused = Outcome::Throttle(Some(ms(1000)));
        state.record(t0 + ms(5), None, &ONE_REQUEST, refused, 0);
        assert_eq!(state.episodes(), 1);
        // Nothing admitted, nothing to scale: one request per hint to start.
        assert_eq!(state.rate(), Some(1.0));
        // Those released after the cool-down go a second apart, not together.
        let far = t0 + Duration::from_secs(60);
        let turns: Vec<Instant> = (0..3)
            .map(|_| {
                let (ticket, _) = state.reserve(t0 + ms(10), far, &ONE_REQUEST, 0).unwrap();
                state.turn_at(&ticket, &ONE_REQUEST, t0 + ms(10))
            })
            .collect();
        assert_eq!(turns, [t0 + ms(1005), t0 + ms(2005), t0 + ms(3005)]);
        // Successes climb from there.
        let later = t0 + Duration::from_secs(5);
        state.record(
            later,
            Some(t0 + ms(1005)),
            &ONE_REQUEST,
            Outcome::Success,
            1,
        );
        assert!(state.rate().unwrap() > 10.0, "{:?}", state.rate());
    }

    #[test]
    fn successes_of_the_throttled_wave_raise_its_estimate() {
        let t0 = Instant::now();
        let mut state = State::new([0; 4]);
        let _ = state.reserve(t0, t0, &ONE_REQUEST, 0);
        // One success, then the first refusal of the wave: 0.7 × 1/s.
        state.record(t0 + ms(5), None, &ONE_REQUEST, Outcome::Success, 1);
        state.record(t0 + ms(6), None, &ONE_REQUEST, Outcome::Throttle(None), 1);
        assert_eq!(state.episodes(), 1);
        // The rest of the wave's 20 successes arrive: the server took 20/s.
        for n in 2..=20 {
            state.record(t0 + ms(6 + n), None, &ONE_REQUEST, Outcome::Success, n);
        }
        // 70% of 20/s, and CUBIC's first few milliseconds of climbing.
        let rate = state.rate().unwrap();
        assert!((14.0..14.5).contains(&rate), "{rate}");
        assert_eq!(state.episodes(), 1);
    }

    #[test]
    fn a_hint_past_a_minute_closes_the_key_a_minute_then_lets_one_probe_through() {
        let t0 = Instant::now();
        let day = Duration::from_secs(86_400);
        let minute = LONGEST_COOL_DOWN;
        let mut state = State::new([0; 4]);
        state.record(t0, None, &ONE_REQUEST, Outcome::Throttle(Some(day)), 0);
        assert!(state.probing());
        assert_eq!(state.cool_down_left(t0), minute, "a minute, not a day");
        // Within the minute nobody goes, and those who cannot wait are told at once.
        let mut far =
            |now: Instant| state.reserve(now, now + Duration::from_secs(3600), &ONE_REQUEST, 0);
        let (probe, check) = far(t0 + ms(10)).unwrap();
        assert_eq!(check, Check::WaitUntil(t0 + ms(260)));
        let (second, _) = far(t0 + ms(20)).unwrap();
        assert_eq!(
            state.turn_at(&probe, &ONE_REQUEST, t0 + ms(20)),
            t0 + minute
        );
        assert_eq!(
            state.turn_at(&second, &ONE_REQUEST, t0 + ms(20)),
            t0 + minute * 2,
            "one per minute"
        );
        let within = t0 + ms(30);
        assert!(matches!(
            state.reserve(within, within + Duration::from_secs(30), &ONE_REQUEST, 0),
            Err(wait) if wait > Duration::from_secs(29)
        ));
        // The probe goes at the minute and succeeds: open for everyone, at once.
        let sent = t0 + minute;
        assert_eq!(state.check(&probe, &ONE_REQUEST, sent, sent), Check::Go);
        state.record(
            sent + ms(300),
            Some(sent),
            &ONE_REQUEST,
            Outcome::Success,
            1,
        );
        assert!(!state.probing());
        assert_eq!(state.cool_down_left(sent + ms(300)), Duration::ZERO);
        assert_eq!(
            state.check(&second, &ONE_REQUEST, sent + ms(300), sent + ms(300)),
            Check::Go
        );
        assert!(
            state.is_idle(sent + ms(300)),
            "no rate known: the fast path again"
        );
    }

    #[test]
    fn a_refused_probe_renews_the_cool_down_from_its_own_hint() {
        let t0 = Instant::now();
        let minute = LONGEST_COOL_DOWN;
        let mut state = State::new([600, 0, 0, 0]);
        state.cool_down(t0, Duration::from_secs(3600));
        let probe_at = t0 + minute;
        // Refused again with a day: another minute, still probing.
        state.record(
            probe_at,
            Some(probe_at),
            &ONE_REQUEST,
            Outcome::Throttle(Some(Duration::from_secs(86_400))),
            0,
        );
        assert!(state.probing());
        assert_eq!(state.cool_down_left(probe_at), minute);
        // A throttle for a request sent before probing began ends nothing.
        state.record(
            probe_at + ms(1),
            Some(t0 - ms(1)),
            &ONE_REQUEST,
            Outcome::Throttle(Some(ms(500))),
            0,
        );
        assert!(state.probing());
        // The next probe is told 2 s: the long closure is over, a short one follows.
        let next = probe_at + minute;
        state.record(
            next,
            Some(next),
            &ONE_REQUEST,
            Outcome::Throttle(Some(Duration::from_secs(2))),
            0,
        );
        assert!(!state.probing());
        assert_eq!(state.cool_down_left(next), Duration::from_secs(2));
        // A success of a request sent before probing began opens nothing either.
        let mut again = State::new([0; 4]);
        again.cool_down(t0, Duration::from_secs(3600));
        again.record(
            t0 + ms(5),
            Some(t0 - ms(5)),
            &ONE_REQUEST,
            Outcome::Success,
            1,
        );
        assert!(again.probing());
        again.record(t0 + ms(6), None, &ONE_REQUEST, Outcome::Success, 2);
        assert!(again.probing());
    }

    #[test]
    fn clear_forgets_what_was_learned_and_keeps_the_queue_in_order() {
        let t0 = Instant::now();
        let mut state = State::new([120, 0, 0, 0]);
        let far = t0 + Duration::from_secs(3600);
        state.learn_limit(t0, 600);
        state.record(
            t0,
            Some(t0),
            &ONE_REQUEST,
            Outcome::Throttle(Some(Duration::from_secs(86_400))),
            0,
        );
        let (first, _) = state.reserve(t0 + ms(1), far, &ONE_REQUEST, 0).unwrap();
        let (second, _) = state.reserve(t0 + ms(2), far, &ONE_REQUEST, 0).unwrap();
        state.clear(t0 + ms(3), [120, 0, 0, 0]);
        assert!(!state.probing());
        assert_eq!(state.cool_down_left(t0 + ms(3)), Duration::ZERO);
        assert_eq!(
            state.limit_per_minute(),
            Some(120),
            "back to the construction's limit"
        );
        assert_eq!(state.episodes(), 0);
        assert_eq!(
            state.check(&first, &ONE_REQUEST, t0 + ms(3), far),
            Check::Go
        );
        // 120 a minute paced at 1.9 a second: the second waiter follows in order.
        let interval = Duration::from_secs_f64(1.0 / 1.9);
        assert_eq!(
            state.turn_at(&second, &ONE_REQUEST, t0 + ms(3)),
            t0 + ms(3) + interval
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            Success {
                sent_ago_ms: u64,
            },
            Throttle {
                sent_ago_ms: u64,
                hint_ms: Option<u64>,
                cost: Amounts,
            },
            Overloaded {
                hint_ms: u64,
            },
            Limit {
                dimension: usize,
                per_minute: u64,
            },
            /// A response's `remaining`, for a request sent that long ago.
            Remaining {
                dimension: usize,
                sent_ago_ms: u64,
                fraction: f64,
            },
            Reserve {
                max_wait_ms: u64,
                cost: Amounts,
            },
        }

        fn cost() -> impl Strategy<Value = Amounts> {
            prop_oneof![
                Just(ONE_REQUEST),
                (0..5_000u32).prop_map(|t| [1.0, f64::from(t), 0.0, 0.0]),
                (0..3_000u32, 0..2_000u32).prop_map(|(i, o)| [
                    1.0,
                    f64::from(i + o),
                    f64::from(i),
                    f64::from(o)
                ]),
            ]
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                1 => (0..5_000u64).prop_map(|sent_ago_ms| Op::Success { sent_ago_ms }),
                1 => (0..5_000u64, proptest::option::of(0..100_000u64), cost()).prop_map(
                    |(sent_ago_ms, hint_ms, cost)| Op::Throttle {
                        sent_ago_ms,
                        hint_ms,
                        cost,
                    }
                ),
                1 => (0..100_000u64).prop_map(|hint_ms| Op::Overloaded { hint_ms }),
                1 => (0..DIMENSIONS, 0..200_000u64)
                    .prop_map(|(dimension, per_minute)| Op::Limit { dimension, per_minute }),
                1 => (0..DIMENSIONS, 0..5_000u64, 0.0..=1.0f64).prop_map(
                    |(dimension, sent_ago_ms, fraction)| Op::Remaining {
                        dimension,
                        sent_ago_ms,
                        fraction,
                    }
                ),
                2 => (0..120_000u64, cost())
                    .prop_map(|(max_wait_ms, cost)| Op::Reserve { max_wait_ms, cost }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever happens: the rate stays within [floor, the learned
            /// limit]; a turn handed out is never before now nor after its
            /// bound; a bucket never un-spends what it handed out (a refused
            /// call's refund is credit, not un-spending) and holds no less
            /// than nothing and no more than it can.
            #[test]
            fn the_rate_and_the_buckets_stay_within_their_bounds(
                start_limit in proptest::option::of(1..100_000u32),
                ops in proptest::collection::vec((0..3_000u64, op()), 1..200),
            ) {
                let t0 = Instant::now();
                let mut state = State::new([start_limit.unwrap_or(0), 0, 0, 0]);
                let mut now = t0;
                let mut successes = 0;
                for (dt_ms, op) in ops {
                    now += ms(dt_ms);
                    let sent = |ago| now.checked_sub(ms(ago)).filter(|&s| s >= t0);
                    // What was handed out stays spent; a position paid
                    // towards a call not yet handed its turn may be paid again.
                    let spent: Amounts = [0, 1, 2, 3].map(|d| state.buckets[d].pos.min(state.buckets[d].gone));
                    match op {
                        Op::Success { sent_ago_ms } => {
                            successes += 1;
                            state.record(now, sent(sent_ago_ms), &ONE_REQUEST, Outcome::Success, successes);
                        }
                        Op::Throttle { sent_ago_ms, hint_ms, cost } => {
                            let outcome = Outcome::Throttle(hint_ms.map(ms));
                            state.record(now, sent(sent_ago_ms), &cost, outcome, successes);
                        }
                        Op::Overloaded { hint_ms } => {
                            state.record(now, None, &ONE_REQUEST, Outcome::Overloaded(ms(hint_ms)), successes);
                        }
                        Op::Limit { dimension, per_minute } => state.learn(dimension, now, per_minute),
                        Op::Remaining { dimension, sent_ago_ms, fraction } => {
                            if let Some(limit) = state.limits()[dimension] {
                                let at = sent(sent_ago_ms).unwrap_or(now);
                                state.resync(dimension, now, at, (limit as f64 * fraction) as u64, None);
                            }
                        }
                        Op::Reserve { max_wait_ms, cost } => {
                            let latest = now + ms(max_wait_ms);
                            if let Ok((ticket, check)) = state.reserve(now, latest, &cost, successes) {
                                prop_assert!(state.turn_at(&ticket, &cost, now) >= now);
                                if let Check::WaitUntil(at) = check {
                                    prop_assert!(at > now && at <= latest);
                                }
                            }
                        }
                    }
                    if let Some(rate) = state.rate() {
                        match state.limit_per_minute() {
                            Some(limit) => {
                                let limit = limit as f64 / 60.0;
                                let floor = FLOOR.min(limit * MARGIN);
                                prop_assert!(rate >= floor - 1e-9, "{rate} below the floor {floor}");
                                prop_assert!(rate <= limit, "{rate} above the limit {limit}");
                            }
                            None => prop_assert!(rate >= FLOOR, "{rate} below the floor"),
                        }
                    }
                    for (d, spent) in spent.into_iter().enumerate() {
                        let Some(rate) = state.pace(d) else { continue };
                        let bucket = &state.buckets[d];
                        // A request bucket's position may drop to the whole
                        // request a cool-down's end lets go.
                        let slack = State::<Instant>::unit(d) + 1e-6;
                        prop_assert!(bucket.pos >= spent - slack, "dimension {d} un-spent: {} after {spent}", bucket.pos);
                        // Beyond what was handed out (a refund credits
                        // behind it), at most what it can hold.
                        let most = state.capacity(d, rate).max(1.0);
                        let beyond = bucket.pos + bucket.level - bucket.pos.max(bucket.gone);
                        prop_assert!(bucket.level >= 0.0 && beyond <= most + 1e-6, "dimension {d} holds {beyond} of {most}");
                    }
                }
            }
        }
    }
}
