//! Membership calls run on the leader: here when this node leads, else forwarded to the
//! leader's admin port over TLS with the caller's credentials (or, for a certificate identity,
//! this node vouching for it) and the request id.

use std::time::Duration;

use statusmesh_cluster::ClusterNode;
use statusmesh_model::{Command, MembershipChange, Proposal};
use statusmesh_proto::admin as pb;
use statusmesh_proto::admin::admin_client::AdminClient;
use statusmesh_proto::request_id::REQUEST_ID_HEADER;
use tonic::{Request, Status};

use super::{AdminService, Reply};
use crate::auth::{Caller, ON_BEHALF_OF_HEADER};
use crate::request::request_id;

impl AdminService {
    /// A channel to another node's admin port (TLS when this node has it).
    async fn admin_channel(&self, addr: &str) -> Result<tonic::transport::Channel, Status> {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Status::internal(format!("bad admin address {addr:?}: {e}")))?
            .connect_timeout(Duration::from_secs(2));
        let connected = match &self.tls {
            Some(tls) => {
                let host = addr
                    .rsplit_once(':')
                    .map_or(addr, |(h, _)| h)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let tls = tls.clone();
                let connector = statusmesh_tls::TlsConnector::new(
                    move || tls.current().admin_client.clone(),
                    host,
                    None,
                )
                .map_err(|e| Status::internal(e.to_string()))?;
                endpoint.connect_with_connector(connector).await
            }
            None => endpoint.connect().await,
        };
        connected.map_err(|e| Status::unavailable(format!("cannot reach {addr}: {e}")))
    }

    /// Runs a membership change for `caller` (already authorized for it) here if this node
    /// leads (and records it in the audit log), or on the leader's admin port.
    pub(super) async fn on_leader<T: Clone + Send + 'static>(
        &self,
        caller: Caller,
        req: Request<T>,
        (change, node): (MembershipChange, u64),
        local: impl AsyncFnOnce(&ClusterNode, T) -> Reply<pb::MembershipReply>,
        remote: impl AsyncFnOnce(
            AdminClient<tonic::transport::Channel>,
            Request<T>,
        ) -> Reply<pb::MembershipReply>,
    ) -> Reply<pb::MembershipReply> {
        let status = self.node.status();
        match status.leader {
            Some(l) if l == self.node.id => {
                let id = request_id(&req);
                let reply = local(&self.node, req.into_inner()).await?;
                let index = reply.get_ref().index;
                self.record_membership_change(caller, id, change, node, index)
                    .await;
                Ok(reply)
            }
            Some(l) => {
                let member = status.members.iter().find(|m| m.id == l).ok_or_else(|| {
                    Status::unavailable(format!("leader {l} is not in this node's membership view"))
                })?;
                let channel = self
                    .admin_channel(&member.info.admin_addr)
                    .await
                    .map_err(|e| Status::unavailable(format!("leader {l}: {}", e.message())))?;
                let auth = req.metadata().get("authorization").cloned();
                let id = request_id(&req);
                let mut fwd = Request::new(req.into_inner());
                if let Some(v) = (!id.is_empty()).then(|| id.parse().ok()).flatten() {
                    fwd.metadata_mut().insert(REQUEST_ID_HEADER, v);
                }
                match auth {
                    Some(a) => {
                        fwd.metadata_mut().insert("authorization", a);
                    }
                    // A certificate identity cannot travel; this node (its node certificate)
                    // vouches for it.
                    None => {
                        let v = format!("{}/{}", caller.name, caller.role);
                        if let Ok(v) = v.parse() {
                            fwd.metadata_mut().insert(ON_BEHALF_OF_HEADER, v);
                        }
                    }
                }
                remote(AdminClient::new(channel), fwd).await
            }
            None => Err(Status::unavailable(
                "no leader is elected; membership changes need a quorum",
            )),
        }
    }

    /// Adds the audit record of a membership change this leader has committed. The change
    /// itself stands either way: a record that cannot be committed is logged as an error.
    async fn record_membership_change(
        &self,
        caller: Caller,
        request_id: String,
        change: MembershipChange,
        node: u64,
        membership_index: u64,
    ) {
        let command = Command::RecordMembershipChange {
            change,
            node,
            membership_index,
        };
        let key = format!("membership:{}:{membership_index}", self.node.incarnation);
        let proposal = Proposal {
            request_id,
            ..Proposal::internal(key, &caller.name, self.node.id, command)
        };
        if let Err(e) = self.node.propose(proposal, self.write_timeout).await {
            tracing::error!(error = %e, node, membership_index, "membership change applied, but its audit record was not committed");
        }
    }
}
