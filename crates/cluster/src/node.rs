//! One member of the cluster: the openraft instance, its replica, and the write path.
//!
//! Write path: the node that receives a write builds a [`Proposal`] with pending ids. If it is
//! the leader it stamps the proposal (ids, secrets, time: chosen here, never in apply) and
//! proposes it; otherwise it forwards the unstamped proposal to the leader over the peer port.
//! Across a leader change the same proposal is retried until a deadline; its idempotency key
//! makes the retry safe (the state machine answers a repeated key with the original outcome).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{ChangeMembers, Raft, ServerState};
use statusmesh_model::command::Entropy;
use statusmesh_model::{Id, Outcome, Proposal, Timestamp};
use statusmesh_store::{LogStore, NodeId, NodeInfo, Replica, StateMachineStore, TypeConfig};

use crate::error::{MembershipError, ProposeError};
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

/// A member's view as reported by [`ClusterNode::status`].
#[derive(Debug, Clone)]
pub struct MemberStatus {
    pub id: NodeId,
    pub info: NodeInfo,
    pub voter: bool,
    /// The leader's last known matched index for this member (leader only).
    pub matched_index: Option<u64>,
}

/// This node's view of the cluster.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub id: NodeId,
    pub region: String,
    pub state: &'static str,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub millis_since_leader_contact: Option<u64>,
    pub members: Vec<MemberStatus>,
    pub profile: TimingProfile,
    pub disk_bytes: u64,
}

pub struct ClusterNode {
    pub id: NodeId,
    pub info: NodeInfo,
    pub profile: TimingProfile,
    pub raft: Raft<TypeConfig>,
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
    ) -> Result<Arc<Self>, String> {
        let raft_config = Arc::new(raft_config(config.profile, config.snapshot_every)?);
        let network = PeerNetwork::new(
            config.id,
            config.profile.timings().connect_timeout,
            config.peer_source_ip,
            config.tls.clone(),
        );
        let replica = sm.replica();
        let raft = Raft::new(config.id, raft_config, network.clone(), log, sm.clone())
            .await
            .map_err(|e| format!("cannot start raft: {e}"))?;
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
    pub async fn initialize(&self, members: BTreeMap<NodeId, NodeInfo>) -> Result<bool, String> {
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(false);
        }
        match self.raft.initialize(members).await {
            Ok(()) => Ok(true),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(false),
            Err(e) => Err(format!("cannot initialise the cluster: {e}")),
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
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
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

    fn check_leader(&self) -> Result<(), MembershipError> {
        if self.current_leader() == Some(self.id) {
            Ok(())
        } else {
            Err(MembershipError::NotLeader(self.id))
        }
    }

    /// Adds a node as a learner and waits until it has caught up. Leader only.
    pub async fn add_learner(&self, id: NodeId, info: NodeInfo) -> Result<u64, MembershipError> {
        let _guard = self.membership_lock.lock().await;
        self.check_leader()?;
        let existing = self.leader_info(id);
        if let Some(existing) = existing {
            if existing != info {
                return Err(MembershipError::Invalid(format!(
                    "node {id} is already a member at {}; remove it first",
                    existing.peer_addr
                )));
            }
        }
        let resp = self
            .raft
            .add_learner(id, info, true)
            .await
            .map_err(|e| MembershipError::Rejected(e.to_string()))?;
        Ok(resp.log_id.index)
    }

    /// Makes a learner a voter. Leader only.
    pub async fn promote(&self, id: NodeId) -> Result<u64, MembershipError> {
        let _guard = self.membership_lock.lock().await;
        self.check_leader()?;
        let is_learner = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let found = m
                .membership_config
                .membership()
                .learner_ids()
                .any(|l| l == id);
            found
        };
        if !is_learner {
            return Err(MembershipError::Invalid(format!(
                "node {id} is not a learner; add it first (or it is already a voter)"
            )));
        }
        let resp = self
            .raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|e| MembershipError::Rejected(e.to_string()))?;
        Ok(resp.log_id.index)
    }

    /// Removes a node (voter or learner) from the cluster. Leader only.
    pub async fn remove(&self, id: NodeId) -> Result<u64, MembershipError> {
        let _guard = self.membership_lock.lock().await;
        self.check_leader()?;
        let (is_voter, is_member, voters) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            let voters = membership.voter_ids().count();
            (
                membership.voter_ids().any(|v| v == id),
                membership.get_node(&id).is_some(),
                voters,
            )
        };
        if !is_member {
            return Err(MembershipError::Invalid(format!(
                "node {id} is not a member"
            )));
        }
        let mut index = 0;
        if is_voter {
            if voters <= 1 {
                return Err(MembershipError::Invalid(
                    "cannot remove the last voter".into(),
                ));
            }
            index = self
                .raft
                .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
                .map_err(|e| MembershipError::Rejected(e.to_string()))?
                .log_id
                .index;
        }
        // A leader removing itself steps down; the learner entry then goes via the new leader.
        if id == self.id && is_voter {
            return Ok(index);
        }
        let resp = self
            .raft
            .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
            .await
            .map_err(|e| MembershipError::Rejected(e.to_string()))?;
        Ok(resp.log_id.index)
    }

    /// This node's view of the cluster.
    pub fn status(&self) -> NodeStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, info)| MemberStatus {
                id: *id,
                info: info.clone(),
                voter: voters.contains(id),
                matched_index: metrics
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(id).copied().flatten())
                    .map(|l| l.index),
            })
            .collect();
        let state = match metrics.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let millis_since_leader_contact = self.millis_since_leader_contact();
        let applied_index = self.replica.applied_index();
        NodeStatus {
            id: self.id,
            region: self.info.region.clone(),
            state,
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            applied_index,
            millis_since_leader_contact,
            members,
            profile: self.profile,
            disk_bytes: self.sm.disk_size(),
        }
    }

    /// Milliseconds since this node last heard from a leader it accepted (on the leader: since
    /// a quorum last acknowledged it). `None` if never. Cheap: no state is read.
    pub fn millis_since_leader_contact(&self) -> Option<u64> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.state == ServerState::Leader {
            m.millis_since_quorum_ack.or(Some(0))
        } else {
            self.contact.millis_since()
        }
    }

    /// The term this node leads in, if it leads and a quorum acknowledged it within the
    /// shortest election timeout (its lease: no other leader can have been elected since).
    /// Workers that act outside the log (the webhook dispatcher) check this before acting.
    pub fn leader_lease(&self) -> Option<u64> {
        let m = self.raft.metrics();
        let m = m.borrow();
        if m.state != ServerState::Leader || m.current_leader != Some(self.id) {
            return None;
        }
        let lease = self.profile.timings().election_min.as_millis() as u64;
        let alone = m.membership_config.membership().voter_ids().eq([self.id]);
        let fresh = m
            .millis_since_quorum_ack
            .map_or(alone, |ms| ms < lease || alone);
        fresh.then_some(m.current_term)
    }

    /// Ready to serve: this node holds a replica of an initialised cluster it belongs to
    /// (`/readyz` and the gRPC health status both answer from this).
    pub fn is_member(&self) -> bool {
        let data = self.replica.read();
        data.membership.membership().get_node(&self.id).is_some()
    }

    /// Whether `id` is in the membership this node knows (voters and learners); `None` while
    /// this node knows no membership yet (a node waiting to be added trusts the cluster CA
    /// alone until the leader's first entries arrive).
    pub fn knows_member(&self, id: NodeId) -> Option<bool> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        // No membership at all yet: nothing to check against.
        membership.nodes().next()?;
        Some(membership.get_node(&id).is_some())
    }

    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.id)
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown failed");
        }
    }
}

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
