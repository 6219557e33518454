//! The dispatcher's fan-out walks: each event with a fan-out in the replicated outbox is walked
//! over the subscribers in subscriber order, from its committed cursor, and its settled stretches
//! are reported back as [`FanoutProgress`]. Pure (no IO, no node), like the ready queue that
//! owns it.
//!
//! Invariants:
//! - Recipients are handed out in subscriber order, walk after walk in commit order: a walk
//!   hands out only once every earlier walk has handed out all of its recipients, so within
//!   one subscriber deliveries start in commit order (unless a walk is started again after a
//!   failed report; then earlier deliveries are repeated, under the same `webhook-id`).
//! - A stretch is reported only when every recipient in it has settled (delivered, failed at
//!   the first attempt, or deferred), from the cursor the walk last saw committed; one report
//!   per walk is in flight at a time, so the next one continues from what the log holds.
//! - A walk whose report was not recorded, or whose committed cursor moved under it (a replay
//!   started the fan-out again), is dropped and started again from the committed cursor.

use std::collections::VecDeque;

use statusmesh_model::outbox::{AttemptReport, Event, FanoutProgress};
use statusmesh_model::{Id, State, Subscriber};

/// What became of one recipient of a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settled {
    Running,
    Delivered,
    Failed(AttemptReport),
    /// Not sent: its endpoint was busy; the report turns it into an explicit delivery.
    Deferred,
}

#[derive(Debug)]
struct Walk {
    event: u64,
    /// The committed cursor the next report continues from.
    from: Option<Id>,
    /// The last subscriber examined.
    pos: Option<Id>,
    /// Every subscriber has been examined.
    at_end: bool,
    /// Recipients handed out or deferred and not reported yet, in subscriber order.
    slots: VecDeque<(Id, Settled)>,
    /// The report being recorded: where it ends, and whether it completes the fan-out.
    reporting: Option<(Option<Id>, bool)>,
    /// How many of `slots` are `Running` (read on every dispatcher wake-up).
    running: usize,
}

