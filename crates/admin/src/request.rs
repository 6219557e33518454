//! The request id the admin port's observation layer attaches to each call (see
//! `statusmesh_proto::request_id`): read here to carry it into proposals and forwarded calls.

use tonic::Request;

/// The call's request id (the client's, or one the node made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Set instead when the client's `x-request-id` was malformed: the call is refused with this
/// message before anything else happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequestId(pub statusmesh_proto::request_id::RequestIdError);

/// The call's id, or empty when the service runs without the layer (unit tests).
pub(crate) fn request_id<T>(req: &Request<T>) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

/// Refuses a call whose client-chosen id was malformed.
pub(crate) fn check<T>(req: &Request<T>) -> Result<(), tonic::Status> {
    match req.extensions().get::<BadRequestId>() {
        Some(BadRequestId(problem)) => Err(tonic::Status::invalid_argument(problem.to_string())),
        None => Ok(()),
    }
}
