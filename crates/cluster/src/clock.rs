//! The time a leader stamps on a proposal, bounded so that one leader with a wrong wall clock
//! cannot move the state's time.
//!
//! The state's clock (`State::clock`) only moves forward, and everything time-driven follows
//! it: idempotency keys expire by it, events are pruned by it, maintenances start by it. A
//! leader whose clock runs two days fast would, unchecked, jump it two days ahead for good.
//!
//! Rule: the *base* is the last time this node stamped (or the state's clock, if later) plus
//! the real time since, measured by the monotonic clock. A wall clock up to `max_jump` ahead
//! of the base is stamped as it is. Beyond that (the cluster was idle, the node restarted, or
//! its clock is wrong) the leader asks the voters for their wall clocks: a wall clock that a
//! majority of the voters (itself included) agree with is used; otherwise the stamp is the
//! latest time such a majority has reached, never less than the base — logged and counted
//! (`statusmesh_clock_clamped_total`). A clamped stamp becomes the next base, so a fast clock
//! gains nothing write after write. A single-node cluster has no one to ask and uses its own
//! clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use statusmesh_model::Timestamp;

/// How far ahead of the reference a stamp may go without the quorum's confirmation.
pub const DEFAULT_MAX_JUMP: Duration = Duration::from_secs(5 * 60);
/// Clocks this close to the quorum's count as agreeing (answers are a round trip old, and
/// NTP keeps healthy clocks well within it).
pub const AGREEMENT_MS: i64 = 2_000;

/// The reference a leader bounds its stamps by, and what it clamped.
#[derive(Debug)]
pub struct StampClock {
    max_jump_ms: i64,
    reference: Mutex<Option<(Timestamp, Instant)>>,
    clamped: AtomicU64,
    /// The largest clamp so far, ms (how wrong the clock was).
    largest_clamp_ms: AtomicU64,
}

/// What [`StampClock::check`] decided without asking anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The wall clock is within the bound: stamp it.
    Within(Timestamp),
    /// The wall clock is more than the jump beyond `base`: ask the quorum before stamping.
    Beyond { wall: Timestamp, base: Timestamp },
}

impl StampClock {
    pub fn new(max_jump: Duration) -> Self {
        StampClock {
            max_jump_ms: i64::try_from(max_jump.as_millis()).unwrap_or(i64::MAX),
            reference: Mutex::new(None),
            clamped: AtomicU64::new(0),
            largest_clamp_ms: AtomicU64::new(0),
        }
    }

    fn reference(&self) -> std::sync::MutexGuard<'_, Option<(Timestamp, Instant)>> {
        self.reference
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes a time the state reached (an applied entry's, or this node's own stamp), so the
    /// bound starts from it.
    pub fn observe(&self, at: Timestamp) {
        let mut r = self.reference();
        if r.is_none_or(|(t, since)| at.0 > t.0 + elapsed_ms(since)) {
            *r = Some((at, Instant::now()));
        }
    }

    /// Whether `wall` may be stamped as it is, given the state's clock.
    pub fn check(&self, wall: Timestamp, state_clock: Timestamp) -> Check {
        let (t, since) = {
            let r = self.reference();
            match *r {
                Some((t, since)) if t >= state_clock => (t, since),
                // Nothing observed yet beyond the state's clock: measure from now.
                _ => (state_clock, Instant::now()),
            }
        };
        let base = Timestamp(t.0.saturating_add(elapsed_ms(since)));
        if wall.0 <= base.0.saturating_add(self.max_jump_ms) {
            Check::Within(wall)
        } else {
            Check::Beyond { wall, base }
        }
    }

