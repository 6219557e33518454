//! One member of the cluster: the openraft instance, its replica, and the write path.
//!
//! Write path: the node that receives a write builds a [`Proposal`] with pending ids. If it is
//! the leader it stamps the proposal (ids, secrets, time: chosen here, never in apply) and
//! proposes it; otherwise it forwards the unstamped proposal to the leader over the peer port.
//! Across a leader change the same proposal is retried until a deadline; its idempotency key
//! makes the retry safe (the state machine answers a repeated key with the original outcome).

mod membership;
mod status;

pub use status::{MemberStatus, NodeStatus, RoleChanges};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::Raft;
use statusmesh_model::command::Entropy;
use statusmesh_model::{Id, Outcome, Proposal, Timestamp};
use statusmesh_store::{LogStore, NodeId, NodeInfo, Replica, StateMachineStore, TypeConfig};

use crate::error::{ProposeError, StartError};
use crate::network::{PeerMethod, PeerNetwork};
use crate::profile::{raft_config, TimingProfile};

/// What a node needs to know about itself.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    pub info: NodeInfo,
    pub profile: TimingProfile,
    /// Build a snapshot (and purge the log behind it) every this many applied entries.
    pub snapshot_every: u64,
    /// Source address for connections to peers (multi-homed hosts; the fault-injection tests
    /// give each node its own so a proxy can tell senders apart). `None`: the OS chooses.
    pub peer_source_ip: Option<std::net::IpAddr>,
    /// Mutual TLS for peer traffic; `None` only in explicit insecure dev mode.
    pub tls: Option<Arc<statusmesh_tls::ReloadingTls>>,
    /// How far ahead of the state's time a stamp may run without the voters confirming this
    /// node's clock ([`crate::clock`]).
    pub max_clock_jump: Duration,
}

/// The leader's source of ids and secrets.
struct Rng;

impl Entropy for Rng {
    fn id(&mut self) -> Id {
        Id::from_random(rand::random())
    }
    fn secret(&mut self) -> String {
        let bytes: [u8; 24] = rand::random();
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }
}

pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(ms.saturating_add(clock_fault_offset_ms()))
}

/// Environment variable that shifts this process's wall clock by that many milliseconds
/// (positive: ahead), for fault drills and tests of [`crate::clock`]. Unset in production.
pub const CLOCK_OFFSET_ENV: &str = "STATUSMESH_FAULT_CLOCK_OFFSET_MS";

