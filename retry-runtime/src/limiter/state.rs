//! The limiter's decisions as a pure state machine over explicit instants: the
//! pacing schedule, the shared cool-down, and the learned rate. No clock, no
//! locking, no waiting: `RateLimiter` wraps it in a mutex, and a second store
//! (Redis) can mirror it function for function.

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
/// The longest pacing interval: a rate this low would only overflow.
const LONGEST_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// Successes are counted over at least this long to estimate the admitted rate.
const MEASURE_WINDOW: Duration = Duration::from_secs(1);

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

/// What a process knows, written to a store that does not know it: on
/// connect, on reconnect, and where the store's key was gone.
#[cfg(feature = "redis")]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Seed {
    /// The limit per minute this process knows.
    pub(crate) limit: Option<u64>,
    /// Whether that limit came from the server's headers (it then replaces
    /// the store's) rather than from construction (it fills in only where the
    /// store has none).
    pub(crate) learned: bool,
    /// How long this process's cool-down has left.
    pub(crate) cool: Option<Duration>,
    /// Whether a long hint holds the key here.
    pub(crate) probing: bool,
    /// How long this process's own queue still runs: the store's schedule
    /// starts after it.
    pub(crate) busy: Option<Duration>,
}

/// A place in the pacing schedule: tickets are numbered in arrival order.
pub(crate) type Ticket = u64;

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

#[derive(Clone, Debug)]
pub(crate) struct State<T> {
    /// Requests per second pacing allows now; `None` while nothing is known.
    rate: Option<f64>,
    /// The highest rate learning may reach: a margin below the announced limit.
    ceiling: Option<f64>,
    /// The announced limit, per minute, as last seen.
    limit_per_minute: Option<u64>,
    /// Ticket `origin_ticket` goes at `origin`, each later one `1 / rate` after.
    origin: Option<T>,
    origin_ticket: Ticket,
    next_ticket: Ticket,
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
}

impl<T: Time> State<T> {
    pub(crate) const fn new(per_minute: Option<u32>) -> State<T> {
        let (rate, ceiling, limit) = match per_minute {
            Some(n) if n > 0 => {
                let ceiling = paced_below(n as u64);
                (Some(ceiling), Some(ceiling), Some(n as u64))
            }
            _ => (None, None, None),
        };
        State {
            rate,
            ceiling,
            limit_per_minute: limit,
            origin: None,
            origin_ticket: 0,
            next_ticket: 0,
            cool_down_until: None,
            probe_since: None,
            last_decrease: None,
            last_max: 0.0,
            last_throttle: None,
            episodes: 0,
            samples: [None, None],
        }
    }

