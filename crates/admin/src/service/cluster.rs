//! The cluster RPCs: this node's view (`ClusterStatus`) and membership changes, which run on
//! the leader (`forward`), after the request is checked here.

use statusmesh_model::MembershipChange;
use statusmesh_proto::admin as pb;
use statusmesh_store::NodeInfo;
use tonic::{Request, Response, Status};

use super::{reply, AdminService, Reply};
use crate::errors::membership_status;

impl AdminService {
    pub(super) async fn cluster_view(&self) -> Result<pb::ClusterStatusReply, Status> {
        let s = self.node.status();
        // The digest serialises the whole state (seconds at a million subscribers): computed
        // where it is asked for, on a copy taken under the replica's lock (the subscribers are
        // shared, not copied) and hashed off it, so applies never wait for it.
        let state = self.node.replica().read().state.clone();
        let state_digest = tokio::task::spawn_blocking(move || state.digest())
            .await
            .map_err(|e| Status::internal(format!("computing the state digest failed: {e}")))?;
        Ok(pb::ClusterStatusReply {
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
        })
    }

    pub(super) async fn add_member(
        &self,
        req: Request<pb::AddNodeRequest>,
    ) -> Reply<pb::MembershipReply> {
        let caller = self.authorize(&req, "AddNode").await?;
        check_new_member(req.get_ref())?;
        let node_id = req.get_ref().id;
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

    pub(super) async fn promote_member(
        &self,
        req: Request<pb::NodeIdRequest>,
    ) -> Reply<pb::MembershipReply> {
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

    pub(super) async fn remove_member(
        &self,
        req: Request<pb::NodeIdRequest>,
    ) -> Reply<pb::MembershipReply> {
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

/// A node to add needs a non-zero id, a region, and peer and admin addresses as host:port.
fn check_new_member(r: &pb::AddNodeRequest) -> Result<(), Status> {
    if r.id == 0 || r.region.trim().is_empty() || r.peer_addr.is_empty() || r.admin_addr.is_empty()
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
    Ok(())
}
