//! The leader's dispatcher: sends the outbox's due deliveries and reports the attempts back
//! through the log.
//!
//! Invariants:
//! - Only a leader inside its lease sends (`ClusterNode::leader_lease`), and a dispatcher works
//!   for one term: when the term changes it stops starting requests and drops its pending
//!   reports. The next leader starts from the replicated outbox, so a request that was in
//!   flight is sent again with the same `webhook-id` (at-least-once).
//! - A delivery is not started twice by one dispatcher: it stays in `in_flight` from the moment
//!   its request starts until the `RecordAttempts` carrying its report has been applied.
//! - Within one subscriber, due deliveries are started in commit order, at most
//!   `per_endpoint` at a time; at most `max_in_flight` requests run on the node.
//! - Fairness: the ready queue holds at most `per_endpoint` jobs per subscriber (counting its
//!   requests running), so one subscriber's backlog (a replay, a slow endpoint) never fills
//!   the queue's cap and every other subscriber's due deliveries are reached in the same scan.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use statusmesh_cluster::{now, ClusterNode};
use statusmesh_metrics::{Histogram, LAG_BUCKETS};
use statusmesh_model::command::Command;
use statusmesh_model::outbox::{AttemptOutcome, AttemptReport};
use statusmesh_model::{Id, PayloadFormat, Proposal, Timestamp};
use tokio::sync::{mpsc, watch};

use crate::payload;
use crate::policy::{parse_retry_after, Response, WebhookConfig};
use crate::signature::signature_header;
use crate::ssrf::{self, VettingResolver};

/// Counters of this node's dispatcher, for the admin API, `/api/cluster` and `/metrics`.
#[derive(Debug)]
pub struct DispatchStats {
    /// True while this node leads and sends.
    pub dispatching: AtomicBool,
    /// Requests running or awaiting their attempt record.
    pub in_flight: AtomicU64,
    /// Requests sent by this node since it started.
    pub sent_total: AtomicU64,
    /// `RecordAttempts` commands this node proposed (Raft writes spent on attempt records).
    pub record_writes: AtomicU64,
    /// How long each request this node sent took, whatever its outcome.
    pub attempt_seconds: Histogram,
    /// For each delivery this node completed (2xx): from the event's commit (leader clock) to
    /// the answer, retries and leader changes included.
    pub delivery_lag_seconds: Histogram,
}

impl Default for DispatchStats {
    fn default() -> Self {
        DispatchStats {
            dispatching: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            sent_total: AtomicU64::new(0),
            record_writes: AtomicU64::new(0),
            attempt_seconds: Histogram::latency(),
            delivery_lag_seconds: Histogram::new(LAG_BUCKETS),
        }
    }
}

type Key = (u64, Id);

/// The most report bytes in one `RecordAttempts`: one log entry's limit, less room for the
/// proposal's envelope.
const REPORT_BATCH_BYTES: usize = statusmesh_model::limits::MAX_ENTRY_BYTES - 4 * 1024;

/// What one term's dispatcher keeps between wake-ups.
#[derive(Default)]
struct Work {
    /// Started, until the record carrying their report is applied.
    in_flight: HashSet<Key>,
    /// Due and not started, in commit order.
    ready: VecDeque<Job>,
    /// The last scan stopped at its cap: more may be due.
    capped: bool,
    next_due: Option<Timestamp>,
    /// Requests running per subscriber.
    sending: HashMap<Id, usize>,
    active: usize,
    batch: Vec<(Key, AttemptReport)>,
    /// What `batch` adds to its `RecordAttempts` entry, encoded.
    batch_bytes: usize,
    batch_deadline: Option<tokio::time::Instant>,
    batches: u64,
    bodies: HashMap<(u64, PayloadFormat), bytes::Bytes>,
}

impl Work {
    /// A request to `sub` ended.
    fn finished(&mut self, sub: &Id) {
        if let Some(n) = self.sending.get_mut(sub) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.sending.remove(sub);
            }
        }
        self.active = self.active.saturating_sub(1);
    }
}

