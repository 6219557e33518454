//! The leader's dispatcher: sends the outbox's due deliveries and reports the attempts back
//! through the log.
//!
//! Invariants:
//! - Only a leader inside its lease sends (`ClusterNode::leader_lease`), and a dispatcher works
//!   for one term: when the term changes it stops starting requests and drops its pending
//!   reports. The next leader starts from the replicated outbox, so a request that was in
//!   flight is sent again with the same `webhook-id` (at-least-once).
//! - A delivery is not started twice by one dispatcher: it stays in flight from the moment
//!   its request starts until the `RecordAttempts` carrying its report has been applied.
//! - Order, bounds and fairness are the ready queue's (`crate::ready`): commit order within a
//!   subscriber, `per_endpoint` and `max_in_flight`, one subscriber's backlog never starving
//!   the others.
//! - A fan-out is walked over the subscribers (`crate::fanout`); its settled stretches travel
//!   in the same `RecordAttempts` as the explicit deliveries' reports. A stretch not recorded
//!   is walked again from the committed cursor (at-least-once, same `webhook-id`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use statusmesh_cluster::worker::{self, Backoff};
use statusmesh_cluster::{now, ClusterNode};
use statusmesh_metrics::DispatchStats;
use statusmesh_model::command::Command;
use statusmesh_model::outbox::{AttemptOutcome, AttemptReport, FanoutProgress};
use statusmesh_model::{Proposal, Timestamp};
use tokio::sync::{mpsc, watch};

use crate::email::{MailContent, Mailer, Recipient, Relayed};
use crate::policy::{parse_retry_after, Response, WebhookConfig};
use crate::ready::{Body, DeliveryKey, Job, Limits, Queue};
use crate::signature::signature_header;
use crate::ssrf::VettingResolver;

/// While not leading, how often the dispatcher re-checks (role changes wake it sooner).
const IDLE_RECHECK: Duration = Duration::from_millis(100);
const IDLE_RECHECK_MAX: Duration = Duration::from_secs(1);
/// While leading with a lapsed lease, how often it re-checks the lease (a heartbeat renews it).
const LEASE_RECHECK: Duration = Duration::from_millis(20);
const LEASE_RECHECK_MAX: Duration = Duration::from_millis(160);

/// The most report bytes in one `RecordAttempts`: one log entry's limit, less room for the
/// proposal's envelope.
const REPORT_BATCH_BYTES: usize = statusmesh_model::limits::MAX_ENTRY_BYTES - 4 * 1024;

/// What one term's dispatcher keeps between wake-ups: the ready queue, and the reports
/// gathered for the next `RecordAttempts`.
#[derive(Default)]
struct Work {
    queue: Queue,
    batch: Vec<(DeliveryKey, AttemptReport)>,
    /// What `batch` adds to its `RecordAttempts` entry, encoded.
    batch_bytes: usize,
    batch_deadline: Option<tokio::time::Instant>,
    batches: u64,
    /// Fan-out recipients settled since the last flush: there may be a stretch to report.
    walked: bool,
    /// The batch delay ran out: flush what there is.
    flush_due: bool,
}

/// What one `RecordAttempts` carried, handed back once it is applied (or failed).
struct Recorded {
    keys: Vec<DeliveryKey>,
    events: Vec<u64>,
    recorded: bool,
}

/// A finished request: its delivery, whether it was a fan-out recipient, its report.
type Finished = (DeliveryKey, bool, AttemptReport);

/// What one request came back with.
struct Sent {
    response: Response,
    http_status: Option<u16>,
    error: Option<String>,
    /// The start of the answer's body.
    excerpt: String,
}