impl Walk {
    fn slot(&mut self, sub: &Id) -> Option<&mut Settled> {
        let i = self.slots.binary_search_by(|(id, _)| id.cmp(sub)).ok()?;
        self.slots.get_mut(i).map(|(_, s)| s)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Walks {
    walks: VecDeque<Walk>,
}

impl Walks {
    /// Brings the walks in line with the replicated outbox: walks whose fan-out is over or
    /// whose cursor moved under them go, and every event with a fan-out gets a walk (in commit
    /// order).
    pub fn sync(&mut self, state: &State) {
        self.walks.retain(|w| {
            if w.reporting.is_some() {
                return true;
            }
            state
                .outbox
                .events
                .get(&w.event)
                .and_then(|e| e.fanout.as_ref())
                .is_some_and(|f| f.after == w.from)
        });
        for e in state.outbox.events.values() {
            let Some(f) = &e.fanout else {
                continue;
            };
            let at = self.walks.partition_point(|w| w.event < e.seq);
            if self.walks.get(at).is_some_and(|w| w.event == e.seq) {
                continue;
            }
            self.walks.insert(
                at,
                Walk {
                    event: e.seq,
                    from: f.after.clone(),
                    pos: f.after.clone(),
                    at_end: false,
                    slots: VecDeque::new(),
                    reporting: None,
                    running: 0,
                },
            );
        }
    }

    /// True while a walk has recipients left to hand out.
    pub fn has_more(&self) -> bool {
        self.walks.iter().any(|w| !w.at_end)
    }

    /// Hands out at most `room` recipients of the first walk that has some left (then of the
    /// next, once it is done), each through `job`.
    pub fn advance<J>(
        &mut self,
        state: &State,
        room: usize,
        mut job: impl FnMut(&Event, &Subscriber) -> J,
    ) -> Vec<J> {
        let mut out = Vec::new();
        let groups = state.group_map();
        for w in self.walks.iter_mut().filter(|w| !w.at_end) {
            let Some(event) = state.outbox.events.get(&w.event) else {
                w.at_end = true;
                continue;
            };
            for sub in state.subscribers_between(w.pos.as_ref(), None) {
                if out.len() >= room {
                    return out;
                }
                w.pos = Some(sub.id.clone());
                if state.is_fanout_target(event, sub, &groups) {
                    w.slots.push_back((sub.id.clone(), Settled::Running));
                    w.running += 1;
                    out.push(job(event, sub));
                }
            }
            w.at_end = true;
        }
        out
    }

    /// Records what became of `sub`'s delivery of `event` (ignored if the walk was dropped).
    pub fn settle(&mut self, event: u64, sub: &Id, outcome: Settled) {
        let Some(w) = self.walks.iter_mut().find(|w| w.event == event) else {
            return;
        };
        let Some(s) = w.slot(sub) else {
            return;
        };
        let was_running = *s == Settled::Running;
        let now_running = outcome == Settled::Running;
        *s = outcome;
        match (was_running, now_running) {
            (true, false) => w.running -= 1,
            (false, true) => w.running += 1,
            _ => {}
        }
    }

    /// True when some walk has a stretch to report: settled recipients at its front, or
    /// everything it examined settled and its position past the committed cursor (or the
    /// walk at its end).
    pub fn reportable(&self) -> bool {
        self.walks.iter().any(|w| {
            w.reporting.is_none()
                && match w.slots.front() {
                    Some((_, s)) => *s != Settled::Running,
                    None => w.at_end || w.pos != w.from,
                }
        })
    }

    /// Recipients handed out and still running.
    pub fn running(&self) -> usize {
        let running = self.walks.iter().map(|w| w.running).sum();
        // The unit tests check the counters against the slots they count.
        #[cfg(test)]
        assert_eq!(
            running,
            self.walks
                .iter()
                .flat_map(|w| w.slots.iter())
                .filter(|(_, s)| *s == Settled::Running)
                .count()
        );
        running
    }

    /// The settled stretches to report, within about `budget` encoded bytes: from each walk
    /// without a report in flight, the settled recipients at the front of its slots (the whole
    /// walk once it has examined every subscriber and everything settled).
    pub fn take_progress(&mut self, budget: usize) -> Vec<FanoutProgress> {
        let mut out = Vec::new();
        let mut used = 0;
        for w in self.walks.iter_mut().filter(|w| w.reporting.is_none()) {
            let mut p = FanoutProgress {
                event: w.event,
                from: w.from.clone(),
                through: None,
                complete: false,
                failed: Vec::new(),
                deferred: Vec::new(),
            };
            used += 128;
            let mut last = None;
            while let Some((id, settled)) = w.slots.front() {
                match settled {
                    Settled::Running => break,
                    Settled::Delivered => {}
                    Settled::Failed(r) => {
                        let size = r.encoded_len();
                        if used + size > budget {
                            break;
                        }
                        used += size;
                        p.failed.push(r.clone());
                    }
                    Settled::Deferred => {
                        used += id.as_str().len() + 3;
                        p.deferred.push(id.clone());
                    }
                }
                last = w.slots.pop_front().map(|(id, _)| id);
            }
            if w.slots.is_empty() {
                p.through = w.pos.clone();
                p.complete = w.at_end;
            } else {
                p.through = last;
            }
            let moved = match (&p.through, &w.from) {
                (Some(t), Some(f)) => t > f,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !moved && !p.complete {
                continue;
            }
            w.reporting = Some((p.through.clone(), p.complete));
            out.push(p);
            if used >= budget {
                break;
            }
        }
        out
    }

    /// The report of `event`'s walk was applied (`recorded`) or not: the walk continues from
    /// where it ended, or is dropped to start again from the committed cursor.
    pub fn reported(&mut self, event: u64, recorded: bool) {
        let Some(i) = self.walks.iter().position(|w| w.event == event) else {
            return;
        };
        let w = &mut self.walks[i];
        match w.reporting.take() {
            Some((through, complete)) if recorded => {
                if complete {
                    self.walks.remove(i);
                } else {
                    w.from = through;
                }
            }
            _ => {
                self.walks.remove(i);
            }
        }
    }
}