/// One request to make.
struct Job {
    key: Key,
    url: String,
    webhook_id: String,
    body: bytes::Bytes,
    secrets: Vec<String>,
    attempt: u32,
    /// When the event was recorded (for the delivery lag).
    event_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Dispatcher {
    node: Arc<ClusterNode>,
    cfg: Arc<WebhookConfig>,
    client: reqwest::Client,
    stats: Arc<DispatchStats>,
}

/// Builds the HTTP client every delivery goes through: no redirects, no proxies, a request
/// timeout, and a resolver that only returns vetted addresses.
pub fn http_client(cfg: &WebhookConfig) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
        .dns_resolver(VettingResolver::shared(cfg.targets))
        .user_agent(concat!("statusmesh-webhooks/", env!("CARGO_PKG_VERSION")))
        // Enough idle connections for every request in flight to reuse one.
        .pool_max_idle_per_host(cfg.max_in_flight)
        .build()
        .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))
}

impl Dispatcher {
    pub fn new(node: Arc<ClusterNode>, cfg: WebhookConfig) -> Result<Self, String> {
        Ok(Dispatcher {
            client: http_client(&cfg)?,
            node,
            cfg: Arc::new(cfg),
            stats: Arc::new(DispatchStats::default()),
        })
    }

    pub fn stats(&self) -> Arc<DispatchStats> {
        self.stats.clone()
    }

    /// Runs until `shutdown` turns true: waits to lead, then dispatches for that term.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut metrics = self.node.raft.metrics();
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Some(term) = self.node.leader_lease() {
                tracing::info!(term, "webhook dispatcher starts (this node leads)");
                self.stats.dispatching.store(true, Ordering::Relaxed);
                self.lead(term, &mut shutdown).await;
                self.stats.dispatching.store(false, Ordering::Relaxed);
                self.stats.in_flight.store(0, Ordering::Relaxed);
                tracing::info!(term, "webhook dispatcher stops");
                continue;
            }
            tokio::select! {
                _ = metrics.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Dispatches while this node leads in `term`.
    async fn lead(&self, term: u64, shutdown: &mut watch::Receiver<bool>) {
        let replica = self.node.replica().clone();
        let mut applied = replica.subscribe();
        let (report_tx, mut report_rx) = mpsc::unbounded_channel::<(Key, AttemptReport)>();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Vec<Key>, bool)>();
        let mut w = Work::default();
        let mut rescan = true;
        loop {
            match self.node.leader_lease() {
                Some(t) if t == term => {}
                // Still leader of this term but the lease lapsed: pause, do not start anything.
                None if self.node.is_leader() && self.current_term() == term => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                _ => return,
            }
            if rescan || (w.ready.is_empty() && w.capped) {
                self.scan(&mut w);
                rescan = false;
            }
            self.start_ready(term, &mut w, &report_tx);
            self.stats
                .in_flight
                .store(w.in_flight.len() as u64, Ordering::Relaxed);
            let wake = w
                .next_due
                .map(|t| Duration::from_millis((t.0 - now().0).clamp(1, 1_000) as u64))
                .unwrap_or(Duration::from_secs(1));
            let flush_at = w.batch_deadline;
            tokio::select! {
                _ = applied.changed() => rescan = true,
                Some(first) = report_rx.recv() => {
                    let mut got = vec![first];
                    while let Ok(more) = report_rx.try_recv() {
                        got.push(more);
                    }
                    for (key, report) in got {
                        w.finished(&key.1);
                        // Cut to what the attempt log keeps before sizing: a batch's entry
                        // stays under the log's entry limit whatever the receivers answer.
                        let report = report.bounded();
                        let size = report.encoded_len();
                        if !w.batch.is_empty() && w.batch_bytes + size > REPORT_BATCH_BYTES {
                            self.flush(term, &mut w, &done_tx);
                        }
                        w.batch_bytes += size;
                        w.batch.push((key, report));
                    }
                    if w.batch_deadline.is_none() {
                        w.batch_deadline = Some(tokio::time::Instant::now() + self.cfg.batch_delay);
                    }
                }
                Some((keys, recorded)) = done_rx.recv() => {
                    for k in keys {
                        w.in_flight.remove(&k);
                    }
                    // Unrecorded attempts are still pending in the outbox: pick them up again.
                    rescan |= !recorded;
                }
                _ = async { tokio::time::sleep_until(flush_at.unwrap_or_else(tokio::time::Instant::now)).await }, if flush_at.is_some() => {
                    w.batch_deadline = None;
                }
                _ = tokio::time::sleep(wake) => rescan = true,
                _ = shutdown.changed() => {
                    // Hand over cleanly: record the attempts already made, so the next leader
                    // does not send them again.
                    if !w.batch.is_empty() {
                        w.batches += 1;
                        let last = self.record(term, w.batches, std::mem::take(&mut w.batch), done_tx.clone());
                        let _ = tokio::time::timeout(Duration::from_secs(3), last).await;
                    }
                    return;
                }
            }
            let full = w.batch.len() >= self.cfg.batch_max;
            let due = w.batch_deadline.is_none() && !w.batch.is_empty();
            if full || due {
                self.flush(term, &mut w, &done_tx);
            }
            if w.bodies.len() > 10_000 {
                w.bodies.clear();
            }
        }
    }