impl Sent {
    /// No request was made, or it got no answer.
    fn failed(response: Response, error: String) -> Self {
        Sent {
            response,
            http_status: None,
            error: Some(error),
            excerpt: String::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Dispatcher {
    node: Arc<ClusterNode>,
    cfg: Arc<WebhookConfig>,
    client: reqwest::Client,
    /// The SMTP relay for email subscribers; without one their deliveries fail and are
    /// retried on the schedule (a node with a relay that leads later delivers them).
    mailer: Option<Mailer>,
    stats: Arc<DispatchStats>,
}

/// The webhook HTTP client could not be built (its TLS backend failed to initialise).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {0}")]
pub struct ClientBuildError(#[from] reqwest::Error);

/// Builds the HTTP client every delivery goes through: no redirects, no proxies, a request
/// timeout, and a resolver that only returns vetted addresses.
pub fn http_client(cfg: &WebhookConfig) -> Result<reqwest::Client, ClientBuildError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
        .dns_resolver(VettingResolver::shared(cfg.targets))
        .user_agent(concat!("statusmesh-webhooks/", env!("CARGO_PKG_VERSION")))
        // Only the start of an answer is kept, as sent: no content negotiation, no decoder.
        .no_gzip()
        .no_brotli()
        // Enough idle connections for every request in flight to reuse one.
        .pool_max_idle_per_host(cfg.max_in_flight)
        .build()
        .map_err(ClientBuildError)
}

impl Dispatcher {
    pub fn new(node: Arc<ClusterNode>, cfg: WebhookConfig) -> Result<Self, ClientBuildError> {
        Ok(Dispatcher {
            client: http_client(&cfg)?,
            mailer: None,
            node,
            cfg: Arc::new(cfg),
            stats: Arc::new(DispatchStats::default()),
        })
    }

    /// Sends email subscribers' deliveries through `mailer`.
    pub fn with_mailer(mut self, mailer: Mailer) -> Self {
        self.mailer = Some(mailer);
        self
    }

    pub fn stats(&self) -> Arc<DispatchStats> {
        self.stats.clone()
    }

    /// Runs until `shutdown` turns true, in the `webhook_dispatcher` worker span: waits to
    /// lead, then dispatches for that term.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        worker::run("webhook_dispatcher", |span| {
            self.serve_terms(shutdown, span)
        })
        .await;
    }

