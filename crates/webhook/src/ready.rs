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
//! - Explicit deliveries start before fan-out recipients; a fan-out recipient whose endpoint
//!   is at its `per_endpoint` share is deferred (an explicit delivery once reported) rather
//!   than holding up the walk, so one slow subscriber never stalls a fan-out.

use std::collections::{HashMap, HashSet, VecDeque};

use statusmesh_model::{Id, PayloadFormat, State, Timestamp};

use statusmesh_model::outbox::{AttemptOutcome, AttemptReport, Event, FanoutProgress};
use statusmesh_model::Subscriber;

use std::sync::Arc;

use crate::email::{self, MailContent, Recipient};
use crate::fanout::{Settled, Walks};
use crate::payload;

/// One delivery of the outbox: an event to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DeliveryKey {
    pub event: u64,
    pub subscriber: Id,
}

/// What a delivery sends: a webhook body, or a mail (rendered once per event) to one
/// recipient.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Http(bytes::Bytes),
    Mail(Arc<MailContent>, Box<Recipient>),
}

/// A rendered event, kept between refills: shared by every recipient of one format.
#[derive(Debug, Clone)]
enum Rendered {
    Http(bytes::Bytes),
    Mail(Arc<MailContent>),
}

/// One request to make.
#[derive(Debug)]
pub(crate) struct Job {
    pub key: DeliveryKey,
    pub url: String,
    pub webhook_id: String,
    pub body: Body,
    pub secrets: Vec<String>,
    pub attempt: u32,
    /// When the event was recorded (for the delivery lag).
    pub event_at: Timestamp,
    /// A fan-out recipient (its result is reported with the walk, not as an attempt report).
    pub walk: bool,
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
    bodies: HashMap<(u64, PayloadFormat), Rendered>,
    /// The fan-out walks, and the recipients they handed out that have not started.
    walks: Walks,
    walk_ready: VecDeque<Job>,
    /// Below this many waiting recipients, a walk with more asks for a refill.
    walk_low: usize,
}

/// Builds the request for `sub`'s delivery of `event`, rendering its body once per event and
/// format.
fn job(
    bodies: &mut HashMap<(u64, PayloadFormat), Rendered>,
    state: &State,
    event: &Event,
    sub: &Subscriber,
    attempt: u32,
    now: Timestamp,
    walk: bool,
) -> Job {
    let rendered = bodies
        .entry((event.seq, sub.format))
        .or_insert_with(|| {
            // A subscription's own notices (its confirmation, its manage link) are mails,
            // whatever the subscriber's kind: a webhook's go to its contact address.
            if sub.format.is_email() || event.kind.is_subscription_notice() {
                Rendered::Mail(Arc::new(email::render(state, event)))
            } else {
                Rendered::Http(payload::render(state, event, sub.format).into())
            }
        })
        .clone();
    let body = match (rendered, Recipient::of(state, sub)) {
        (Rendered::Mail(content), Some(to)) => Body::Mail(content, Box::new(to)),
        // (An email subscriber whose URL is not `mailto:` cannot exist: apply checks it; a
        // webhook without a contact address gets no notice — its body is empty and refused.)
        (Rendered::Mail(_), None) => Body::Http(bytes::Bytes::new()),
        (Rendered::Http(b), _) => Body::Http(b),
    };
    Job {
        key: DeliveryKey {
            event: event.seq,
            subscriber: sub.id.clone(),
        },
        url: sub.url.clone(),
        webhook_id: event.webhook_id.clone(),
        body,
        secrets: sub
            .signing_secrets(now)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        attempt,
        event_at: event.at,
        walk,
    }
}

impl Queue {
    /// True when the queue ran dry after a capped refill, or a walk with recipients left is
    /// running low on waiting ones: refill again.
    pub fn wants_refill(&self) -> bool {
        (self.ready.is_empty() && self.capped)
            || (self.walk_ready.len() < self.walk_low && self.walks.has_more())
    }

