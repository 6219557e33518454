//! The dispatcher's ready queue: which due deliveries to start, in what order, within which
//! bounds. Pure (no IO, no node): the dispatcher refills it from the replica's outbox and
//! starts what it hands out.
//!
//! Invariants:
//! - A delivery handed out by [`Queue::take_startable`] stays in flight until
//!   [`Queue::release`] (its attempt record was applied or failed): it is never handed out
//!   twice meanwhile.
//! - Within one subscriber, jobs come out in commit order, at most `per_endpoint` running at
//!   once; at most `max_in_flight` run in all.
//! - Fairness: a refill queues at most a subscriber's `per_endpoint` share (counting its
//!   running requests), so one subscriber's backlog never fills the queue's cap and every
//!   other subscriber's due deliveries are reached in the same refill.

use std::collections::{HashMap, HashSet, VecDeque};

use statusmesh_model::{Id, PayloadFormat, State, Timestamp};

use crate::payload;

/// One delivery of the outbox: an event to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DeliveryKey {
    pub event: u64,
    pub subscriber: Id,
}

/// One request to make.
#[derive(Debug)]
pub(crate) struct Job {
    pub key: DeliveryKey,
    pub url: String,
    pub webhook_id: String,
    pub body: bytes::Bytes,
    pub secrets: Vec<String>,
    pub attempt: u32,
    /// When the event was recorded (for the delivery lag).
    pub event_at: Timestamp,
}

/// The bounds the queue keeps to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_in_flight: usize,
    pub per_endpoint: usize,
}

impl Limits {
    /// The most jobs one refill queues: a few rounds of `max_in_flight`.
    fn cap(self) -> usize {
        self.max_in_flight * 4
    }
}

/// Rendered bodies kept between refills, by event and format (cleared past this many).
const MAX_BODIES: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// Handed out, until released.
    in_flight: HashSet<DeliveryKey>,
    /// Due and not started, in commit order.
    ready: VecDeque<Job>,
    /// The last refill stopped at its cap: more may be due.
    capped: bool,
    /// When the earliest delivery not yet due falls due.
    next_due: Option<Timestamp>,
    /// Requests running per subscriber.
    sending: HashMap<Id, usize>,
    /// Requests running in all.
    active: usize,
    bodies: HashMap<(u64, PayloadFormat), bytes::Bytes>,
}

impl Queue {
    /// True when the queue ran dry after a capped refill: refill again.
    pub fn wants_refill(&self) -> bool {
        self.ready.is_empty() && self.capped
    }