    async fn serve_terms(self, mut shutdown: watch::Receiver<bool>, span: worker::WorkerSpan) {
        let mut roles = self.node.role_changes();
        // Role changes wake it; this only bounds the wait if one is missed.
        let mut idle = Backoff::new(IDLE_RECHECK, IDLE_RECHECK_MAX);
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Some(term) = self.node.leader_lease() {
                tracing::info!(term, "webhook dispatcher starts (this node leads)");
                worker::set_state(&span, "dispatching");
                self.stats.dispatching.store(true, Ordering::Relaxed);
                self.lead(term, &mut shutdown, &span).await;
                self.stats.dispatching.store(false, Ordering::Relaxed);
                self.stats.in_flight.store(0, Ordering::Relaxed);
                tracing::info!(term, "webhook dispatcher stops");
                idle.reset();
                continue;
            }
            worker::set_state(&span, "waiting to lead");
            tokio::select! {
                _ = roles.changed() => {}
                _ = idle.wait() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Dispatches while this node leads in `term`.
    async fn lead(
        &self,
        term: u64,
        shutdown: &mut watch::Receiver<bool>,
        span: &worker::WorkerSpan,
    ) {
        let replica = self.node.replica().clone();
        let mut applied = replica.subscribe();
        let (report_tx, mut report_rx) = mpsc::unbounded_channel::<Finished>();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Recorded>();
        let mut w = Work::default();
        let mut rescan = true;
        // While the lease has lapsed: how long to wait before checking it again.
        let mut paused: Option<Backoff> = None;
        loop {
            match self.node.leader_lease() {
                Some(t) if t == term => {
                    if paused.is_some() {
                        worker::set_state(span, "dispatching");
                        paused = None;
                    }
                }
                // Still leader of this term but the lease lapsed: pause, do not start anything.
                None if self.node.is_leader() && self.node.current_term() == term => {
                    worker::set_state(span, "paused: lease lapsed");
                    paused
                        .get_or_insert_with(|| Backoff::new(LEASE_RECHECK, LEASE_RECHECK_MAX))
                        .wait()
                        .await;
                    continue;
                }
                _ => return,
            }
            if rescan || w.queue.wants_refill() {
                let data = self.node.replica().read();
                w.queue.refill(&data.state, now(), self.limits());
                rescan = false;
                // A walk that reached the end, or moved past recipients no longer owed, has
                // a stretch to report even without a new result.
                w.walked |= w.queue.has_progress();
            }
            for job in w.queue.take_startable(self.limits()) {
                self.spawn_attempt(term, job, report_tx.clone());
            }
            self.stats
                .in_flight
                .store(w.queue.in_flight() as u64, Ordering::Relaxed);
            let wake = w
                .queue
                .next_due()
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
                    for (key, walk, report) in got {
                        // Cut to what the attempt log keeps before sizing: a batch's entry
                        // stays under the log's entry limit whatever the receivers answer.
                        let report = report.bounded();
                        if walk {
                            w.queue.walk_finished(&key, report);
                            w.walked = true;
                            rescan = true;
                            continue;
                        }
                        w.queue.finished(&key);
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
                Some(done) = done_rx.recv() => {
                    w.queue.release(done.keys);
                    w.queue.reported(done.events, done.recorded);
                    // Unrecorded attempts are still pending in the outbox: pick them up again;
                    // a recorded stretch may let the walk report the next.
                    w.walked = true;
                    rescan |= !done.recorded;
                }
                _ = async { tokio::time::sleep_until(flush_at.unwrap_or_else(tokio::time::Instant::now)).await }, if flush_at.is_some() => {
                    w.batch_deadline = None;
                    w.flush_due = true;
                }
                _ = tokio::time::sleep(wake) => rescan = true,
                _ = shutdown.changed() => {
                    // Hand over cleanly: record the attempts already made, so the next leader
                    // does not send them again.
                    let progress = w.queue.take_progress(REPORT_BATCH_BYTES.saturating_sub(w.batch_bytes));
                    if !w.batch.is_empty() || !progress.is_empty() {
                        w.batches += 1;
                        let last = self.record(term, w.batches, std::mem::take(&mut w.batch), progress, done_tx.clone());
                        let _ = tokio::time::timeout(Duration::from_secs(3), last).await;
                    }
                    return;
                }
            }
            // Fan-out results wait for the batch delay too (the flush takes the stretches).
            if w.walked && w.batch_deadline.is_none() && w.batch.is_empty() && !w.flush_due {
                w.batch_deadline = Some(tokio::time::Instant::now() + self.cfg.batch_delay);
            }
            let full = w.batch.len() >= self.cfg.batch_max;
            let due = w.batch_deadline.is_none() && (!w.batch.is_empty() || w.flush_due);
            if full || due {
                self.flush(term, &mut w, &done_tx);
            }
        }
    }

    /// Proposes the batch gathered so far (without waiting for it) and starts a new one.
    fn flush(&self, term: u64, w: &mut Work, done: &mpsc::UnboundedSender<Recorded>) {
        w.batch_deadline = None;
        w.walked = false;
        w.flush_due = false;
        let progress = w
            .queue
            .take_progress(REPORT_BATCH_BYTES.saturating_sub(w.batch_bytes));
        w.batch_bytes = 0;
        if w.batch.is_empty() && progress.is_empty() {
            return;
        }
        w.batches += 1;
        let taken = std::mem::take(&mut w.batch);
        drop(self.record(term, w.batches, taken, progress, done.clone()));
    }

    fn limits(&self) -> Limits {
        Limits {
            max_in_flight: self.cfg.max_in_flight,
            per_endpoint: self.cfg.per_endpoint,
        }
    }

    fn spawn_attempt(&self, term: u64, job: Job, tx: mpsc::UnboundedSender<Finished>) {
        let this = self.clone();
        tokio::spawn(async move {
            // Fencing: a node that lost its lease since the job was chosen does not send.
            if this.node.leader_lease() != Some(term) {
                return;
            }
            this.stats.sent_total.fetch_add(1, Ordering::Relaxed);
            let key = job.key.clone();
            let walk = job.walk;
            let report = this.attempt(job).await;
            let _ = tx.send((key, walk, report));
        });
    }

    /// Makes one signed request and turns its result into a report.
    async fn attempt(&self, job: Job) -> AttemptReport {
        let started = Instant::now();
        let at = now();
        let sent = self.send(&job, at).await;
        let ended = now();
        let took = started.elapsed();
        let outcome = self.cfg.outcome(job.attempt, &sent.response, ended);
        self.stats.attempt_seconds.observe(took);
        if outcome == AttemptOutcome::Delivered {
            let lag_ms = u64::try_from(ended.0.saturating_sub(job.event_at.0)).unwrap_or(0);
            self.stats
                .delivery_lag_seconds
                .observe(Duration::from_millis(lag_ms));
        }
        AttemptReport {
            event: job.key.event,
            subscriber: job.key.subscriber,
            attempt: job.attempt,
            at,
            duration_ms: took.as_millis().min(u32::MAX as u128) as u32,
            http_status: sent.http_status,
            error: sent.error,
            response_excerpt: sent.excerpt,
            outcome,
        }
    }

    async fn send(&self, job: &Job, at: Timestamp) -> Sent {
        match &job.body {
            Body::Http(body) => self.post(job, body, at).await,
            Body::Mail(content, to) => self.mail(job, content, to).await,
        }
    }

    /// Hands one message to the relay.
    async fn mail(&self, job: &Job, content: &MailContent, to: &Recipient) -> Sent {
        let Some(mailer) = &self.mailer else {
            return Sent::failed(
                Response::Error,
                "this node has no [email] relay configured".into(),
            );
        };
        match mailer.send(content, to, &job.webhook_id).await {
            Relayed::Accepted => Sent {
                response: Response::Accepted,
                http_status: None,
                error: None,
                excerpt: String::new(),
            },
            Relayed::Bounced { reply } => Sent {
                response: Response::Refused,
                http_status: None,
                error: Some("the relay refused the recipient".into()),
                excerpt: reply,
            },
            Relayed::Failed { code, error } => Sent {
                response: Response::Error,
                http_status: None,
                excerpt: code.map(|c| c.to_string()).unwrap_or_default(),
                error: Some(error),
            },
        }
    }

    async fn post(&self, job: &Job, body: &bytes::Bytes, at: Timestamp) -> Sent {
        // The vetted URL is the one requested: parsed once.
        let url = match statusmesh_egress::check_url(&job.url, &self.cfg.targets) {
            Ok(url) => url,
            Err(e) => return Sent::failed(Response::Error, e.to_string()),
        };
        let ts = at.0.div_euclid(1000);
        let secrets: Vec<&str> = job.secrets.iter().map(String::as_str).collect();
        let signature = match signature_header(&secrets, &job.webhook_id, ts, body) {
            Ok(s) => s,
            Err(e) => return Sent::failed(Response::Error, e.to_string()),
        };
        let result = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &job.webhook_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body.clone())
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
                Sent {
                    response: Response::Status { code, retry_after },
                    http_status: Some(code),
                    error: None,
                    excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
                }
            }
            Err(e) => {
                let response = if e.is_timeout() {
                    Response::Timeout
                } else {
                    Response::Error
                };
                // The URL stays out of the attempt log: a chat webhook's URL is its credential,
                // and the log is shown to read-only callers.
                Sent::failed(response, error_chain(&e.without_url()))
            }
        }
    }

    /// Proposes one `RecordAttempts` and, once it is applied here, releases its deliveries.
    fn record(
        &self,
        term: u64,
        n: u64,
        batch: Vec<(DeliveryKey, AttemptReport)>,
        progress: Vec<FanoutProgress>,
        done: mpsc::UnboundedSender<Recorded>,
    ) -> tokio::task::JoinHandle<()> {
        let node = self.node.clone();
        let policy = self.cfg.quarantine;
        let stats = self.stats.clone();
        tokio::spawn(async move {
            let (keys, reports): (Vec<DeliveryKey>, Vec<AttemptReport>) = batch.into_iter().unzip();
            let events: Vec<u64> = progress.iter().map(|p| p.event).collect();
            let key = format!("attempts:{}:{}:{term}:{n}", node.id, node.incarnation);
            let count = reports.len() + progress.len();
            let proposal = Proposal::internal(
                key,
                "dispatcher",
                node.id,
                Command::RecordAttempts {
                    policy,
                    reports,
                    progress,
                },
            );
            stats.record_writes.fetch_add(1, Ordering::Relaxed);
            let bytes = serde_json::to_vec(&proposal.command).map_or(0, |v| v.len());
            stats
                .record_bytes
                .fetch_add(bytes as u64, Ordering::Relaxed);
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
            let _ = done.send(Recorded {
                keys,
                events,
                recorded,
            });
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
