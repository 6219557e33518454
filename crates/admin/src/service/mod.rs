//! The admin gRPC service. Writes become proposals (with the caller's idempotency key) that the
//! cluster commits through the leader; the reply carries the committed index and the entity as
//! this node holds it once it has applied that index. Reads come from the local replica, or
//! after a linearizable barrier when the caller asks for it.
//!
//! This file holds the service, its write and read paths and the RPC table; the larger RPCs
//! live beside it: `forward` (membership calls on the leader), `reply` (what answers carry),
//! `audit` (`ListAudit`) and `backup` (`Backup`).

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use sha2::{Digest, Sha256};
use statusmesh_cluster::ClusterNode;
use statusmesh_model::{Command, CommandError, Id, MembershipChange, Proposal, State, Timestamp};
use statusmesh_proto::admin::admin_server::Admin;
use statusmesh_proto::admin::{self as pb, Consistency};
use statusmesh_proto::convert;
use statusmesh_store::NodeInfo;
use tonic::{Request, Response, Status};

use statusmesh_webhook::{DispatchStats, TargetPolicy};

use crate::auth::{Authenticator, Caller};
use crate::errors::{command_status, membership_status, propose_status};
use crate::request::{self, request_id};
use statusmesh_model::Role;

/// Header carrying the client's idempotency key on every write.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

#[derive(Debug, Clone)]
pub struct AdminService {
    node: Arc<ClusterNode>,
    auth: Arc<Authenticator>,
    /// How long a write may take, retries across leader changes included.
    write_timeout: Duration,
    /// Which webhook targets may be subscribed (checked before proposing).
    targets: TargetPolicy,
    /// This node's dispatcher, for `OutboxStatus`.
    dispatch: Arc<DispatchStats>,
    /// TLS for forwarding to the leader's admin port (`None`: plaintext dev mode).
    tls: Option<Arc<statusmesh_tls::ReloadingTls>>,
    /// Numbers this process's access records (`access:<incarnation>:<n>` keys).
    access_seq: Arc<std::sync::atomic::AtomicU64>,
}

mod access;
mod audit;
mod backup;
mod forward;
mod reply;

type Reply<T> = Result<Response<T>, Status>;