    pub fn next_due(&self) -> Option<Timestamp> {
        self.next_due
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Rebuilds the ready queue from the outbox: deliveries due at `now` and not in flight, in
    /// commit order, within the limits; notes when the next one falls due.
    pub fn refill(&mut self, state: &State, now: Timestamp, limits: Limits) {
        self.ready.clear();
        self.next_due = None;
        self.capped = false;
        if self.bodies.len() > MAX_BODIES {
            self.bodies.clear();
        }
        // Jobs queued per subscriber in this refill, on top of its requests running.
        let mut queued: HashMap<&Id, usize> = HashMap::new();
        for (seq, sub_id, d) in state.outbox.pending() {
            if self.ready.len() >= limits.cap() {
                self.capped = true;
                break;
            }
            if d.next_attempt_at > now {
                self.next_due = Some(
                    self.next_due
                        .map_or(d.next_attempt_at, |n| n.min(d.next_attempt_at)),
                );
                continue;
            }
            let key = DeliveryKey {
                event: seq,
                subscriber: sub_id.clone(),
            };
            if self.in_flight.contains(&key) {
                continue;
            }
            // A subscriber with its share queued or running waits for the next refill (its
            // running requests' records trigger one), keeping its commit order.
            let held = queued.entry(sub_id).or_default();
            if *held + self.sending.get(sub_id).copied().unwrap_or(0) >= limits.per_endpoint {
                continue;
            }
            *held += 1;
            let (Some(sub), Some(event)) =
                (state.subscribers.get(sub_id), state.outbox.events.get(&seq))
            else {
                continue;
            };
            let body = self
                .bodies
                .entry((seq, sub.format))
                .or_insert_with(|| payload::render(state, event, sub.format).into())
                .clone();
            self.ready.push_back(Job {
                key,
                url: sub.url.clone(),
                webhook_id: event.webhook_id.clone(),
                body,
                secrets: sub
                    .signing_secrets(now)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                attempt: d.attempts + 1,
                event_at: event.at,
            });
        }
    }

    /// Hands out the ready jobs that may start now, in queue (commit) order within the global
    /// and per-endpoint bounds, and counts them as running and in flight; a job whose endpoint
    /// is busy keeps its place.
    pub fn take_startable(&mut self, limits: Limits) -> Vec<Job> {
        let mut started = Vec::new();
        if self.ready.is_empty() || self.active >= limits.max_in_flight {
            return started;
        }
        let mut kept = VecDeque::with_capacity(self.ready.len());
        while let Some(job) = self.ready.pop_front() {
            if self.active >= limits.max_in_flight {
                kept.push_back(job);
                kept.extend(self.ready.drain(..));
                break;
            }
            let busy = self.sending.get(&job.key.subscriber).copied().unwrap_or(0);
            if busy >= limits.per_endpoint {
                kept.push_back(job);
                continue;
            }
            self.in_flight.insert(job.key.clone());
            *self.sending.entry(job.key.subscriber.clone()).or_default() += 1;
            self.active += 1;
            started.push(job);
        }
        self.ready = kept;
        started
    }

    /// A request for `key` ended (its report is on its way to the log).
    pub fn finished(&mut self, key: &DeliveryKey) {
        if let Some(n) = self.sending.get_mut(&key.subscriber) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.sending.remove(&key.subscriber);
            }
        }
        self.active = self.active.saturating_sub(1);
    }

    /// The record carrying these deliveries' reports was applied (or failed): they may be
    /// handed out again if they are still pending.
    pub fn release(&mut self, keys: impl IntoIterator<Item = DeliveryKey>) {
        for k in keys {
            self.in_flight.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use statusmesh_model::command::{Command, NewIncident, NewSubscriber};
    use statusmesh_model::outbox::{AttemptOutcome, QuarantinePolicy};
    use statusmesh_model::testkit::{id, Scenario, SECRET_A};
    use statusmesh_model::{Impact, IncidentStatus};

    use super::*;

    const LIMITS: Limits = Limits {
        max_in_flight: 4,
        per_endpoint: 2,
    };

    /// `subs` subscribers and `events` incidents: every subscriber has `events` deliveries due.
    fn scenario(subs: usize, events: usize) -> Scenario {
        let mut s = Scenario::new();
        for i in 0..subs {
            s.ok(Command::AddSubscriber {
                id: id(&format!("sub{i}")),
                spec: NewSubscriber {
                    url: format!("https://hooks{i}.example/in"),
                    component_ids: vec![],
                    description: None,
                    secret: SECRET_A.into(),
                    format: PayloadFormat::Statuspage,
                    owner: None,
                },
            });
        }
        for e in 0..events {
            s.ok(Command::CreateIncident {
                id: id(&format!("inc{e}")),
                update_id: id(&format!("upd{e}")),
                spec: NewIncident {
                    name: format!("incident {e}"),
                    status: IncidentStatus::Investigating,
                    impact: Impact::Minor,
                    body: "looking".into(),
                    started_at: None,
                    component_changes: vec![],
                },
            });
        }
        s
    }

    fn now(s: &Scenario) -> Timestamp {
        Timestamp(s.now + 1)
    }

    fn keys(jobs: &[Job]) -> Vec<(u64, String)> {
        jobs.iter()
            .map(|j| (j.key.event, j.key.subscriber.to_string()))
            .collect()
    }

    #[test]
    fn jobs_start_in_commit_order_within_both_bounds() {
        let s = scenario(1, 5);
        let mut q = Queue::default();
        q.refill(&s.state, now(&s), LIMITS);
        let first = q.take_startable(LIMITS);
        // One subscriber: its per-endpoint share, oldest events first.
        assert_eq!(first.len(), 2);
        assert!(first[0].key.event < first[1].key.event);
        assert_eq!(first[0].attempt, 1);
        assert!(q.take_startable(LIMITS).is_empty(), "the endpoint is busy");
        // One ends: the next one in commit order may start after a refill.
        q.finished(&first[0].key);
        q.refill(&s.state, now(&s), LIMITS);
        let next = q.take_startable(LIMITS);
        assert_eq!(next.len(), 1);
        assert!(next[0].key.event > first[1].key.event);
        assert_eq!(q.in_flight(), 3);
    }

    #[test]
    fn a_delivery_in_flight_is_never_handed_out_twice() {
        let s = scenario(2, 1);
        let mut q = Queue::default();
        q.refill(&s.state, now(&s), LIMITS);
        let started = q.take_startable(LIMITS);
        assert_eq!(started.len(), 2);
        for j in &started {
            q.finished(&j.key);
        }
        // Still pending in the outbox (the record is not applied yet), but in flight.
        q.refill(&s.state, now(&s), LIMITS);
        assert!(q.take_startable(LIMITS).is_empty());
        // Released without a record (the proposal failed): handed out again.
        q.release(started.iter().map(|j| j.key.clone()));
        q.refill(&s.state, now(&s), LIMITS);
        assert_eq!(keys(&q.take_startable(LIMITS)), keys(&started));
    }

    #[test]
    fn one_backlog_does_not_starve_the_others() {
        // sub0 has 40 deliveries due, and the refill's cap is 16: the other subscribers'
        // deliveries are still queued in the same refill.
        let s = scenario(5, 40);
        let mut q = Queue::default();
        q.refill(&s.state, now(&s), LIMITS);
        let mut seen: HashSet<String> = HashSet::new();
        let mut running = Vec::new();
        for _ in 0..3 {
            let jobs = q.take_startable(LIMITS);
            seen.extend(jobs.iter().map(|j| j.key.subscriber.to_string()));
            for j in &jobs {
                q.finished(&j.key);
            }
            running.extend(jobs);
        }
        assert_eq!(seen.len(), 5, "subscribers reached: {seen:?}");
        assert!(
            running.len() <= 10,
            "no more than each one's share per refill"
        );
    }

    #[test]
    fn deliveries_not_yet_due_set_the_next_wake_up() {
        let mut s = scenario(1, 1);
        let event = s.event(statusmesh_model::EventKind::IncidentCreated);
        let retry_at = Timestamp(s.now + 60_000);
        let report = s.report(event, "sub0", AttemptOutcome::Retry { next_at: retry_at });
        s.ok(Command::RecordAttempts {
            policy: QuarantinePolicy {
                failures: 10,
                window_ms: 3_600_000,
            },
            reports: vec![report],
        });
        let mut q = Queue::default();
        q.refill(&s.state, now(&s), LIMITS);
        assert!(q.take_startable(LIMITS).is_empty(), "the retry is not due");
        let due = q.next_due().expect("a next due time");
        assert_eq!(due, retry_at);
        q.refill(&s.state, due, LIMITS);
        let retried = q.take_startable(LIMITS);
        assert_eq!(retried.len(), 1);
        assert_eq!(retried[0].attempt, 2);
    }

    #[test]
    fn a_capped_refill_asks_for_another_once_drained() {
        let s = scenario(20, 1);
        let mut q = Queue::default();
        q.refill(&s.state, now(&s), LIMITS);
        assert!(!q.wants_refill());
        while !q.take_startable(LIMITS).is_empty() {
            q.active = 0;
            q.sending.clear();
        }
        assert!(q.wants_refill(), "20 due, 16 queued: more remain");
    }
}