    /// Whether turns can be handed out without looking: no rate to pace at and
    /// no cool-down that could still be running.
    pub(crate) fn is_idle(&self, now: T) -> bool {
        self.rate.is_none()
            && self.probe_since.is_none()
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

    /// The announced limit per minute, as last seen or seeded.
    pub(crate) fn limit_per_minute(&self) -> Option<u64> {
        self.limit_per_minute
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

    fn interval(&self) -> Duration {
        let paced = match self.rate {
            Some(rate) => Duration::try_from_secs_f64(1.0 / rate).unwrap_or(LONGEST_INTERVAL),
            None => Duration::ZERO,
        };
        match self.probe_since {
            // One probe per span while a long hint holds the key.
            Some(_) => paced.max(LONGEST_COOL_DOWN),
            None => paced,
        }
    }

    /// When `ticket` may go by the schedule alone.
    fn scheduled(&self, ticket: Ticket, now: T) -> T {
        let origin = self.origin.unwrap_or(now);
        let ahead = ticket.saturating_sub(self.origin_ticket);
        let ahead = u32::try_from(ahead).unwrap_or(u32::MAX);
        origin
            .checked_add(self.interval().saturating_mul(ahead))
            .unwrap_or_else(|| origin.saturating_add(LONGEST_INTERVAL))
    }

    /// When `ticket` may go: its place in the schedule, and not before the cool-down.
    pub(crate) fn turn_at(&self, ticket: Ticket, now: T) -> T {
        let scheduled = self.scheduled(ticket, now);
        self.cool_down_until
            .map_or(scheduled, |until| scheduled.max(until))
    }

    /// When a caller arriving at `now` would get its turn.
    pub(crate) fn next_turn(&self, now: T) -> T {
        if self.is_idle(now) {
            return now;
        }
        self.turn_at(self.next_ticket, now).max(now)
    }

    /// A ticket for a caller arriving at `now`, and when to look again; or, if
    /// its turn surely comes after `latest`, how long it would have had to wait,
    /// and no ticket is taken.
    pub(crate) fn reserve(
        &mut self,
        now: T,
        latest: T,
        successes: u64,
    ) -> Result<(Ticket, Check<T>), Duration> {
        self.sample(now, successes);
        let ticket = self.next_ticket;
        if self.origin.is_none() || self.scheduled(ticket, now) < now {
            // An idle spell saves up no burst: the schedule restarts now.
            self.origin = Some(now);
            self.origin_ticket = ticket;
        }
        match self.check(ticket, now, latest) {
            Check::TooLate(wait) => Err(wait),
            check => {
                self.next_ticket += 1;
                Ok((ticket, check))
            }
        }
    }

    /// Whether `ticket`'s turn has come at `now`; else when to look again, or
    /// that it cannot come by `latest`. A cool-down is the server's word and
    /// the rate at its ceiling cannot rise, so past `latest` by either, the
    /// caller gives up at once; a queue paced at a rate still climbing can
    /// shorten, so its callers wait — up to `latest` — and look again.
    pub(crate) fn check(&self, ticket: Ticket, now: T, latest: T) -> Check<T> {
        let at = self.turn_at(ticket, now);
        if at <= now {
            return Check::Go;
        }
        let sure = self.cool_down_until.is_some_and(|until| until > latest)
            || self.probe_since.is_some()
            || self.rate.is_some_and(|rate| Some(rate) == self.ceiling);
        if at > latest && (sure || now >= latest) {
            return Check::TooLate(at.saturating_duration_since(now));
        }
        Check::WaitUntil(at.min(latest).min(now.saturating_add(RECHECK)))
    }

    /// A caller gives its ticket back unused: when it was the last one handed
    /// out, the slot goes to the next arrival instead of staying empty.
    pub(crate) fn release(&mut self, ticket: Ticket) {
        if ticket + 1 == self.next_ticket && ticket >= self.origin_ticket {
            self.next_ticket = ticket;
        }
    }

    /// The first ticket whose turn has not come by `now`.
    fn first_pending(&self, now: T) -> Ticket {
        let interval = self.interval().as_nanos();
        let origin = self.origin.unwrap_or(now);
        let passed = match now.checked_duration_since(origin) {
            None => 0,
            Some(_) if interval == 0 => return self.next_ticket,
            Some(since) => since.as_nanos().div_ceil(interval),
        };
        let passed = u64::try_from(passed).unwrap_or(u64::MAX);
        self.origin_ticket
            .saturating_add(passed)
            .min(self.next_ticket)
    }

    /// Re-anchors the schedule at the first pending ticket, no earlier than
    /// `not_before`, so a cool-down or a new rate applies to those still
    /// waiting in their arrival order.
    fn rebase(&mut self, now: T, not_before: Option<T>) {
        let pending = self.first_pending(now);
        let at = self.scheduled(pending, now).max(now);
        self.origin = Some(not_before.map_or(at, |nb| at.max(nb)));
        self.origin_ticket = pending;
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
        self.rebase(now, None);
        if self.rate.is_none_or(|old| rate < old) {
            self.last_decrease = Some(now);
        }
        self.rate = Some(rate);
    }

    /// No turn for `wait`; those already waiting keep their order behind it.
    /// A wait longer than [`LONGEST_COOL_DOWN`] closes the key that long and
    /// then lets one probe through per span, until one succeeds.
    pub(crate) fn cool_down(&mut self, now: T, wait: Duration) {
        if wait > LONGEST_COOL_DOWN && self.probe_since.is_none() {
            // Re-anchored at the old interval before the probe's takes over.
            self.rebase(now, None);
            self.probe_since = Some(now);
        }
        let until = now.saturating_add(wait.min(LONGEST_COOL_DOWN));
        if self.cool_down_until.is_some_and(|current| current >= until) {
            return;
        }
        self.rebase(now, Some(until));
        self.cool_down_until = Some(until);
    }

    /// Takes in what a process knows (see [`Seed`]): what the store's script
    /// does, mirrored for the tests that compare the two.
    #[cfg(all(test, feature = "redis"))]
    pub(crate) fn seed(&mut self, now: T, seed: &Seed) {
        if let Some(limit) = seed.limit
            && (self.limit_per_minute.is_none()
                || (seed.learned && self.limit_per_minute != Some(limit)))
        {
            self.learn_limit(now, limit);
        }
        if seed.probing && self.probe_since.is_none() {
            self.rebase(now, None);
            self.probe_since = Some(now);
        }
        if let Some(cool) = seed.cool.filter(|c| !c.is_zero()) {
            self.cool_down(now, cool);
        }
        if let Some(busy) = seed.busy {
            self.push_back(now, busy);
        }
    }

    /// The schedule starts no sooner than `busy` from now: another queue (the
    /// fleet's, as last read; this process's own) runs until then.
    #[cfg(feature = "redis")]
    pub(crate) fn push_back(&mut self, now: T, busy: Duration) {
        if busy.is_zero() || self.rate.is_none() {
            return;
        }
        let not_before = now.saturating_add(busy);
        if self.scheduled(self.next_ticket, now) < not_before {
            self.rebase(now, Some(not_before));
        }
    }

    /// Probing ends: those waiting go from `now` at the pacing rate again.
    fn end_probe(&mut self, now: T) {
        let pending = self.first_pending(now);
        self.probe_since = None;
        self.origin = Some(now);
        self.origin_ticket = pending;
    }

    /// Whether `sent` answers a probe: a request sent since probing began.
    fn answers_probe(&self, sent: Option<T>) -> bool {
        matches!((self.probe_since, sent), (Some(since), Some(sent)) if sent >= since)
    }

    /// Forgets what was learned — cool-down, probing, rate, episodes — and
    /// starts again from `per_minute` (the limit given at construction).
    /// Tickets already handed out keep their order, paced afresh from `now`.
    pub(crate) fn clear(&mut self, now: T, per_minute: Option<u32>) {
        let pending = self.first_pending(now);
        let next_ticket = self.next_ticket;
        *self = State::new(per_minute);
        self.origin = Some(now);
        self.origin_ticket = pending;
        self.next_ticket = next_ticket;
    }

    /// The limit a server announced, per minute: pacing stays a margin below it.
    pub(crate) fn learn_limit(&mut self, now: T, per_minute: u64) {
        if per_minute == 0 || self.limit_per_minute == Some(per_minute) {
            return;
        }
        self.limit_per_minute = Some(per_minute);
        let ceiling = paced_below(per_minute);
        self.ceiling = Some(ceiling);
        let rate = match self.rate {
            // Below the new ceiling after a throttle: CUBIC climbs back to it.
            Some(rate) if self.last_throttle.is_some() => rate.min(ceiling),
            _ => ceiling,
        };
        self.set_rate(now, rate);
    }

    /// What an attempt that took its turn at `sent` (`None`: no schedule was
    /// running then) came back with, at `now`; `successes` is the count of
    /// successes so far, kept outside the lock.
    pub(crate) fn record(&mut self, now: T, sent: Option<T>, outcome: Outcome, successes: u64) {
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
                if let Some(hint) = hint {
                    if hint <= LONGEST_COOL_DOWN && self.answers_probe(sent) {
                        // The server's newer word is a short wait: no more probing.
                        self.end_probe(now);
                    }
                    self.cool_down(now, hint);
                }
                let new_episode = match (self.last_decrease, sent) {
                    (None, _) => true,
                    (Some(decrease), Some(sent)) => sent >= decrease,
                    // Sent before pacing began, so before the last decrease.
                    (Some(_), None) => false,
                };
                if new_episode {
                    self.decrease(now, successes);
                }
            }
        }
    }

