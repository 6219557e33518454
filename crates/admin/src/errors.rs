//! One mapping from statusmesh errors to gRPC status codes.

use statusmesh_cluster::{MembershipError, ProposeError};
use statusmesh_model::{CommandError, ErrorCode};
use tonic::Status;

pub fn command_status(e: &CommandError) -> Status {
    let msg = e.to_string();
    match e.code() {
        ErrorCode::InvalidArgument => Status::invalid_argument(msg),
        ErrorCode::NotFound => Status::not_found(msg),
        ErrorCode::AlreadyExists => Status::already_exists(msg),
        ErrorCode::FailedPrecondition => Status::failed_precondition(msg),
    }
}

pub fn propose_status(e: &ProposeError) -> Status {
    match e {
        ProposeError::NoQuorum(_) | ProposeError::NotLeader { .. } => {
            Status::unavailable(e.to_string())
        }
        ProposeError::Invalid(m) => Status::invalid_argument(m.clone()),
        ProposeError::TooLarge { .. } => Status::invalid_argument(e.to_string()),
        ProposeError::Fatal(_) => Status::internal(e.to_string()),
    }
}

pub fn membership_status(e: &MembershipError) -> Status {
    match e {
        MembershipError::NotLeader(_) => Status::unavailable(e.to_string()),
        MembershipError::Invalid(m) => Status::invalid_argument(m.clone()),
        MembershipError::Rejected(m) => Status::failed_precondition(m.clone()),
    }
}
