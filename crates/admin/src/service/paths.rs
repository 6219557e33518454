//! The write and read paths every RPC goes through: authenticate and authorize first, then a
//! write becomes a proposal (with the caller's idempotency key and a fingerprint of the
//! request) answered from the local replica once it has applied the write; a read applies the
//! consistency the caller asks for, then reads the local replica.

use prost::Message;
use sha2::{Digest, Sha256};
use statusmesh_model::{Command, CommandError, Proposal, Role, State, Timestamp};
use statusmesh_proto::admin::{self as pb, Consistency};
use tonic::{Request, Response, Status};

use super::{reply, AdminService, Reply, IDEMPOTENCY_HEADER};
use crate::auth::Caller;
use crate::errors::{command_status, propose_status};
use crate::request::request_id;

impl AdminService {
    /// Runs a write: authenticate and authorize, then convert the request with `command`,
    /// commit it, and answer from the replica.
    pub(super) async fn write<T: Message>(
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
    pub(super) async fn write_as<T: Message>(
        &self,
        caller: Caller,
        method: &str,
        req: &Request<T>,
        command: Result<Command, CommandError>,
    ) -> Reply<pb::WriteReply> {
        let reveal_urls = caller.role >= Role::Admin;
        let key = client_key(req)?;
        let command = command.map_err(|e| command_status(&e))?;
        let fingerprint = fingerprint(method, &req.get_ref().encode_to_vec());
        let (index, replayed, applied) = self
            .commit(caller.name, key, fingerprint, request_id(req), command)
            .await?;
        let entity = reply::entity(&self.node.replica().read().state, applied, reveal_urls);
        Ok(Response::new(pb::WriteReply {
            index,
            replayed,
            entity,
        }))
    }

    /// Proposes one write and waits until the local replica has applied it (read-your-write
    /// on this node); answers its index, whether it was a replay, and what it applied.
    pub(super) async fn commit(
        &self,
        actor: String,
        key: String,
        fingerprint: String,
        request_id: String,
        command: Command,
    ) -> Result<(u64, bool, statusmesh_model::Applied), Status> {
        let proposal = Proposal {
            idempotency_key: key,
            fingerprint,
            at: Timestamp::default(),
            actor,
            via_node: self.node.id,
            request_id,
            command,
        };
        let outcome = self
            .node
            .propose(proposal, self.write_timeout)
            .await
            .map_err(|e| propose_status(&e))?;
        let applied = outcome.result.map_err(|e| command_status(&e))?;
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
        Ok((outcome.index, outcome.replayed, applied))
    }

    /// Authenticates a read, then applies the consistency the request asks for (`consistency`
    /// reads it) before reading.
    pub(super) async fn read<T, R>(
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
    pub(super) async fn read_as<T, R>(
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

/// The client's idempotency key, refused when missing, unprintable or in the nodes' own
/// namespace.
pub(super) fn client_key<T>(req: &Request<T>) -> Result<String, Status> {
    let key = req
        .metadata()
        .get(IDEMPOTENCY_HEADER)
        .ok_or_else(|| {
            Status::invalid_argument(
                "missing idempotency-key header (any unique string per write; statusctl sets one)",
            )
        })?
        .to_str()
        .map_err(|_| Status::invalid_argument("idempotency-key must be printable ASCII"))?
        .to_owned();
    if statusmesh_model::command::is_internal_key(&key) {
        return Err(Status::invalid_argument(format!(
            "idempotency-key {key:?} is in the namespace the nodes use for their own writes (keys starting {}); choose another",
            statusmesh_model::command::INTERNAL_KEY_PREFIXES.join(", ")
        )));
    }
    Ok(key)
}

/// What a reused idempotency key is compared by: the method and the request's encoding.
pub(super) fn fingerprint(method: &str, encoded: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(encoded);
    hex::encode(hasher.finalize())
}
