//! The turns a process handed out lately, by when: what the server can have
//! counted when it answered a request sent at a given time. A response that
//! comes seconds later re-anchors the schedule where the turns handed out by
//! its send ended — not where the schedule, revised since, says it had paid.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::state::{Amounts, DIMENSIONS, Ticket};

/// How many turns back the log reaches: seconds of answers at tens of calls
/// a second. A response older than that re-anchors from the schedule alone.
const LOG: usize = 256;

/// How long before a request's send its own turn was handed out, at most.
const RECENT: Duration = Duration::from_secs(1);

/// When each turn was handed out, and the furthest end handed out by then.
#[derive(Clone, Debug, Default)]
pub(crate) struct Handed {
    turns: VecDeque<(Instant, Amounts)>,
}

impl Handed {
    pub(crate) const fn new() -> Handed {
        Handed {
            turns: VecDeque::new(),
        }
    }

    /// The call at `ticket` costing `cost` was handed its turn at `at`.
    pub(crate) fn push(&mut self, at: Instant, ticket: &Ticket, cost: &Amounts) {
        let mut furthest: Amounts = [0, 1, 2, 3].map(|d| ticket[d] + cost[d]);
        if let Some((_, before)) = self.turns.back() {
            for d in 0..DIMENSIONS {
                furthest[d] = furthest[d].max(before[d]);
            }
        }
        if self.turns.len() == LOG {
            self.turns.pop_front();
        }
        self.turns.push_back((at, furthest));
    }

    /// Where the turns handed out by `sent` end, if the log reaches back
    /// that far and has a turn from shortly before it: a request whose turn
    /// the log never saw (taken while Redis was away, or with nothing
    /// pacing) must not pin the schedule to an old turn.
    pub(crate) fn by(&self, sent: Instant) -> Option<Amounts> {
        let handed = self.turns.partition_point(|(at, _)| *at <= sent);
        let (at, furthest) = self.turns.get(handed.checked_sub(1)?)?;
        (*at + RECENT >= sent).then_some(*furthest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_response_finds_the_furthest_turn_handed_out_by_its_send() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut handed = Handed::new();
        assert_eq!(handed.by(t0), None);
        handed.push(t0, &[0.0, 0.0, 0.0, 0.0], &[1.0, 500.0, 0.0, 0.0]);
        // Out of order: a later place went first, then an earlier one.
        handed.push(
            t0 + ms(10),
            &[2.0, 900.0, 0.0, 0.0],
            &[1.0, 100.0, 0.0, 0.0],
        );
        handed.push(
            t0 + ms(20),
            &[1.0, 500.0, 0.0, 0.0],
            &[1.0, 400.0, 0.0, 0.0],
        );
        assert_eq!(handed.by(t0 - ms(1)), None, "before the log");
        assert_eq!(handed.by(t0 + ms(5)), Some([1.0, 500.0, 0.0, 0.0]));
        assert_eq!(handed.by(t0 + ms(15)), Some([3.0, 1000.0, 0.0, 0.0]));
        assert_eq!(handed.by(t0 + ms(25)), Some([3.0, 1000.0, 0.0, 0.0]));
        // A request whose own turn is not in the log: no word from it.
        assert_eq!(handed.by(t0 + ms(20) + RECENT * 2), None);
    }

    #[test]
    fn the_log_keeps_only_its_last_turns() {
        let t0 = Instant::now();
        let mut handed = Handed::new();
        for i in 0..(LOG + 10) {
            let at = t0 + Duration::from_millis(i as u64);
            handed.push(at, &[i as f64, 0.0, 0.0, 0.0], &[1.0, 0.0, 0.0, 0.0]);
        }
        assert_eq!(handed.turns.len(), LOG);
        assert_eq!(handed.by(t0 + Duration::from_millis(5)), None, "forgotten");
        let last = t0 + Duration::from_millis((LOG + 9) as u64);
        assert_eq!(handed.by(last), Some([(LOG + 10) as f64, 0.0, 0.0, 0.0]));
    }
}
