//! The admin gRPC service (`statusmesh.admin.v1.Admin`): bearer-token authentication, writes
//! as idempotent proposals through the leader, reads from the local replica (or linearizable on
//! request), cluster status and membership changes.
//!
//! Architecture invariant: every call is authenticated before anything else happens; every
//! write carries the caller's idempotency key into the replicated log; no reply or error
//! carries a webhook secret except the reply to the write that created it.

pub mod auth;
pub mod errors;
pub mod request;
pub mod rpcs;
pub mod service;

pub use auth::{Authenticator, Token};
pub use request::{BadRequestId, RequestId};
pub use service::{AdminService, IDEMPOTENCY_HEADER};