    /// The stamp for a wall clock beyond its bound, given the voters' clocks as this node
    /// received them (its own excluded) and how many voters there are: at most the time a
    /// majority have reached, and never below the base.
    pub fn settle(
        &self,
        wall: Timestamp,
        base: Timestamp,
        others: &[Timestamp],
        voters: usize,
    ) -> Timestamp {
        let mut times: Vec<Timestamp> = others.to_vec();
        times.push(wall);
        times.sort_unstable_by(|a, b| b.cmp(a));
        let majority = voters / 2 + 1;
        // The latest time at least `majority` voters have reached; missing answers count as
        // not having reached anything beyond the base.
        let quorum_time = times.get(majority - 1).copied().unwrap_or(base);
        let stamp = if quorum_time.0.saturating_add(AGREEMENT_MS) >= wall.0 {
            wall
        } else {
            wall.min(quorum_time.max(base))
        };
        if stamp < wall {
            let ahead = u64::try_from(wall.0 - stamp.0).unwrap_or(0);
            self.clamped.fetch_add(1, Ordering::Relaxed);
            self.largest_clamp_ms.fetch_max(ahead, Ordering::Relaxed);
            tracing::warn!(
                wall = %wall,
                stamped = %stamp,
                ahead_ms = ahead,
                "this node's clock runs ahead of the cluster's: the write is stamped with the quorum's time"
            );
        }
        self.observe(stamp);
        stamp
    }

    /// Stamps clamped since start.
    pub fn clamped(&self) -> u64 {
        self.clamped.load(Ordering::Relaxed)
    }

    /// The largest clamp since start, ms.
    pub fn largest_clamp_ms(&self) -> u64 {
        self.largest_clamp_ms.load(Ordering::Relaxed)
    }
}

fn elapsed_ms(since: Instant) -> i64 {
    i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn a_wall_clock_within_the_bound_is_stamped_as_it_is() {
        let c = StampClock::new(DEFAULT_MAX_JUMP);
        c.observe(Timestamp(1_000 * MIN));
        assert_eq!(
            c.check(Timestamp(1_004 * MIN), Timestamp(1_000 * MIN)),
            Check::Within(Timestamp(1_004 * MIN))
        );
        assert!(matches!(
            c.check(Timestamp(1_006 * MIN), Timestamp(1_000 * MIN)),
            Check::Beyond { .. }
        ));
    }

    #[test]
    fn a_clock_only_this_node_believes_is_clamped_to_the_quorums_time() {
        let c = StampClock::new(DEFAULT_MAX_JUMP);
        let state = Timestamp(1_000 * MIN);
        let wall = Timestamp(1_000 * MIN + 2 * 24 * 60 * MIN);
        let Check::Beyond { base, .. } = c.check(wall, state) else {
            panic!("two days ahead is beyond the base");
        };
        // The two other voters are an hour past the state's time (the cluster was idle).
        let others = [Timestamp(1_060 * MIN), Timestamp(1_060 * MIN + 5)];
        assert_eq!(c.settle(wall, base, &others, 3), Timestamp(1_060 * MIN + 5));
        // The next write starts from the clamped time: no gain of a jump per write.
        let Check::Beyond { base, .. } = c.check(wall, state) else {
            panic!("still beyond");
        };
        assert!(base.0 - (1_060 * MIN + 5) < 1_000, "{base:?}");
        assert_eq!(c.clamped(), 1);
        assert!(c.largest_clamp_ms() > 46 * 60 * 60_000);
    }

    #[test]
    fn a_late_clock_the_quorum_confirms_is_used() {
        let c = StampClock::new(DEFAULT_MAX_JUMP);
        let state = Timestamp(1_000 * MIN);
        let wall = Timestamp(1_180 * MIN);
        let Check::Beyond { base, .. } = c.check(wall, state) else {
            panic!("three hours after the last write is beyond the base");
        };
        // One voter agrees within a round trip, one lags far behind: a majority agrees.
        let others = [Timestamp(1_180 * MIN - 20), Timestamp(900 * MIN)];
        assert_eq!(c.settle(wall, base, &others, 3), wall);
        // With nobody answering, nothing beyond the base.
        let c = StampClock::new(DEFAULT_MAX_JUMP);
        assert_eq!(c.settle(wall, base, &[], 3), base);
        // Alone, the node's own clock is the majority.
        let c = StampClock::new(DEFAULT_MAX_JUMP);
        assert_eq!(c.settle(wall, base, &[], 1), wall);
        assert_eq!(c.clamped(), 0);
    }
}
