//! The public HTTP port. This scope: liveness, readiness and this node's cluster view,
//! all answered from local state without asking the leader. (The status page, Statuspage v2
//! API and feeds build on this router.)

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use statusmesh_cluster::ClusterNode;

pub fn router(node: Arc<ClusterNode>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/cluster", get(cluster))
        .with_state(node)
}

/// Ready once this node holds a replica: it is a member of an initialised cluster.
async fn readyz(State(node): State<Arc<ClusterNode>>) -> impl IntoResponse {
    let status = node.status();
    if status.members.iter().any(|m| m.id == status.id) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: this node is not a member of an initialised cluster yet\n",
        )
    }
}

async fn cluster(State(node): State<Arc<ClusterNode>>) -> Json<serde_json::Value> {
    let s = node.status();
    Json(json!({
        "node_id": s.id,
        "region": s.region,
        "role": s.state,
        "leader_id": s.leader,
        "term": s.term,
        "applied_index": s.applied_index,
        "last_log_index": s.last_log_index,
        "millis_since_leader_contact": s.millis_since_leader_contact,
        "timing_profile": s.profile.as_str(),
        "state_digest": s.digest,
        "members": s.members.iter().map(|m| json!({
            "id": m.id,
            "region": m.info.region,
            "role": if m.voter { "voter" } else { "learner" },
            "public_addr": m.info.public_addr,
        })).collect::<Vec<_>>(),
    }))
}