    /// Proposes the batch gathered so far (without waiting for it) and starts a new one.
    fn flush(&self, term: u64, w: &mut Work, done: &mpsc::UnboundedSender<(Vec<Key>, bool)>) {
        w.batch_deadline = None;
        w.batches += 1;
        w.batch_bytes = 0;
        let taken = std::mem::take(&mut w.batch);
        drop(self.record(term, w.batches, taken, done.clone()));
    }

    fn current_term(&self) -> u64 {
        self.node.raft.metrics().borrow().current_term
    }

    /// Rebuilds the ready queue from the outbox: due deliveries not already in flight, in
    /// commit order, at most a few rounds of `max_in_flight` in all and what `per_endpoint`
    /// leaves room for per subscriber. Notes when the next one falls due.
    fn scan(&self, w: &mut Work) {
        let now = now();
        let cap = self.cfg.max_in_flight * 4;
        w.ready.clear();
        w.next_due = None;
        w.capped = false;
        // Jobs queued per subscriber in this scan, on top of its requests running.
        let mut queued: HashMap<&Id, usize> = HashMap::new();
        let data = self.node.replica().read();
        let state = &data.state;
        for (seq, sub_id, d) in state.outbox.pending() {
            if w.ready.len() >= cap {
                w.capped = true;
                break;
            }
            if d.next_attempt_at > now {
                w.next_due = Some(
                    w.next_due
                        .map_or(d.next_attempt_at, |n| n.min(d.next_attempt_at)),
                );
                continue;
            }
            let key = (seq, sub_id.clone());
            if w.in_flight.contains(&key) {
                continue;
            }
            // A subscriber with its share queued or running waits for the next scan (its
            // running requests' records trigger one), keeping its commit order.
            let held = queued.entry(sub_id).or_default();
            if *held + w.sending.get(sub_id).copied().unwrap_or(0) >= self.cfg.per_endpoint {
                continue;
            }
            *held += 1;
            let (Some(sub), Some(event)) =
                (state.subscribers.get(sub_id), state.outbox.events.get(&seq))
            else {
                continue;
            };
            let body = w
                .bodies
                .entry((seq, sub.format))
                .or_insert_with(|| payload::render(state, event, sub.format).into())
                .clone();
            w.ready.push_back(Job {
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

    /// Starts ready jobs in queue (commit) order within the global and per-endpoint bounds; a
    /// job whose endpoint is busy keeps its place.
    fn start_ready(
        &self,
        term: u64,
        w: &mut Work,
        report_tx: &mpsc::UnboundedSender<(Key, AttemptReport)>,
    ) {
        if w.ready.is_empty() || w.active >= self.cfg.max_in_flight {
            return;
        }
        let mut kept = VecDeque::with_capacity(w.ready.len());
        while let Some(job) = w.ready.pop_front() {
            if w.active >= self.cfg.max_in_flight {
                kept.push_back(job);
                kept.extend(w.ready.drain(..));
                break;
            }
            let busy = w.sending.get(&job.key.1).copied().unwrap_or(0);
            if busy >= self.cfg.per_endpoint {
                kept.push_back(job);
                continue;
            }
            w.in_flight.insert(job.key.clone());
            *w.sending.entry(job.key.1.clone()).or_default() += 1;
            w.active += 1;
            self.spawn_attempt(term, job, report_tx.clone());
        }
        w.ready = kept;
    }

    fn spawn_attempt(&self, term: u64, job: Job, tx: mpsc::UnboundedSender<(Key, AttemptReport)>) {
        let this = self.clone();
        tokio::spawn(async move {
            // Fencing: a node that lost its lease since the job was chosen does not send.
            if this.node.leader_lease() != Some(term) {
                return;
            }
            this.stats.sent_total.fetch_add(1, Ordering::Relaxed);
            let key = job.key.clone();
            let report = this.attempt(job).await;
            let _ = tx.send((key, report));
        });
    }

    /// Makes one signed request and turns its result into a report.
    async fn attempt(&self, job: Job) -> AttemptReport {
        let started = Instant::now();
        let at = now();
        let (response, http_status, error, excerpt) = self.send(&job, at).await;
        let ended = now();
        let took = started.elapsed();
        let outcome = self.cfg.outcome(job.attempt, &response, ended);
        self.stats.attempt_seconds.observe(took);
        if outcome == AttemptOutcome::Delivered {
            let lag_ms = u64::try_from(ended.0.saturating_sub(job.event_at.0)).unwrap_or(0);
            self.stats
                .delivery_lag_seconds
                .observe(Duration::from_millis(lag_ms));
        }
        AttemptReport {
            event: job.key.0,
            subscriber: job.key.1,
            attempt: job.attempt,
            at,
            duration_ms: took.as_millis().min(u32::MAX as u128) as u32,
            http_status,
            error,
            response_excerpt: excerpt,
            outcome,
        }
    }

    async fn send(
        &self,
        job: &Job,
        at: Timestamp,
    ) -> (Response, Option<u16>, Option<String>, String) {
        if let Err(e) = ssrf::check_url(&job.url, &self.cfg.targets) {
            return (Response::Error, None, Some(e.to_string()), String::new());
        }
        let ts = at.0.div_euclid(1000);
        let secrets: Vec<&str> = job.secrets.iter().map(String::as_str).collect();
        let signature = match signature_header(&secrets, &job.webhook_id, ts, &job.body) {
            Ok(s) => s,
            Err(e) => return (Response::Error, None, Some(e.to_string()), String::new()),
        };
        let result = self
            .client
            .post(&job.url)
            .header("content-type", "application/json")
            .header("webhook-id", &job.webhook_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(job.body.clone())
            .send()
            .await;
        match result {
            Ok(mut resp) => {
                let code = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, now()));
                // Keep the start of the body; never read an unbounded answer.
                let mut excerpt = Vec::new();
                while excerpt.len() < 1024 {
                    match resp.chunk().await {
                        Ok(Some(c)) => excerpt.extend_from_slice(&c[..c.len().min(1024)]),
                        _ => break,
                    }
                }
                let text = String::from_utf8_lossy(&excerpt).into_owned();
                (
                    Response::Status { code, retry_after },
                    Some(code),
                    None,
                    text,
                )
            }
            Err(e) => {
                let response = if e.is_timeout() {
                    Response::Timeout
                } else {
                    Response::Error
                };
                // The URL stays out of the attempt log: a chat webhook's URL is its credential,
                // and the log is shown to read-only callers.
                (
                    response,
                    None,
                    Some(error_chain(&e.without_url())),
                    String::new(),
                )
            }
        }
    }

    /// Proposes one `RecordAttempts` and, once it is applied here, releases its deliveries.
    fn record(
        &self,
        term: u64,
        n: u64,
        batch: Vec<(Key, AttemptReport)>,
        done: mpsc::UnboundedSender<(Vec<Key>, bool)>,
    ) -> tokio::task::JoinHandle<()> {
        let node = self.node.clone();
        let policy = self.cfg.quarantine;
        let stats = self.stats.clone();
        tokio::spawn(async move {
            let (keys, reports): (Vec<Key>, Vec<AttemptReport>) = batch.into_iter().unzip();
            let key = format!("attempts:{}:{}:{term}:{n}", node.id, node.incarnation);
            let count = reports.len();
            let proposal = Proposal::internal(
                key,
                "dispatcher",
                node.id,
                Command::RecordAttempts { policy, reports },
            );
            stats.record_writes.fetch_add(1, Ordering::Relaxed);
            let recorded = match node.propose_as_leader(proposal).await {
                Ok(o) => match o.result {
                    Err(e) => {
                        tracing::error!(error = %e, "attempt records refused");
                        false
                    }
                    Ok(_) => {
                        node.replica()
                            .wait_applied(o.index, Duration::from_secs(10))
                            .await
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, reports = count, "attempt records not committed; the deliveries will be retried");
                    false
                }
            };
            let _ = done.send((keys, recorded));
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = inner.source();
    }
    s
}
