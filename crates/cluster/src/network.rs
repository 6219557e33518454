//! The client side of the peer transport: openraft's `RaftNetwork` over tonic.
//!
//! Every request names the sender and the intended target id; the receiving node refuses a
//! mismatch. Channels connect lazily with a connect timeout and HTTP/2 keepalives, so a
//! restarted peer gets a fresh connection; a peer that cannot be reached is reported as
//! `Unreachable` so openraft backs off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use statusmesh_proto::peer::peer_client::PeerClient;
use statusmesh_proto::peer::PeerRequest;
use statusmesh_store::codec;
use statusmesh_store::{NodeId, NodeInfo, TypeConfig};
use tonic::transport::{Channel, Endpoint};

/// Peer messages may carry snapshot chunks and entry batches well past tonic's 4 MiB default.
pub const MAX_PEER_MESSAGE: usize = 64 * 1024 * 1024;

/// Which peer RPC to call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PeerMethod {
    AppendEntries,
    Vote,
    InstallSnapshot,
    Propose,
    ReadIndex,
    Clock,
}

/// Why a peer call failed before producing an answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("peer {target} at {addr} unreachable: {detail}")]
    Unreachable {
        target: NodeId,
        addr: String,
        detail: String,
    },
    #[error("peer {target} at {addr}: {detail}")]
    Failed {
        target: NodeId,
        addr: String,
        detail: String,
    },
}

/// Shared cache of channels, one per (peer id, address).
#[derive(Debug, Clone)]
pub struct PeerNetwork {
    from: NodeId,
    connect_timeout: Duration,
    source_ip: Option<std::net::IpAddr>,
    /// Mutual TLS to peers (each connection uses the certificates current when it is made).
    tls: Option<Arc<statusmesh_tls::ReloadingTls>>,
    channels: Arc<Mutex<HashMap<(NodeId, String), Channel>>>,
}

impl PeerNetwork {
    pub fn new(
        from: NodeId,
        connect_timeout: Duration,
        source_ip: Option<std::net::IpAddr>,
        tls: Option<Arc<statusmesh_tls::ReloadingTls>>,
    ) -> Self {
        PeerNetwork {
            from,
            connect_timeout,
            source_ip,
            tls,
            channels: Arc::default(),
        }
    }

    fn channel(&self, target: NodeId, addr: &str) -> Result<Channel, CallError> {
        let mut cache = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ch) = cache.get(&(target, addr.to_owned())) {
            return Ok(ch.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).map_err(|e| {
            CallError::Unreachable {
                target,
                addr: addr.to_owned(),
                detail: format!("bad address: {e}"),
            }
        })?;
        let endpoint = endpoint
            .connect_timeout(self.connect_timeout)
            .local_address(self.source_ip)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true);
        let channel = match &self.tls {
            // The server must prove it is `target`: its certificate has to name that node id.
            Some(tls) => {
                let tls = tls.clone();
                let connector = statusmesh_tls::TlsConnector::new(
                    move || tls.current().peer_client.clone(),
                    &statusmesh_tls::node_dns_name(target),
                    self.source_ip,
                )
                .map_err(|e| CallError::Unreachable {
                    target,
                    addr: addr.to_owned(),
                    detail: e.to_string(),
                })?;
                endpoint.connect_with_connector_lazy(connector)
            }
            None => endpoint.connect_lazy(),
        };
        cache.insert((target, addr.to_owned()), channel.clone());
        Ok(channel)
    }

    /// Sends one peer RPC and decodes the reply payload.
    pub(crate) async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: PeerMethod,
        target: NodeId,
        addr: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let failed = |detail: String| CallError::Failed {
            target,
            addr: addr.to_owned(),
            detail,
        };
        let payload = codec::encode(request).map_err(|e| failed(e.to_string()))?;
        let mut client = PeerClient::new(self.channel(target, addr)?)
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE);
        let mut req = tonic::Request::new(PeerRequest {
            from: self.from,
            to: target,
            payload,
        });
        req.set_timeout(timeout);
        let reply = match method {
            PeerMethod::AppendEntries => client.append_entries(req).await,
            PeerMethod::Vote => client.vote(req).await,
            PeerMethod::InstallSnapshot => client.install_snapshot(req).await,
            PeerMethod::Propose => client.propose(req).await,
            PeerMethod::ReadIndex => client.read_index(req).await,
            PeerMethod::Clock => client.clock(req).await,
        };
        match reply {
            Ok(r) => codec::decode(&r.into_inner().payload).map_err(|e| failed(e.to_string())),
            Err(status) => {
                let detail = format!("{:?}: {}", status.code(), status.message());
                match status.code() {
                    tonic::Code::Unavailable
                    | tonic::Code::Unknown
                    | tonic::Code::PermissionDenied => Err(CallError::Unreachable {
                        target,
                        addr: addr.to_owned(),
                        detail,
                    }),
                    _ => Err(failed(detail)),
                }
            }
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerConnection {
        PeerConnection {
            network: self.clone(),
            target,
            addr: node.peer_addr.clone(),
        }
    }
}

/// openraft's connection to one peer.
#[derive(Debug)]
pub struct PeerConnection {
    network: PeerNetwork,
    target: NodeId,
    addr: String,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>;

impl PeerConnection {
    async fn rpc<Req, Resp, E>(
        &self,
        method: PeerMethod,
        req: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
        RaftError<NodeId, E>: DeserializeOwned,
    {
        let reply: Result<Resp, RaftError<NodeId, E>> = self
            .network
            .call(method, self.target, &self.addr, req, option.hard_ttl())
            .await
            .map_err(|e| match e {
                CallError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                CallError::Failed { .. } => RPCError::Network(NetworkError::new(&e)),
            })?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.rpc(PeerMethod::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.rpc(PeerMethod::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.rpc(PeerMethod::Vote, &rpc, &option).await
    }
}