    /// One throttle episode: the rate drops to β of what it was (of the rate
    /// the server was seen admitting, when no rate was known yet).
    fn decrease(&mut self, now: T, successes: u64) {
        let current = self
            .rate
            .unwrap_or_else(|| self.admitted_rate(now, successes));
        if current <= 0.0 {
            // Nothing admitted yet, so nothing to scale: the cool-down alone
            // holds callers back, and the episode starts with the first success.
            return;
        }
        self.episodes += 1;
        self.last_max = current;
        self.last_throttle = Some(now);
        self.set_rate(now, current * BETA);
        // Counted even when already at the floor: later throttles answering
        // requests sent before now are this episode's.
        self.last_decrease = Some(now);
    }

    /// A success answering a request sent before the last decrease belongs to
    /// the wave that was throttled: what the server admitted of that wave is a
    /// floor under the rate it can take, so the episode's maximum rises to it.
    fn admitted_in_episode(&mut self, now: T, sent: Option<T>, successes: u64) {
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
    /// The state as the Redis script keeps it: a hash of numbers, absent for `None`.
    pub(crate) fn from_fields(field: impl Fn(&str) -> Option<f64>) -> Self {
        use super::time::Micros;
        let time = |name: &str| field(name).map(|v| Micros(v as u64));
        let pair = |t: &str, c: &str| Some((time(t)?, field(c)? as u64));
        State {
            rate: field("rate"),
            ceiling: field("ceiling"),
            limit_per_minute: field("limit").map(|v| v as u64),
            origin: time("origin"),
            origin_ticket: field("oticket").map_or(0, |v| v as u64),
            next_ticket: field("nticket").map_or(0, |v| v as u64),
            cool_down_until: time("cool"),
            probe_since: time("probe"),
            last_decrease: time("ldec"),
            last_max: field("lmax").unwrap_or(0.0),
            last_throttle: time("lthr"),
            episodes: field("episodes").map_or(0, |v| v as u64),
            samples: [pair("s0t", "s0c"), pair("s1t", "s1c")],
        }
    }
}

#[cfg(all(test, feature = "redis"))]
impl State<super::time::Micros> {
    /// Every field, by the script's names: what the Lua-vs-Rust test compares.
    pub(crate) fn fields(&self) -> Vec<(&'static str, Option<f64>)> {
        let time = |t: Option<super::time::Micros>| t.map(|t| t.0 as f64);
        vec![
            ("rate", self.rate),
            ("ceiling", self.ceiling),
            ("limit", self.limit_per_minute.map(|v| v as f64)),
            ("origin", time(self.origin)),
            ("oticket", Some(self.origin_ticket as f64)),
            ("nticket", Some(self.next_ticket as f64)),
            ("cool", time(self.cool_down_until)),
            ("probe", time(self.probe_since)),
            ("ldec", time(self.last_decrease)),
            ("lmax", Some(self.last_max)),
            ("lthr", time(self.last_throttle)),
            ("episodes", Some(self.episodes as f64)),
        ]
    }
}

/// The pacing rate for a limit of `per_minute`, in requests per second.
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
    fn unknown_rate_hands_out_turns_at_once() {
        let t0 = Instant::now();
        let mut state = State::new(None);
        for _ in 0..5 {
            assert_eq!(
                state.reserve(t0, t0, 0).map(|(_, check)| check),
                Ok(Check::Go)
            );
        }
        assert!(state.is_idle(t0));
    }