    pub fn next_due(&self) -> Option<Timestamp> {
        self.next_due
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len() + self.walks.running()
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
            let job = job(
                &mut self.bodies,
                state,
                event,
                sub,
                d.attempts + 1,
                now,
                false,
            );
            self.ready.push_back(job);
        }
        // Then the fan-outs: enough recipients waiting for a few rounds of requests.
        self.walks.sync(state);
        self.walk_low = limits.max_in_flight;
        let room = limits.cap().saturating_sub(self.walk_ready.len());
        if room > 0 {
            let bodies = &mut self.bodies;
            let handed = self.walks.advance(state, room, |event, sub| {
                job(bodies, state, event, sub, 1, now, true)
            });
            self.walk_ready.extend(handed);
        }
    }

    /// Hands out the ready jobs that may start now, in queue (commit) order within the global
    /// and per-endpoint bounds, and counts them as running and in flight; a job whose endpoint
    /// is busy keeps its place.
    pub fn take_startable(&mut self, limits: Limits) -> Vec<Job> {
        let mut started = Vec::new();
        if self.active >= limits.max_in_flight {
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
        while self.active < limits.max_in_flight {
            let Some(job) = self.walk_ready.pop_front() else {
                break;
            };
            let busy = self.sending.get(&job.key.subscriber).copied().unwrap_or(0);
            if busy >= limits.per_endpoint {
                self.walks
                    .settle(job.key.event, &job.key.subscriber, Settled::Deferred);
                continue;
            }
            *self.sending.entry(job.key.subscriber.clone()).or_default() += 1;
            self.active += 1;
            started.push(job);
        }
        started
    }

    /// A fan-out recipient's request ended with `report`.
    pub fn walk_finished(&mut self, key: &DeliveryKey, report: AttemptReport) {
        self.finished(key);
        let settled = if report.outcome == AttemptOutcome::Delivered {
            Settled::Delivered
        } else {
            Settled::Failed(report)
        };
        self.walks.settle(key.event, &key.subscriber, settled);
    }

    /// True when a fan-out stretch is ready to report.
    pub fn has_progress(&self) -> bool {
        self.walks.reportable()
    }

    /// The fan-out stretches ready to report, within about `budget` encoded bytes.
    pub fn take_progress(&mut self, budget: usize) -> Vec<FanoutProgress> {
        self.walks.take_progress(budget)
    }

    /// The stretches of these events were recorded (or not: their walks start again).
    pub fn reported(&mut self, events: impl IntoIterator<Item = u64>, recorded: bool) {
        for e in events {
            self.walks.reported(e, recorded);
        }
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
    const POLICY: QuarantinePolicy = QuarantinePolicy {
        failures: 10,
        window_ms: 3_600_000,
    };

    fn subscribers(subs: usize) -> Scenario {
        let mut s = Scenario::new();
        for i in 0..subs {
            s.ok(Command::AddSubscriber {
                id: id(&format!("sub{i:02}")),
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
        s
    }

    /// `subs` subscribers and `events` incidents: every event fans out to every subscriber.
    fn scenario(subs: usize, events: usize) -> Scenario {
        let mut s = subscribers(subs);
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

    /// `pings[i]` explicit deliveries (test pings) to subscriber i.
    fn pinged(pings: &[usize]) -> Scenario {
        let mut s = subscribers(pings.len());
        for (i, n) in pings.iter().enumerate() {
            for _ in 0..*n {
                s.ok(Command::TestSubscriber {
                    id: id(&format!("sub{i:02}")),
                });
            }
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

    fn report(job: &Job, outcome: AttemptOutcome) -> AttemptReport {
        AttemptReport {
            event: job.key.event,
            subscriber: job.key.subscriber.clone(),
            attempt: job.attempt,
            at: Timestamp(0),
            duration_ms: 1,
            http_status: Some(200),
            error: None,
            response_excerpt: String::new(),
            outcome,
        }
    }

    #[test]
    fn fan_out_recipients_start_in_commit_order_and_a_busy_endpoint_is_deferred() {
        let mut s = scenario(1, 5);
        let mut q = Queue::default();
        q.refill(&s.state, now(&s), LIMITS);
        let first = q.take_startable(LIMITS);
        // One subscriber: its per-endpoint share, oldest events first, as fan-out recipients;
        // the other three are deferred rather than holding the walks up.
        assert_eq!(keys(&first), [(1, "sub00".into()), (2, "sub00".into())]);
        assert!(first.iter().all(|j| j.walk && j.attempt == 1));
        let progress = q.take_progress(usize::MAX);
        assert_eq!(
            progress.iter().map(|p| p.event).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert!(progress
            .iter()
            .all(|p| p.complete && p.deferred == [id("sub00")]));
        // Applied: the deferred ones are explicit deliveries now, started in commit order as
        // the endpoint frees up.
        s.ok(Command::RecordAttempts {
            policy: POLICY,
            reports: vec![],
            progress,
        });
        q.reported([3, 4, 5], true);
        q.walk_finished(&first[0].key, report(&first[0], AttemptOutcome::Delivered));
        q.refill(&s.state, now(&s), LIMITS);
        let next = q.take_startable(LIMITS);
        assert_eq!(keys(&next), [(3, "sub00".into())]);
        assert!(!next[0].walk);
        // Event 1's stretch is settled; event 2's recipient is still running.
        let progress = q.take_progress(usize::MAX);
        assert_eq!(progress.len(), 1);
        assert_eq!((progress[0].event, progress[0].complete), (1, true));
        assert_eq!(q.in_flight(), 2);
    }

    #[test]
    fn a_stretch_that_was_not_recorded_is_walked_again_from_the_committed_cursor() {
        let s = scenario(3, 1);
        let mut q = Queue::default();
        q.refill(&s.state, now(&s), LIMITS);
        let started = q.take_startable(LIMITS);
        assert_eq!(started.len(), 3);
        q.walk_finished(
            &started[0].key,
            report(&started[0], AttemptOutcome::Delivered),
        );
        let failed = report(
            &started[1],
            AttemptOutcome::Retry {
                next_at: Timestamp(9),
            },
        );
        q.walk_finished(&started[1].key, failed.clone());
        // sub02 still running: the stretch ends at sub01, carrying its failure.
        let p = q.take_progress(usize::MAX);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].through, Some(id("sub01")));
        assert!(!p[0].complete);
        assert_eq!(p[0].failed, [failed]);
        // One report per walk in flight.
        assert!(q.take_progress(usize::MAX).is_empty());
        // The proposal failed: the walk starts again from the committed cursor (none).
        q.reported([1], false);
        q.finished(&started[2].key);
        q.refill(&s.state, now(&s), LIMITS);
        assert_eq!(keys(&q.take_startable(LIMITS)), keys(&started));
    }

    #[test]
    fn a_delivery_in_flight_is_never_handed_out_twice() {
        let s = pinged(&[1, 1]);
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
        // sub00 has 40 deliveries due, and the refill's cap is 16: the other subscribers'
        // deliveries are still queued in the same refill.
        let s = pinged(&[40, 1, 1, 1, 1]);
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
        let mut s = pinged(&[1]);
        let event = s.event(statusmesh_model::EventKind::Ping);
        let retry_at = Timestamp(s.now + 60_000);
        let report = s.report(event, "sub00", AttemptOutcome::Retry { next_at: retry_at });
        s.ok(Command::RecordAttempts {
            policy: POLICY,
            reports: vec![report],
            progress: vec![],
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
        let s = pinged(&[1; 20]);
        let mut q = Queue::default();
        q.refill(&s.state, now(&s), LIMITS);
        assert!(!q.wants_refill());
        while !q.take_startable(LIMITS).is_empty() {
            q.active = 0;
            q.sending.clear();
        }
        assert!(q.wants_refill(), "20 due, 16 queued: more remain");
    }

    #[test]
    fn a_walk_that_reached_its_end_has_its_last_stretch_to_report() {
        // Five subscribers, the last one disabled: the walk hands out four (its room), then
        // finds only a subscriber it owes nothing.
        let mut s = scenario(5, 1);
        s.ok(Command::SetSubscriberState {
            id: id("sub04"),
            enabled: false,
            replay_since: None,
        });
        let mut q = Queue::default();
        let limits = Limits {
            max_in_flight: 1,
            per_endpoint: 1,
        };
        q.refill(&s.state, now(&s), limits);
        let mut started = Vec::new();
        while let Some(j) = q.take_startable(limits).pop() {
            q.walk_finished(&j.key, report(&j, AttemptOutcome::Delivered));
            started.push(j);
        }
        assert_eq!(started.len(), 4);
        let p = q.take_progress(usize::MAX);
        assert_eq!((p.len(), p[0].complete), (1, false));
        s.ok(Command::RecordAttempts {
            policy: POLICY,
            reports: vec![],
            progress: p,
        });
        q.reported([1], true);
        assert!(!q.has_progress());
        // The next refill finds no recipient left: the walk ends, with a stretch to report.
        q.refill(&s.state, now(&s), limits);
        assert!(q.take_startable(limits).is_empty());
        assert!(q.has_progress());
        let p = q.take_progress(usize::MAX);
        assert_eq!((p.len(), p[0].complete), (1, true));
    }

    #[test]
    fn a_long_walk_asks_for_a_refill_as_its_waiting_recipients_run_low() {
        let s = scenario(40, 1);
        let mut q = Queue::default();
        q.refill(&s.state, now(&s), LIMITS);
        // 16 handed out (the cap), 24 left to walk.
        let started = q.take_startable(LIMITS);
        assert_eq!(started.len(), 4);
        assert!(!q.wants_refill(), "12 still waiting");
        for j in &started {
            q.finished(&j.key);
        }
        for _ in 0..3 {
            for j in q.take_startable(LIMITS) {
                q.finished(&j.key);
            }
        }
        assert!(q.wants_refill());
        q.refill(&s.state, now(&s), LIMITS);
        assert!(!q.take_startable(LIMITS).is_empty());
    }
}