impl AdminService {
    pub fn new(node: Arc<ClusterNode>, auth: Authenticator, write_timeout: Duration) -> Self {
        AdminService {
            node,
            auth: Arc::new(auth),
            write_timeout,
            targets: TargetPolicy::default(),
            dispatch: Arc::new(DispatchStats::default()),
            tls: None,
            access_seq: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Forwards to other nodes' admin ports over TLS with this node's material.
    pub fn with_tls(mut self, tls: Option<Arc<statusmesh_tls::ReloadingTls>>) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the webhook target policy and the node's dispatcher counters.
    pub fn with_webhooks(mut self, targets: TargetPolicy, dispatch: Arc<DispatchStats>) -> Self {
        self.targets = targets;
        self.dispatch = dispatch;
        self
    }

    /// Authenticates the call (token or client certificate) and checks the role `rpc` needs
    /// ([`crate::rpcs`]); the first thing every RPC does.
    async fn authorize<T>(&self, req: &Request<T>, rpc: &str) -> Result<Caller, Status> {
        let need = crate::rpcs::role(rpc)
            .ok_or_else(|| Status::internal(format!("no role is defined for {rpc}")))?;
        request::check(req)?;
        // Cloned out of the replica: the lock is not held across the failure slow-down.
        let tokens = self.node.replica().read().state.tokens.clone();
        let member_node = self.member_node(req);
        self.auth.authorize(req, &tokens, need, member_node).await
    }

    /// The member node a caller's certificate proves it is: issued by the cluster CA (not
    /// merely any CA the admin port trusts) and naming a node in the current membership.
    fn member_node<T>(&self, req: &Request<T>) -> Option<u64> {
        let chain = req.peer_certs()?;
        let id = self.tls.as_ref()?.current().cluster_node(&chain)?;
        self.node.knows_member(id).unwrap_or(false).then_some(id)
    }

    /// Runs a write: authenticate and authorize, then convert the request with `command`,
    /// commit it, and answer from the replica.
    async fn write<T: Message>(
        &self,
        method: &str,
        req: &Request<T>,
        command: impl FnOnce(&T) -> Result<Command, CommandError>,
    ) -> Reply<pb::WriteReply> {
        let caller = self.authorize(req, method).await?;
        let command = command(req.get_ref());
        self.write_as(caller, method, req, command).await
    }

    /// A write by a caller already authorized for it.
    async fn write_as<T: Message>(
        &self,
        caller: Caller,
        method: &str,
        req: &Request<T>,
        command: Result<Command, CommandError>,
    ) -> Reply<pb::WriteReply> {
        let reveal_urls = caller.role >= Role::Admin;
        let actor = caller.name;
        let key = req
            .metadata()
            .get(IDEMPOTENCY_HEADER)
            .ok_or_else(|| Status::invalid_argument("missing idempotency-key header (any unique string per write; statusctl sets one)"))?
            .to_str()
            .map_err(|_| Status::invalid_argument("idempotency-key must be printable ASCII"))?
            .to_owned();
        if statusmesh_model::command::is_internal_key(&key) {
            return Err(Status::invalid_argument(format!(
                "idempotency-key {key:?} is in the namespace the nodes use for their own writes (keys starting {}); choose another",
                statusmesh_model::command::INTERNAL_KEY_PREFIXES.join(", ")
            )));
        }
        let command = command.map_err(|e| command_status(&e))?;
        let mut hasher = Sha256::new();
        hasher.update(method.as_bytes());
        hasher.update(req.get_ref().encode_to_vec());
        let proposal = Proposal {
            idempotency_key: key,
            fingerprint: hex::encode(hasher.finalize()),
            at: Timestamp::default(),
            actor,
            via_node: self.node.id,
            request_id: request_id(req),
            command,
        };
        let outcome = self
            .node
            .propose(proposal, self.write_timeout)
            .await
            .map_err(|e| propose_status(&e))?;
        let applied = outcome.result.map_err(|e| command_status(&e))?;
        // Read-your-write on this node: answer once the local replica has the write.
        if !self
            .node
            .replica()
            .wait_applied(outcome.index, self.write_timeout)
            .await
        {
            return Err(Status::unavailable(format!(
                "the write committed at index {} but this node has not applied it yet",
                outcome.index
            )));
        }
        let entity = reply::entity(&self.node.replica().read().state, applied, reveal_urls);
        Ok(Response::new(pb::WriteReply {
            index: outcome.index,
            replayed: outcome.replayed,
            entity,
        }))
    }

    /// Authenticates a read, then applies the consistency the request asks for (`consistency`
    /// reads it) before reading.
    async fn read<T, R>(
        &self,
        method: &str,
        req: &Request<T>,
        consistency: impl FnOnce(&T) -> i32,
        f: impl FnOnce(&T, &State) -> Result<R, Status>,
    ) -> Reply<R> {
        self.read_as(method, req, consistency, |_, r, s| f(r, s))
            .await
    }

    /// [`Self::read`] for answers that depend on who asks (what the caller may see).
    async fn read_as<T, R>(
        &self,
        method: &str,
        req: &Request<T>,
        consistency: impl FnOnce(&T) -> i32,
        f: impl FnOnce(&Caller, &T, &State) -> Result<R, Status>,
    ) -> Reply<R> {
        let caller = self.authorize(req, method).await?;
        if consistency(req.get_ref()) == Consistency::Linearizable as i32 {
            self.node
                .linearizable_barrier(self.write_timeout)
                .await
                .map_err(|e| propose_status(&e))?;
        }
        let data = self.node.replica().read();
        f(&caller, req.get_ref(), &data.state).map(Response::new)
    }
}

fn parse_id(s: &str) -> Result<Id, Status> {
    Id::parse("id", s).map_err(|e| command_status(&e))
}

fn not_found(kind: &str, id: &Id) -> Status {
    Status::not_found(format!("{kind} {id} not found"))
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn get_page(&self, req: Request<pb::ReadRequest>) -> Reply<pb::Page> {
        self.read(
            "GetPage",
            &req,
            |r| r.consistency,
            |_, s| Ok(convert::page(s)),
        )
        .await
    }

    async fn set_page(&self, req: Request<pb::SetPageRequest>) -> Reply<pb::WriteReply> {
        self.write("SetPage", &req, convert::set_page).await
    }

    async fn create_component(
        &self,
        req: Request<pb::CreateComponentRequest>,
    ) -> Reply<pb::WriteReply> {
        self.write("CreateComponent", &req, convert::create_component)
            .await
    }

    async fn update_component(
        &self,
        req: Request<pb::UpdateComponentRequest>,
    ) -> Reply<pb::WriteReply> {
        self.write("UpdateComponent", &req, convert::update_component)
            .await
    }

    async fn set_component_status(
        &self,
        req: Request<pb::SetComponentStatusRequest>,
    ) -> Reply<pb::WriteReply> {
        self.write("SetComponentStatus", &req, convert::set_component_status)
            .await
    }

    async fn delete_component(&self, req: Request<pb::IdRequest>) -> Reply<pb::WriteReply> {
        self.write("DeleteComponent", &req, convert::delete_component)
            .await
    }

    async fn get_component(&self, req: Request<pb::GetRequest>) -> Reply<pb::Component> {
        self.read(
            "GetComponent",
            &req,
            |r| r.consistency,
            |r, s| {
                let id = parse_id(&r.id)?;
                s.components
                    .get(&id)
                    .map(|x| convert::component(s, x))
                    .ok_or_else(|| not_found("component", &id))
            },
        )
        .await
    }

    async fn list_components(&self, req: Request<pb::ReadRequest>) -> Reply<pb::ComponentList> {
        self.read(
            "ListComponents",
            &req,
            |r| r.consistency,
            |_, s| {
                Ok(pb::ComponentList {
                    components: s
                        .components_in_order()
                        .into_iter()
                        .map(|x| convert::component(s, x))
                        .collect(),
                })
            },
        )
        .await
    }

    async fn create_incident(
        &self,
        req: Request<pb::CreateIncidentRequest>,
    ) -> Reply<pb::WriteReply> {
        self.write("CreateIncident", &req, convert::create_incident)
            .await
    }

    async fn update_incident(
        &self,
        req: Request<pb::UpdateIncidentRequest>,
    ) -> Reply<pb::WriteReply> {
        self.write("UpdateIncident", &req, convert::update_incident)
            .await
    }

    async fn resolve_incident(
        &self,
        req: Request<pb::ResolveIncidentRequest>,
    ) -> Reply<pb::WriteReply> {
        self.write("ResolveIncident", &req, convert::resolve_incident)
            .await
    }

    async fn publish_postmortem(
        &self,
        req: Request<pb::PostmortemRequest>,
    ) -> Reply<pb::WriteReply> {
        self.write("PublishPostmortem", &req, convert::publish_postmortem)
            .await
    }

    async fn get_incident(&self, req: Request<pb::GetRequest>) -> Reply<pb::Incident> {
        self.read(
            "GetIncident",
            &req,
            |r| r.consistency,
            |r, s| {
                let id = parse_id(&r.id)?;
                s.incidents
                    .get(&id)
                    .map(convert::incident)
                    .ok_or_else(|| not_found("incident", &id))
            },
        )
        .await
    }

    async fn list_incidents(
        &self,
        req: Request<pb::ListIncidentsRequest>,
    ) -> Reply<pb::IncidentList> {
        self.read(
            "ListIncidents",
            &req,
            |r| r.consistency,
            |r, s| {
                let limit = if r.limit == 0 { 50 } else { r.limit.min(1000) } as usize;
                let mut all: Vec<_> = s
                    .incidents
                    .values()
                    .filter(|i| !r.unresolved_only || i.status.is_open())
                    .collect();
                all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
                Ok(pb::IncidentList {
                    incidents: all.into_iter().take(limit).map(convert::incident).collect(),
                })
            },
        )
        .await
    }

    async fn schedule_maintenance(
        &self,
        req: Request<pb::ScheduleMaintenanceRequest>,
    ) -> Reply<pb::WriteReply> {
        self.write("ScheduleMaintenance", &req, convert::schedule_maintenance)
            .await
    }

    async fn update_maintenance(
        &self,
        req: Request<pb::UpdateMaintenanceRequest>,
    ) -> Reply<pb::WriteReply> {
        self.write("UpdateMaintenance", &req, convert::update_maintenance)
            .await
    }

    async fn cancel_maintenance(
        &self,
        req: Request<pb::CancelMaintenanceRequest>,
    ) -> Reply<pb::WriteReply> {
        self.write("CancelMaintenance", &req, convert::cancel_maintenance)
            .await
    }

    async fn get_maintenance(&self, req: Request<pb::GetRequest>) -> Reply<pb::Maintenance> {
        self.read(
            "GetMaintenance",
            &req,
            |r| r.consistency,
            |r, s| {
                let id = parse_id(&r.id)?;
                s.maintenances
                    .get(&id)
                    .map(convert::maintenance)
                    .ok_or_else(|| not_found("maintenance", &id))
            },
        )
        .await
    }

    async fn list_maintenances(&self, req: Request<pb::ReadRequest>) -> Reply<pb::MaintenanceList> {
        self.read(
            "ListMaintenances",
            &req,
            |r| r.consistency,
            |_, s| {
                let mut all: Vec<_> = s.maintenances.values().collect();
                all.sort_by(|a, b| (a.scheduled_for, &a.id).cmp(&(b.scheduled_for, &b.id)));
                Ok(pb::MaintenanceList {
                    maintenances: all.into_iter().map(convert::maintenance).collect(),
                })
            },
        )
        .await
    }

    async fn add_subscriber(
        &self,
        req: Request<pb::AddSubscriberRequest>,
    ) -> Reply<pb::WriteReply> {
        // Authorized before the (slow) target vetting, once.
        let caller = self.authorize(&req, "AddSubscriber").await?;
        statusmesh_model::limits::http_url("url", &req.get_ref().url)
            .map_err(|e| command_status(&e))?;
        // DNS is not deterministic, so the target is vetted here, before proposing; the
        // dispatcher checks again at every delivery.
        statusmesh_webhook::ssrf::vet(&req.get_ref().url, &self.targets)
            .await
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let cmd = convert::add_subscriber(req.get_ref());
        self.write_as(caller, "AddSubscriber", &req, cmd).await
    }

    async fn set_subscriber_state(
        &self,
        req: Request<pb::SetSubscriberStateRequest>,
    ) -> Reply<pb::WriteReply> {
        self.write("SetSubscriberState", &req, convert::set_subscriber_state)
            .await
    }

    async fn rotate_subscriber_secret(
        &self,
        req: Request<pb::RotateSecretRequest>,
    ) -> Reply<pb::WriteReply> {
        self.write(
            "RotateSubscriberSecret",
            &req,
            convert::rotate_subscriber_secret,
        )
        .await
    }

    async fn test_subscriber(&self, req: Request<pb::IdRequest>) -> Reply<pb::WriteReply> {
        self.write("TestSubscriber", &req, convert::test_subscriber)
            .await
    }

    async fn replay_event(&self, req: Request<pb::ReplayEventRequest>) -> Reply<pb::WriteReply> {
        self.write("ReplayEvent", &req, convert::replay_event).await
    }

    async fn list_deliveries(
        &self,
        req: Request<pb::ListDeliveriesRequest>,
    ) -> Reply<pb::DeliveryList> {
        self.read(
            "ListDeliveries",
            &req,
            |_| Consistency::Local as i32,
            |r, s| {
                let id = parse_id(&r.id)?;
                let limit = match r.limit {
                    0 => 50,
                    n => n as usize,
                };
                if !s.subscribers.contains_key(&id) {
                    return Err(not_found("subscriber", &id));
                }
                Ok(convert::deliveries(s, &id, limit))
            },
        )
        .await
    }

    async fn list_events(&self, req: Request<pb::ListEventsRequest>) -> Reply<pb::EventList> {
        self.read(
            "ListEvents",
            &req,
            |_| Consistency::Local as i32,
            |r, s| {
                let limit = match r.limit {
                    0 => 50,
                    n => n as usize,
                };
                let kind = &r.kind;
                Ok(pb::EventList {
                    events: s
                        .outbox
                        .events
                        .values()
                        .rev()
                        .filter(|e| kind.as_deref().is_none_or(|k| e.kind.as_str() == k))
                        .take(limit)
                        .map(|e| convert::event(s, e))
                        .collect(),
                })
            },
        )
        .await
    }

    async fn outbox_status(&self, req: Request<pb::ReadRequest>) -> Reply<pb::OutboxStatusReply> {
        let d = self.dispatch.clone();
        self.read(
            "OutboxStatus",
            &req,
            |r| r.consistency,
            move |_, s| {
                let st = s.outbox.stats(&s.subscribers);
                Ok(pb::OutboxStatusReply {
                    events: st.events,
                    pending: st.pending,
                    failed: st.failed,
                    delivered_total: st.delivered_total,
                    attempts_total: st.attempts_total,
                    quarantined_subscribers: st.quarantined_subscribers,
                    dispatching: d.dispatching.load(std::sync::atomic::Ordering::Relaxed),
                    in_flight: d.in_flight.load(std::sync::atomic::Ordering::Relaxed),
                    sent_total: d.sent_total.load(std::sync::atomic::Ordering::Relaxed),
                })
            },
        )
        .await
    }

    async fn remove_subscriber(&self, req: Request<pb::IdRequest>) -> Reply<pb::WriteReply> {
        self.write("RemoveSubscriber", &req, convert::remove_subscriber)
            .await
    }

    async fn get_subscriber(&self, req: Request<pb::GetRequest>) -> Reply<pb::Subscriber> {
        self.read_as(
            "GetSubscriber",
            &req,
            |r| r.consistency,
            |caller, r, s| {
                let id = parse_id(&r.id)?;
                s.subscribers
                    .get(&id)
                    .map(|x| convert::subscriber_listed(s, x, caller.role >= Role::Admin))
                    .ok_or_else(|| not_found("subscriber", &id))
            },
        )
        .await
    }

    async fn list_subscribers(&self, req: Request<pb::ReadRequest>) -> Reply<pb::SubscriberList> {
        self.read_as(
            "ListSubscribers",
            &req,
            |r| r.consistency,
            |caller, _, s| {
                Ok(pb::SubscriberList {
                    subscribers: convert::subscribers_listed(s, caller.role >= Role::Admin),
                })
            },
        )
        .await
    }

    async fn create_token(&self, req: Request<pb::CreateTokenRequest>) -> Reply<pb::WriteReply> {
        self.write("CreateToken", &req, convert::create_token).await
    }

    async fn revoke_token(&self, req: Request<pb::RevokeTokenRequest>) -> Reply<pb::WriteReply> {
        self.write("RevokeToken", &req, |r| {
            Ok(Command::RevokeToken {
                name: r.name.clone(),
            })
        })
        .await
    }

    async fn list_tokens(&self, req: Request<pb::ReadRequest>) -> Reply<pb::TokenList> {
        self.read(
            "ListTokens",
            &req,
            |r| r.consistency,
            |_, s| {
                Ok(pb::TokenList {
                    tokens: s.tokens.by_name.values().map(convert::token).collect(),
                })
            },
        )
        .await
    }

    async fn list_audit(&self, req: Request<pb::ListAuditRequest>) -> Reply<pb::AuditList> {
        self.read_as(
            "ListAudit",
            &req,
            |r| r.consistency,
            |caller, r, s| Ok(audit::Query::of(r)?.run(s, caller.role >= Role::Admin)),
        )
        .await
    }

    type BackupStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<pb::BackupChunk, Status>> + Send + 'static>,
    >;

    async fn backup(&self, req: Request<pb::ReadRequest>) -> Reply<Self::BackupStream> {
        let caller = self.authorize(&req, "Backup").await?;
        if req.get_ref().consistency == Consistency::Linearizable as i32 {
            self.node
                .linearizable_barrier(self.write_timeout)
                .await
                .map_err(|e| propose_status(&e))?;
        }
        let streamed = backup::chunks(&self.node)?;
        // Audited (a backup exports every secret), without holding the backup up: a backup
        // is also how a cluster that lost its quorum is saved, when nothing can commit.
        self.record_access(
            &caller,
            request_id(&req),
            statusmesh_model::command::Access::Backup {
                digest: streamed.digest,
                applied_index: streamed.applied_index,
            },
        );
        Ok(Response::new(Box::pin(futures::stream::iter(
            streamed.chunks,
        ))))
    }

    async fn who_am_i(&self, req: Request<pb::ReadRequest>) -> Reply<pb::Identity> {
        let caller = self.authorize(&req, "WhoAmI").await?;
        Ok(Response::new(pb::Identity {
            name: caller.name,
            role: caller.role.to_string(),
            method: caller.method.as_str().into(),
        }))
    }

    async fn cluster_status(
        &self,
        req: Request<pb::ClusterStatusRequest>,
    ) -> Reply<pb::ClusterStatusReply> {
        self.authorize(&req, "ClusterStatus").await?;
        let s = self.node.status();
        // The digest serialises the whole state: computed here, where it is asked for.
        let state_digest = self.node.replica().read().state.digest();
        Ok(Response::new(pb::ClusterStatusReply {
            node_id: s.id,
            region: s.region.clone(),
            state: s.state.into(),
            leader_id: s.leader,
            term: s.term,
            last_log_index: s.last_log_index,
            applied_index: s.applied_index,
            state_digest,
            members: reply::members_pb(&s),
            millis_since_leader_contact: s.millis_since_leader_contact,
            timing_profile: s.profile.to_string(),
            disk_bytes: s.disk_bytes,
        }))
    }

    async fn add_node(&self, req: Request<pb::AddNodeRequest>) -> Reply<pb::MembershipReply> {
        let caller = self.authorize(&req, "AddNode").await?;
        let node_id = req.get_ref().id;
        let r = req.get_ref();
        if r.id == 0
            || r.region.trim().is_empty()
            || r.peer_addr.is_empty()
            || r.admin_addr.is_empty()
        {
            return Err(Status::invalid_argument(
                "add-node needs a non-zero id, a region, a peer address and an admin address",
            ));
        }
        for (field, addr) in [("peer_addr", &r.peer_addr), ("admin_addr", &r.admin_addr)] {
            if addr.parse::<std::net::SocketAddr>().is_err() && !addr.contains(':') {
                return Err(Status::invalid_argument(format!(
                    "invalid {field}: {addr:?} is not host:port"
                )));
            }
        }
        self.on_leader(
            caller,
            req,
            (MembershipChange::AddNode, node_id),
            async |node, r| {
                let info = NodeInfo {
                    region: r.region,
                    peer_addr: r.peer_addr,
                    admin_addr: r.admin_addr,
                    public_addr: r.public_addr,
                };
                let index = node
                    .add_learner(r.id, info)
                    .await
                    .map_err(|e| membership_status(&e))?;
                Ok(Response::new(reply::membership_reply(node, index)))
            },
            async |mut c, r| c.add_node(r).await,
        )
        .await
    }

    async fn promote_node(&self, req: Request<pb::NodeIdRequest>) -> Reply<pb::MembershipReply> {
        let caller = self.authorize(&req, "PromoteNode").await?;
        let node_id = req.get_ref().id;
        self.on_leader(
            caller,
            req,
            (MembershipChange::PromoteNode, node_id),
            async |node, r| {
                let index = node
                    .promote(r.id)
                    .await
                    .map_err(|e| membership_status(&e))?;
                Ok(Response::new(reply::membership_reply(node, index)))
            },
            async |mut c, r| c.promote_node(r).await,
        )
        .await
    }

    async fn remove_node(&self, req: Request<pb::NodeIdRequest>) -> Reply<pb::MembershipReply> {
        let caller = self.authorize(&req, "RemoveNode").await?;
        let node_id = req.get_ref().id;
        self.on_leader(
            caller,
            req,
            (MembershipChange::RemoveNode, node_id),
            async |node, r| {
                let index = node.remove(r.id).await.map_err(|e| membership_status(&e))?;
                Ok(Response::new(reply::membership_reply(node, index)))
            },
            async |mut c, r| c.remove_node(r).await,
        )
        .await
    }
}