    #[test]
    fn a_known_limit_spaces_turns_in_arrival_order() {
        let t0 = Instant::now();
        // 600 a minute is 10 a second; paced at 95% of it.
        let mut state = State::new(Some(600));
        let far = t0 + Duration::from_secs(60);
        let tickets: Vec<Ticket> = (0..4)
            .map(|_| state.reserve(t0, far, 0).unwrap().0)
            .collect();
        let turns: Vec<Instant> = tickets.iter().map(|&t| state.turn_at(t, t0)).collect();
        let interval = Duration::from_secs_f64(1.0 / 9.5);
        for (i, at) in turns.iter().enumerate() {
            assert_eq!(*at, t0 + interval * i as u32);
        }
    }

    #[test]
    fn a_cool_down_moves_those_waiting_behind_it_in_order() {
        let t0 = Instant::now();
        let mut state = State::new(Some(600));
        let far = t0 + Duration::from_secs(60);
        let tickets: Vec<Ticket> = (0..3)
            .map(|_| state.reserve(t0, far, 0).unwrap().0)
            .collect();
        state.cool_down(t0 + ms(1), Duration::from_secs(2));
        let at: Vec<Instant> = tickets
            .iter()
            .map(|&t| state.turn_at(t, t0 + ms(1)))
            .collect();
        let interval = Duration::from_secs_f64(1.0 / 9.5);
        // Ticket 0 had gone at t0; the two still waiting restart after the cool-down.
        assert_eq!(at[1], t0 + ms(2001));
        assert_eq!(at[2], t0 + ms(2001) + interval);
        // A new arrival queues behind them.
        let (next, _) = state.reserve(t0 + ms(2), far, 0).unwrap();
        assert_eq!(
            state.turn_at(next, t0 + ms(2)),
            t0 + ms(2001) + interval * 2
        );
    }

