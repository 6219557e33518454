//! The admin gRPC service. Writes become proposals (with the caller's idempotency key) that the
//! cluster commits through the leader; the reply carries the committed index and the entity as
//! this node holds it once it has applied that index. Reads come from the local replica, or
//! after a linearizable barrier when the caller asks for it.
//!
//! This file holds the service and the RPC table, each RPC a line or two; beside it are the
//! write and read paths every RPC takes (`paths`), the RPCs by noun — `page` (components,
//! incidents, maintenances), `subscribers` (and their deliveries, the events and the outbox),
//! `cluster` (status and membership), `audit` (`ListAudit`), `backup` (`Backup`), `access`
//! (what is recorded about access) — and `forward` (membership calls run on the leader) and
//! `reply` (what answers carry).

use std::sync::Arc;
use std::time::Duration;

use statusmesh_cluster::ClusterNode;
use statusmesh_egress::TargetPolicy;
use statusmesh_metrics::DispatchStats;
use statusmesh_model::{Id, Role, State};
use statusmesh_proto::admin::admin_server::Admin;
use statusmesh_proto::admin::{self as pb, Consistency};
use statusmesh_proto::convert;
use tonic::{Request, Response, Status};

use crate::auth::{Authenticator, Caller};
use crate::errors::command_status;
use crate::request;

/// Header carrying the client's idempotency key on every write.
pub use statusmesh_proto::IDEMPOTENCY_HEADER;

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
mod cluster;
mod forward;
mod page;
mod paths;
mod reply;
mod subscribers;

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
        let page = |_: &_, s: &State| Ok(convert::page(s));
        self.read("GetPage", &req, |r| r.consistency, page).await
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
        self.read("GetComponent", &req, |r| r.consistency, page::component)
            .await
    }

    async fn list_components(&self, req: Request<pb::ReadRequest>) -> Reply<pb::ComponentList> {
        let list = |_: &_, s: &State| Ok(page::components(s));
        self.read("ListComponents", &req, |r| r.consistency, list)
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
        self.read("GetIncident", &req, |r| r.consistency, page::incident)
            .await
    }

    async fn list_incidents(
        &self,
        req: Request<pb::ListIncidentsRequest>,
    ) -> Reply<pb::IncidentList> {
        let list = |r: &_, s: &State| Ok(page::incidents(r, s));
        self.read("ListIncidents", &req, |r| r.consistency, list)
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
        self.read("GetMaintenance", &req, |r| r.consistency, page::maintenance)
            .await
    }

    async fn list_maintenances(&self, req: Request<pb::ReadRequest>) -> Reply<pb::MaintenanceList> {
        let list = |_: &_, s: &State| Ok(page::maintenances(s));
        self.read("ListMaintenances", &req, |r| r.consistency, list)
            .await
    }

    async fn add_subscriber(
        &self,
        req: Request<pb::AddSubscriberRequest>,
    ) -> Reply<pb::WriteReply> {
        self.add_vetted_subscriber(req).await
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
        let local = |_: &_| Consistency::Local as i32;
        self.read("ListDeliveries", &req, local, subscribers::deliveries)
            .await
    }

    async fn list_events(&self, req: Request<pb::ListEventsRequest>) -> Reply<pb::EventList> {
        let local = |_: &_| Consistency::Local as i32;
        let list = |r: &_, s: &State| Ok(subscribers::events(r, s));
        self.read("ListEvents", &req, local, list).await
    }

    async fn outbox_status(&self, req: Request<pb::ReadRequest>) -> Reply<pb::OutboxStatusReply> {
        let status = |_: &_, s: &State| Ok(subscribers::outbox_status(s, &self.dispatch));
        self.read("OutboxStatus", &req, |r| r.consistency, status)
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
            subscribers::subscriber,
        )
        .await
    }

    async fn list_subscribers(
        &self,
        req: Request<pb::ListSubscribersRequest>,
    ) -> Reply<pb::SubscriberList> {
        self.read_as(
            "ListSubscribers",
            &req,
            |r| r.consistency,
            subscribers::subscribers,
        )
        .await
    }

    async fn import_subscribers(
        &self,
        req: Request<tonic::Streaming<pb::ImportSubscriberRow>>,
    ) -> Reply<pb::ImportSubscribersReply> {
        self.import_vetted_subscribers(req).await
    }

    async fn create_token(&self, req: Request<pb::CreateTokenRequest>) -> Reply<pb::WriteReply> {
        self.write("CreateToken", &req, convert::create_token).await
    }

    async fn revoke_token(&self, req: Request<pb::RevokeTokenRequest>) -> Reply<pb::WriteReply> {
        self.write("RevokeToken", &req, convert::revoke_token).await
    }

    async fn list_tokens(&self, req: Request<pb::ReadRequest>) -> Reply<pb::TokenList> {
        let list = |_: &_, s: &State| Ok(convert::tokens(s));
        self.read("ListTokens", &req, |r| r.consistency, list).await
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

    type BackupStream = backup::BackupStream;

    async fn backup(&self, req: Request<pb::ReadRequest>) -> Reply<Self::BackupStream> {
        self.stream_backup(req).await
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
        Ok(Response::new(self.cluster_view().await?))
    }

    async fn add_node(&self, req: Request<pb::AddNodeRequest>) -> Reply<pb::MembershipReply> {
        self.add_member(req).await
    }

    async fn promote_node(&self, req: Request<pb::NodeIdRequest>) -> Reply<pb::MembershipReply> {
        self.promote_member(req).await
    }

    async fn remove_node(&self, req: Request<pb::NodeIdRequest>) -> Reply<pb::MembershipReply> {
        self.remove_member(req).await
    }
}
