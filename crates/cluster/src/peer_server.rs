//! The server side of the peer port: Raft RPCs into openraft, forwarded proposals and read-index
//! requests into the leader's write path. A request addressed to another node id is refused.

use std::sync::Arc;

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use statusmesh_model::Proposal;
use statusmesh_proto::peer::peer_server::{Peer, PeerServer};
use statusmesh_proto::peer::{PeerReply, PeerRequest};
use statusmesh_store::codec;
use statusmesh_store::{NodeId, TypeConfig};
use tonic::{Request, Response, Status};

use crate::error::ProposeError;
use crate::network::MAX_PEER_MESSAGE;
use crate::node::ClusterNode;

#[derive(Debug, Clone)]
pub struct PeerService {
    node: Arc<ClusterNode>,
}

impl PeerService {
    /// The tonic service for the peer port.
    pub fn server(node: Arc<ClusterNode>) -> PeerServer<PeerService> {
        PeerServer::new(PeerService { node })
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE)
    }

    /// With peer TLS on, the sender must be the node its verified certificate names, and a
    /// member of the cluster as this node knows it: a removed node's certificate is refused
    /// from the moment its removal reaches this node's log.
    fn check_sender(&self, req: &Request<PeerRequest>) -> Result<(), Status> {
        if self.node.tls.is_none() {
            return Ok(());
        }
        let claimed = req.get_ref().from;
        let certs = req.peer_certs().ok_or_else(|| {
            Status::unauthenticated("peer requests need a client certificate from the cluster CA")
        })?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("peer presented no certificate"))?;
        match statusmesh_tls::node_id(leaf) {
            Ok(id) if id == claimed => match self.node.knows_member(id) {
                Some(false) => {
                    tracing::warn!(
                        node = id,
                        "refused a peer request: the node is not a member of this cluster"
                    );
                    Err(Status::permission_denied(format!(
                        "node {id} is not a member of this cluster (removed, or never added)"
                    )))
                }
                Some(true) | None => Ok(()),
            },
            Ok(id) => {
                tracing::warn!(
                    claimed,
                    certificate = id,
                    "refused a peer request: its certificate names another node"
                );
                Err(Status::permission_denied(format!(
                    "the request claims to come from node {claimed} but its certificate is node {id}'s"
                )))
            }
            Err(e) => {
                tracing::warn!(claimed, error = %e, "refused a peer request: not a node certificate");
                Err(Status::permission_denied(format!(
                    "the client certificate is not a node certificate: {e}"
                )))
            }
        }
    }

    fn open<T: DeserializeOwned>(&self, req: Request<PeerRequest>) -> Result<(NodeId, T), Status> {
        self.check_sender(&req)?;
        let req = req.into_inner();
        if req.to != self.node.id {
            tracing::warn!(
                from = req.from,
                to = req.to,
                me = self.node.id,
                "refused a peer request meant for another node"
            );
            return Err(Status::permission_denied(format!(
                "this is node {}, not node {}: check the peer address configured for node {}",
                self.node.id, req.to, req.to
            )));
        }
        let body = codec::decode(&req.payload)
            .map_err(|e| Status::invalid_argument(format!("malformed peer payload: {e}")))?;
        Ok((req.from, body))
    }
}

fn reply<T: Serialize>(value: &T) -> Result<Response<PeerReply>, Status> {
    let payload =
        codec::encode(value).map_err(|e| Status::internal(format!("cannot encode reply: {e}")))?;
    Ok(Response::new(PeerReply { payload }))
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn append_entries(
        &self,
        req: Request<PeerRequest>,
    ) -> Result<Response<PeerReply>, Status> {
        let (_, rpc): (_, AppendEntriesRequest<TypeConfig>) = self.open(req)?;
        let res = self.node.raft.append_entries(rpc).await;
        if matches!(
            res,
            Ok(AppendEntriesResponse::Success
                | AppendEntriesResponse::PartialSuccess(_)
                | AppendEntriesResponse::Conflict)
        ) {
            self.node.contact.touch();
        }
        reply(&res)
    }

    async fn vote(&self, req: Request<PeerRequest>) -> Result<Response<PeerReply>, Status> {
        let (_, rpc): (_, VoteRequest<NodeId>) = self.open(req)?;
        reply(&self.node.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<PeerRequest>,
    ) -> Result<Response<PeerReply>, Status> {
        let (_, rpc): (_, InstallSnapshotRequest<TypeConfig>) = self.open(req)?;
        let res = self.node.raft.install_snapshot(rpc).await;
        if res.is_ok() {
            self.node.contact.touch();
        }
        reply(&res)
    }

    async fn propose(&self, req: Request<PeerRequest>) -> Result<Response<PeerReply>, Status> {
        let (from, proposal): (_, Proposal) = self.open(req)?;
        // The operator's request id names the write in the leader's log too.
        let span = tracing::info_span!("forwarded", request_id = %proposal.request_id, from);
        let action = proposal.command.name();
        let res: Result<_, ProposeError> =
            tracing::Instrument::instrument(self.node.propose_as_leader(proposal), span.clone())
                .await;
        match &res {
            Ok(outcome) => {
                tracing::info!(parent: &span, action, index = outcome.index, replayed = outcome.replayed, "forwarded write committed")
            }
            Err(e) => {
                tracing::info!(parent: &span, action, error = %e, "forwarded write not committed")
            }
        }
        reply(&res)
    }

    /// This node's wall clock, for a leader checking its own ([`crate::clock`]).
    async fn clock(&self, req: Request<PeerRequest>) -> Result<Response<PeerReply>, Status> {
        let (_, ()): (_, ()) = self.open(req)?;
        reply(&crate::node::now())
    }

    async fn read_index(&self, req: Request<PeerRequest>) -> Result<Response<PeerReply>, Status> {
        let (_, ()): (_, ()) = self.open(req)?;
        let deadline = self.node.profile.timings().propose_attempt;
        reply(&self.node.read_index_as_leader(deadline).await)
    }
}