    #[test]
    fn a_turn_past_the_bound_takes_no_ticket() {
        let t0 = Instant::now();
        let mut state = State::new(None);
        state.cool_down(t0, Duration::from_secs(5));
        assert_eq!(
            state.reserve(t0, t0 + ms(100), 0),
            Err(Duration::from_secs(5))
        );
        assert_eq!(state.next_ticket, 0);
    }

    #[test]
    fn a_queue_at_a_climbing_rate_waits_but_one_at_the_ceiling_gives_up() {
        let t0 = Instant::now();
        let latest = t0 + Duration::from_secs(1);
        // Known limit, at the ceiling: the fifteenth caller's turn is surely late.
        let mut known = State::new(Some(600));
        let late = (0..15)
            .map(|_| known.reserve(t0, latest, 0))
            .last()
            .unwrap();
        assert!(matches!(late, Err(wait) if wait > Duration::from_secs(1)));
        // A rate learned from a throttle may climb: the caller waits and looks again.
        let mut learned = State::new(None);
        let _ = learned.reserve(t0, t0, 0);
        learned.record(t0, None, Outcome::Success, 1);
        learned.record(t0, Some(t0), Outcome::Throttle(None), 1);
        // One success in the first second: 70% of 1/s.
        assert!((learned.rate().unwrap() - 0.7).abs() < 1e-9);
        let (_, _) = learned.reserve(t0, latest, 1).unwrap();
        let (ticket, check) = learned.reserve(t0, latest, 1).unwrap();
        assert_eq!(check, Check::WaitUntil(t0 + RECHECK));
        // At `latest` with the turn still ahead, it gives up.
        assert!(matches!(
            learned.check(ticket, latest, latest),
            Check::TooLate(_)
        ));
    }

    #[test]
    fn one_episode_lowers_the_rate_once() {
        let t0 = Instant::now();
        let mut state = State::new(Some(1200));
        let before = state.rate().unwrap();
        let sent = Some(t0);
        for i in 0..100 {
            state.record(t0 + ms(10 + i), sent, Outcome::Throttle(None), 0);
        }
        assert_eq!(state.episodes(), 1);
        assert!((state.rate().unwrap() - before * BETA).abs() < 1e-9);
        // A request sent after the decrease and refused is a new episode.
        state.record(t0 + ms(500), Some(t0 + ms(400)), Outcome::Throttle(None), 0);
        assert_eq!(state.episodes(), 2);
    }

    #[test]
    fn learning_the_limit_closes_the_episode_of_the_first_wave() {
        let t0 = Instant::now();
        let mut state = State::new(None);
        // The first wave went out unpaced; its first answer announces the limit.
        state.learn_limit(t0 + ms(5), 1200);
        state.record(t0 + ms(6), None, Outcome::Throttle(Some(ms(1000))), 20);
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
        let mut state = State::new(None);
        let _ = state.reserve(t0, t0, 0);
        state.record(t0 + ms(50), None, Outcome::Throttle(None), 20);
        // 20 admitted within the first second: paced at 70% of 20/s.
        assert!((state.rate().unwrap() - 14.0).abs() < 1e-9);
    }

    #[test]
    fn successes_climb_back_to_the_ceiling_and_no_further() {
        let t0 = Instant::now();
        let mut state = State::new(Some(1200));
        state.record(t0, Some(t0), Outcome::Throttle(None), 0);
        let low = state.rate().unwrap();
        state.record(t0 + ms(500), Some(t0 + ms(400)), Outcome::Success, 1);
        let later = state.rate().unwrap();
        assert!(later > low, "{later} > {low}");
        state.record(t0 + Duration::from_secs(30), Some(t0), Outcome::Success, 2);
        assert_eq!(state.rate(), Some(20.0 * MARGIN));
    }