/// The offset of [`CLOCK_OFFSET_ENV`], read once.
pub fn clock_fault_offset_ms() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var(CLOCK_OFFSET_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

/// When this node last heard from a leader that it accepted (milliseconds since start, +1;
/// 0 means never).
#[derive(Debug)]
pub(crate) struct LeaderContact {
    started: Instant,
    last: AtomicU64,
}

impl LeaderContact {
    fn new() -> Self {
        LeaderContact {
            started: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    pub(crate) fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64 + 1;
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Milliseconds since the last accepted leader message; `None` if never.
    pub(crate) fn millis_since(&self) -> Option<u64> {
        match self.last.load(Ordering::Relaxed) {
            0 => None,
            at => Some((self.started.elapsed().as_millis() as u64 + 1).saturating_sub(at)),
        }
    }
}

pub struct ClusterNode {
    pub id: NodeId,
    pub info: NodeInfo,
    pub profile: TimingProfile,
    pub(crate) raft: Raft<TypeConfig>,
    replica: Arc<Replica>,
    sm: StateMachineStore,
    network: PeerNetwork,
    /// Peer TLS: when set, every peer request must come with a certificate naming its sender.
    pub(crate) tls: Option<Arc<statusmesh_tls::ReloadingTls>>,
    pub(crate) contact: LeaderContact,
    /// Proposal latency and failures, for /metrics.
    pub metrics: Arc<crate::metrics::NodeMetrics>,
    /// Membership changes run one at a time.
    membership_lock: tokio::sync::Mutex<()>,
    /// Bounds the times this node stamps as leader.
    pub clock: crate::clock::StampClock,
    /// Random per process: part of the idempotency keys of the node's own writes that are
    /// built from terms or indexes (see `statusmesh_model::command::INTERNAL_KEY_PREFIXES`).
    pub incarnation: String,
    /// One quorum clock check at a time (the others wait and re-check).
    clock_check: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("id", &self.id)
            .field("info", &self.info)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl ClusterNode {
    pub async fn start(
        config: NodeConfig,
        log: LogStore,
        sm: StateMachineStore,
    ) -> Result<Arc<Self>, StartError> {
        let raft_config = Arc::new(raft_config(config.profile, config.snapshot_every)?);
        let network = PeerNetwork::new(
            config.id,
            config.profile.timings().connect_timeout,
            config.peer_source_ip,
            config.tls.clone(),
        );
        let replica = sm.replica();
        let raft = Raft::new(config.id, raft_config, network.clone(), log, sm.clone()).await?;
        let node = Arc::new(ClusterNode {
            id: config.id,
            info: config.info,
            profile: config.profile,
            raft,
            replica,
            sm,
            network,
            tls: config.tls,
            contact: LeaderContact::new(),
            metrics: Arc::new(crate::metrics::NodeMetrics::default()),
            membership_lock: tokio::sync::Mutex::new(()),
            clock: crate::clock::StampClock::new(config.max_clock_jump),
            incarnation: format!("{:016x}", rand::random::<u64>()),
            clock_check: tokio::sync::Mutex::new(()),
        });
        // Ends when Raft shuts down (its metrics channel closes).
        let (metrics, raft_metrics) = (node.metrics.clone(), node.raft.metrics());
        tokio::spawn(async move { metrics.follow(raft_metrics).await });
        Ok(node)
    }

    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    /// Snapshot counts and durations, for /metrics.
    pub fn snapshot_metrics(&self) -> Arc<statusmesh_store::SnapshotMetrics> {
        self.sm.snapshot_metrics()
    }

    /// Initialises the cluster with `members` if this node has never been part of one. Safe to
    /// call on every start and on every initial member (they all pass the same set): a node
    /// that already has state answers "already initialised" and nothing happens.
    pub async fn initialize(
        &self,
        members: BTreeMap<NodeId, NodeInfo>,
    ) -> Result<bool, StartError> {
        if self.raft.is_initialized().await? {
            return Ok(false);
        }
        match self.raft.initialize(members).await {
            Ok(()) => Ok(true),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(false),
            Err(e) => Err(StartError::Initialize(e)),
        }
    }

    fn current_leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    fn leader_info(&self, leader: NodeId) -> Option<NodeInfo> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.membership_config.membership().get_node(&leader).cloned()
    }

    /// Commits `proposal` through the leader, forwarding and retrying across leader changes
    /// until `deadline` has passed. The outcome is the state machine's answer.
    pub async fn propose(
        &self,
        proposal: Proposal,
        deadline: Duration,
    ) -> Result<Outcome, ProposeError> {
        let started = Instant::now();
        let result = match check_entry_size(&proposal) {
            Ok(()) => self.propose_until(proposal, deadline, started).await,
            Err(e) => Err(e),
        };
        self.metrics.proposal_seconds.observe(started.elapsed());
        if result.is_err() {
            self.metrics
                .proposal_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    async fn propose_until(
        &self,
        proposal: Proposal,
        deadline: Duration,
        started: Instant,
    ) -> Result<Outcome, ProposeError> {
        let mut backoff = Duration::from_millis(50);
        loop {
            let target = self.current_leader();
            let attempt = match target {
                Some(leader) if leader != self.id => self.forward(leader, &proposal).await,
                _ => self.propose_as_leader(proposal.clone()).await,
            };
            match attempt {
                Ok(outcome) => return Ok(outcome),
                Err(
                    e @ (ProposeError::Invalid(_)
                    | ProposeError::Fatal(_)
                    | ProposeError::TooLarge { .. }),
                ) => return Err(e),
                Err(e) => {
                    if started.elapsed() >= deadline {
                        tracing::warn!(error = %e, key = %proposal.idempotency_key, "write not committed before the deadline");
                        return Err(ProposeError::NoQuorum(deadline.as_millis() as u64));
                    }
                    tracing::debug!(error = %e, ?target, "write attempt failed; retrying");
                    let left = deadline.saturating_sub(started.elapsed());
                    self.wait_for_leader_change(target, backoff.min(left)).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    /// Sleeps up to `limit`, waking early when this node learns of a leader other than
    /// `previous` (so a retry goes to the new leader as soon as it is elected).
    async fn wait_for_leader_change(&self, previous: Option<NodeId>, limit: Duration) {
        let mut metrics = self.raft.metrics();
        let changed =
            metrics.wait_for(|m| m.current_leader.is_some() && m.current_leader != previous);
        let _ = tokio::time::timeout(limit, changed).await;
    }

    /// Stamps and proposes on this node, which must be the leader.
    /// Proposes on this node only, without forwarding: fails unless this node leads. Used by
    /// the leader's own workers (maintenance scheduler, webhook dispatcher).
    pub async fn propose_as_leader(&self, mut proposal: Proposal) -> Result<Outcome, ProposeError> {
        proposal.command.stamp(&mut Rng);
        proposal.at = self.cluster_now().await;
        check_entry_size(&proposal)?;
        let attempt = self.profile.timings().propose_attempt;
        match tokio::time::timeout(attempt, self.raft.client_write(proposal)).await {
            Err(_) => Err(ProposeError::NoQuorum(attempt.as_millis() as u64)),
            Ok(Ok(resp)) => resp
                .data
                .outcome
                .ok_or_else(|| ProposeError::Fatal("a proposal produced no outcome".into())),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(ProposeError::NotLeader {
                    leader: f.leader_id,
                })
            }
            Ok(Err(RaftError::APIError(e))) => Err(ProposeError::Invalid(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(ProposeError::Fatal(e.to_string())),
        }
    }

    /// The time this node may act on as leader (stamp on a proposal, start a maintenance by):
    /// its wall clock, bounded by [`crate::clock`].
    pub async fn cluster_now(&self) -> Timestamp {
        use crate::clock::Check;
        let state_clock = || self.replica.read().state.clock;
        if let Check::Within(t) = self.clock.check(now(), state_clock()) {
            self.clock.observe(t);
            return t;
        }
        let _one_at_a_time = self.clock_check.lock().await;
        // Another proposal may have settled the question while this one waited.
        let (wall, base) = match self.clock.check(now(), state_clock()) {
            Check::Within(t) => {
                self.clock.observe(t);
                return t;
            }
            Check::Beyond { wall, base } => (wall, base),
        };
        let (others, voters) = self.voter_clocks().await;
        self.clock.settle(wall, base, &others, voters)
    }

    /// The other voters' wall clocks (those that answer within a heartbeat-scale deadline),
    /// and the number of voters.
    async fn voter_clocks(&self) -> (Vec<Timestamp>, usize) {
        let peers: Vec<(NodeId, String)> = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            membership
                .voter_ids()
                .filter(|id| *id != self.id)
                .filter_map(|id| membership.get_node(&id).map(|n| (id, n.peer_addr.clone())))
                .collect()
        };
        let voters = peers.len() + 1;
        let timeout = self.profile.timings().propose_attempt / 4;
        let asks = peers.iter().map(|(id, addr)| {
            self.network
                .call::<(), Timestamp>(PeerMethod::Clock, *id, addr, &(), timeout)
        });
        let answers = futures::future::join_all(asks).await;
        (answers.into_iter().filter_map(Result::ok).collect(), voters)
    }

    async fn forward(&self, leader: NodeId, proposal: &Proposal) -> Result<Outcome, ProposeError> {
        let Some(info) = self.leader_info(leader) else {
            return Err(ProposeError::NotLeader { leader: None });
        };
        let timeout = self.profile.timings().propose_attempt + Duration::from_millis(500);
        let reply: Result<Outcome, ProposeError> = self
            .network
            .call(
                PeerMethod::Propose,
                leader,
                &info.peer_addr,
                proposal,
                timeout,
            )
            .await
            .map_err(|e| {
                tracing::debug!(leader, error = %e, "forwarding to the leader failed");
                ProposeError::NotLeader { leader: None }
            })?;
        reply
    }

    /// Waits until this node's replica reflects every write committed before the call: on the
    /// leader after confirming leadership with a quorum, on a follower after asking the leader
    /// for its read index. Returns the index the replica reached.
    pub async fn linearizable_barrier(&self, deadline: Duration) -> Result<u64, ProposeError> {
        let started = Instant::now();
        let mut retry = crate::worker::Backoff::new(BARRIER_RETRY, BARRIER_RETRY_MAX);
        let index = loop {
            let attempt = match self.current_leader() {
                Some(leader) if leader != self.id => match self.leader_info(leader) {
                    Some(info) => self
                        .network
                        .call::<(), Result<u64, ProposeError>>(
                            PeerMethod::ReadIndex,
                            leader,
                            &info.peer_addr,
                            &(),
                            deadline,
                        )
                        .await
                        .unwrap_or(Err(ProposeError::NotLeader { leader: None })),
                    None => Err(ProposeError::NotLeader { leader: None }),
                },
                _ => self.read_index_as_leader(deadline).await,
            };
            match attempt {
                Ok(index) => break index,
                Err(e) if started.elapsed() >= deadline => {
                    tracing::debug!(error = %e, "linearizable read failed");
                    return Err(ProposeError::NoQuorum(deadline.as_millis() as u64));
                }
                Err(_) => retry.wait().await,
            }
        };
        let left = deadline.saturating_sub(started.elapsed());
        if self.replica.wait_applied(index, left).await {
            Ok(index)
        } else {
            Err(ProposeError::NoQuorum(deadline.as_millis() as u64))
        }
    }

    pub(crate) async fn read_index_as_leader(
        &self,
        deadline: Duration,
    ) -> Result<u64, ProposeError> {
        match tokio::time::timeout(deadline, self.raft.ensure_linearizable()).await {
            Err(_) => Err(ProposeError::NoQuorum(deadline.as_millis() as u64)),
            Ok(Ok(log_id)) => Ok(log_id.map_or(0, |l| l.index)),
            Ok(Err(RaftError::APIError(_))) => Err(ProposeError::NotLeader {
                leader: self.current_leader(),
            }),
            Ok(Err(RaftError::Fatal(e))) => Err(ProposeError::Fatal(e.to_string())),
        }
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown failed");
        }
    }
}

/// A linearizable read whose leader could not confirm it retries after this, doubling up to
/// the max (a leader change usually settles within a few heartbeats).
const BARRIER_RETRY: Duration = Duration::from_millis(50);
const BARRIER_RETRY_MAX: Duration = Duration::from_millis(400);

/// Refuses a proposal whose entry would be larger than one log entry may hold: every entry
/// must fit an AppendEntries batch within the peer transport's limits (see
/// [`crate::profile::MAX_PAYLOAD_ENTRIES`]).
fn check_entry_size(proposal: &Proposal) -> Result<(), ProposeError> {
    let limit = statusmesh_model::limits::MAX_ENTRY_BYTES;
    let bytes = serde_json::to_vec(proposal).map_or(usize::MAX, |v| v.len());
    if bytes > limit {
        return Err(ProposeError::TooLarge { bytes, limit });
    }
    Ok(())
}