    #[test]
    fn a_throttle_before_any_success_only_cools_down() {
        let t0 = Instant::now();
        let mut state = State::new(None);
        let _ = state.reserve(t0, t0, 0);
        state.record(t0 + ms(5), None, Outcome::Throttle(Some(ms(1000))), 0);
        assert_eq!(state.episodes(), 0);
        assert_eq!(state.rate(), None, "nothing admitted, nothing to scale");
        assert!(!state.is_idle(t0 + ms(1004)));
        assert!(
            state.is_idle(t0 + ms(1005)),
            "idle again after the cool-down"
        );
    }

    #[test]
    fn successes_of_the_throttled_wave_raise_its_estimate() {
        let t0 = Instant::now();
        let mut state = State::new(None);
        let _ = state.reserve(t0, t0, 0);
        // One success, then the first refusal of the wave: 0.7 × 1/s.
        state.record(t0 + ms(5), None, Outcome::Success, 1);
        state.record(t0 + ms(6), None, Outcome::Throttle(None), 1);
        assert_eq!(state.episodes(), 1);
        // The rest of the wave's 20 successes arrive: the server took 20/s.
        for n in 2..=20 {
            state.record(t0 + ms(6 + n), None, Outcome::Success, n);
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
        let mut state = State::new(None);
        state.record(t0, None, Outcome::Throttle(Some(day)), 0);
        assert!(state.probing());
        assert_eq!(state.cool_down_left(t0), minute, "a minute, not a day");
        // Within the minute nobody goes, and those who cannot wait are told at once.
        let mut far = |now: Instant| state.reserve(now, now + Duration::from_secs(3600), 0);
        let (probe, check) = far(t0 + ms(10)).unwrap();
        assert_eq!(check, Check::WaitUntil(t0 + ms(260)));
        let (second, _) = far(t0 + ms(20)).unwrap();
        assert_eq!(state.turn_at(probe, t0 + ms(20)), t0 + minute);
        assert_eq!(
            state.turn_at(second, t0 + ms(20)),
            t0 + minute * 2,
            "one per minute"
        );
        let within = t0 + ms(30);
        assert!(matches!(
            state.reserve(within, within + Duration::from_secs(30), 0),
            Err(wait) if wait > Duration::from_secs(29)
        ));
        // The probe goes at the minute and succeeds: open for everyone, at once.
        let sent = t0 + minute;
        assert_eq!(state.check(probe, sent, sent), Check::Go);
        state.record(sent + ms(300), Some(sent), Outcome::Success, 1);
        assert!(!state.probing());
        assert_eq!(state.cool_down_left(sent + ms(300)), Duration::ZERO);
        assert_eq!(
            state.check(second, sent + ms(300), sent + ms(300)),
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
        let mut state = State::new(Some(600));
        state.cool_down(t0, Duration::from_secs(3600));
        let probe_at = t0 + minute;
        // Refused again with a day: another minute, still probing.
        state.record(
            probe_at,
            Some(probe_at),
            Outcome::Throttle(Some(Duration::from_secs(86_400))),
            0,
        );
        assert!(state.probing());
        assert_eq!(state.cool_down_left(probe_at), minute);
        // A throttle for a request sent before probing began ends nothing.
        state.record(
            probe_at + ms(1),
            Some(t0 - ms(1)),
            Outcome::Throttle(Some(ms(500))),
            0,
        );
        assert!(state.probing());
        // The next probe is told 2 s: the long closure is over, a short one follows.
        let next = probe_at + minute;
        state.record(
            next,
            Some(next),
            Outcome::Throttle(Some(Duration::from_secs(2))),
            0,
        );
        assert!(!state.probing());
        assert_eq!(state.cool_down_left(next), Duration::from_secs(2));
        // A success of a request sent before probing began opens nothing either.
        let mut again = State::new(None);
        again.cool_down(t0, Duration::from_secs(3600));
        again.record(t0 + ms(5), Some(t0 - ms(5)), Outcome::Success, 1);
        assert!(again.probing());
        again.record(t0 + ms(6), None, Outcome::Success, 2);
        assert!(again.probing());
    }

    #[test]
    fn clear_forgets_what_was_learned_and_keeps_the_queue_in_order() {
        let t0 = Instant::now();
        let mut state = State::new(Some(120));
        let far = t0 + Duration::from_secs(3600);
        state.learn_limit(t0, 600);
        state.record(
            t0,
            Some(t0),
            Outcome::Throttle(Some(Duration::from_secs(86_400))),
            0,
        );
        let (first, _) = state.reserve(t0 + ms(1), far, 0).unwrap();
        let (second, _) = state.reserve(t0 + ms(2), far, 0).unwrap();
        state.clear(t0 + ms(3), Some(120));
        assert!(!state.probing());
        assert_eq!(state.cool_down_left(t0 + ms(3)), Duration::ZERO);
        assert_eq!(
            state.limit_per_minute(),
            Some(120),
            "back to the construction's limit"
        );
        assert_eq!(state.episodes(), 0);
        assert_eq!(state.check(first, t0 + ms(3), far), Check::Go);
        // 120 a minute paced at 1.9 a second: the second waiter follows in order.
        let interval = Duration::from_secs_f64(1.0 / 1.9);
        assert_eq!(state.turn_at(second, t0 + ms(3)), t0 + ms(3) + interval);
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
            },
            Overloaded {
                hint_ms: u64,
            },
            Limit {
                per_minute: u64,
            },
            Reserve {
                max_wait_ms: u64,
            },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0..5_000u64).prop_map(|sent_ago_ms| Op::Success { sent_ago_ms }),
                (0..5_000u64, proptest::option::of(0..100_000u64)).prop_map(
                    |(sent_ago_ms, hint_ms)| Op::Throttle {
                        sent_ago_ms,
                        hint_ms
                    }
                ),
                (0..100_000u64).prop_map(|hint_ms| Op::Overloaded { hint_ms }),
                (0..100_000u64).prop_map(|per_minute| Op::Limit { per_minute }),
                (0..120_000u64).prop_map(|max_wait_ms| Op::Reserve { max_wait_ms }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever happens, the rate stays within [floor, the learned limit],
            /// and a turn handed out is never before now nor after its bound.
            #[test]
            fn the_rate_never_leaves_floor_and_limit(
                start_limit in proptest::option::of(1..100_000u32),
                ops in proptest::collection::vec((0..3_000u64, op()), 1..200),
            ) {
                let t0 = Instant::now();
                let mut state = State::new(start_limit);
                let mut now = t0;
                let mut successes = 0;
                for (dt_ms, op) in ops {
                    now += ms(dt_ms);
                    let sent = |ago| now.checked_sub(ms(ago)).filter(|&s| s >= t0);
                    match op {
                        Op::Success { sent_ago_ms } => {
                            successes += 1;
                            state.record(now, sent(sent_ago_ms), Outcome::Success, successes);
                        }
                        Op::Throttle { sent_ago_ms, hint_ms } => {
                            let outcome = Outcome::Throttle(hint_ms.map(ms));
                            state.record(now, sent(sent_ago_ms), outcome, successes);
                        }
                        Op::Overloaded { hint_ms } => {
                            state.record(now, None, Outcome::Overloaded(ms(hint_ms)), successes);
                        }
                        Op::Limit { per_minute } => state.learn_limit(now, per_minute),
                        Op::Reserve { max_wait_ms } => {
                            let latest = now + ms(max_wait_ms);
                            if let Ok((ticket, check)) = state.reserve(now, latest, successes) {
                                prop_assert!(state.turn_at(ticket, now) >= now);
                                if let Check::WaitUntil(at) = check {
                                    prop_assert!(at > now && at <= latest);
                                }
                            }
                        }
                    }
                    if let Some(rate) = state.rate() {
                        match state.limit_per_minute {
                            Some(limit) => {
                                let limit = limit as f64 / 60.0;
                                let floor = FLOOR.min(limit * MARGIN);
                                prop_assert!(rate >= floor - 1e-9, "{rate} below the floor {floor}");
                                prop_assert!(rate <= limit, "{rate} above the limit {limit}");
                            }
                            None => prop_assert!(rate >= FLOOR, "{rate} below the floor"),
                        }
                    }
                }
            }
        }
    }
}
