//! Every admin RPC checks its caller's role before it looks at the request: a table test over
//! every RPC × role, calling each by name on a real node over TLS.

// Test-only crate: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use statusmesh_proto::admin as pb;
use statusmesh_tests::*;
use tonic::Code;

const LIMIT: Duration = Duration::from_secs(30);

/// A message with no fields: every admin request decodes from it (as its default), and every
/// reply decodes into it (unknown fields are skipped).
#[derive(Clone, PartialEq, prost::Message)]
struct Empty {}

/// Calls admin RPC `rpc` by name with an empty request, as `token` (none: anonymous).
async fn call_by_name(
    channel: tonic::transport::Channel,
    rpc: &str,
    token: Option<&str>,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path =
        http::uri::PathAndQuery::try_from(format!("/statusmesh.admin.v1.Admin/{rpc}")).unwrap();
    let mut req = tonic::Request::new(Empty {});
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req.metadata_mut()
        .insert("idempotency-key", key("table").parse().unwrap());
    grpc.unary::<Empty, Empty, _>(req, path, tonic_prost::ProstCodec::default())
        .await
        .map(|_| ())
}

/// Every RPC × every role, each with an empty (so, for most, malformed) request: a caller
/// without the RPC's role gets PERMISSION_DENIED (never a validation error that would show the
/// request was looked at), a caller with it gets past authorization, and an anonymous caller
/// gets UNAUTHENTICATED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_checks_its_role_before_looking_at_the_request() {
    use statusmesh_model::Role;
    let mut cluster = TestCluster::start(1);
    cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(0).await.unwrap();
    let secrets = [
        (Role::ReadOnly, "viewer", "v".repeat(40)),
        (Role::Operator, "oncall", "o".repeat(40)),
    ];
    for (role, name, secret) in &secrets {
        c.create_token(write(
            pb::CreateTokenRequest {
                name: (*name).into(),
                role: role.as_str().into(),
                secret: secret.clone(),
            },
            &key("tok"),
        ))
        .await
        .unwrap();
    }
    let channel = statusmesh_proto::connect_admin_channel(
        &cluster.nodes[0].admin_endpoint(),
        cluster.ca_cert().as_deref(),
        Duration::from_secs(2),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let callers = [
        (Role::ReadOnly, secrets[0].2.as_str()),
        (Role::Operator, secrets[1].2.as_str()),
        (Role::Admin, TOKEN),
    ];
    let mut checked = 0;
    for (rpc, need) in statusmesh_admin::rpcs::RPCS {
        for (role, token) in callers {
            let got = call_by_name(channel.clone(), rpc, Some(token)).await;
            let code = got.as_ref().err().map(tonic::Status::code);
            if role < *need {
                assert_eq!(
                    code,
                    Some(Code::PermissionDenied),
                    "{rpc} as {role}: {got:?}"
                );
            } else {
                assert!(
                    !matches!(code, Some(Code::PermissionDenied | Code::Unauthenticated)),
                    "{rpc} as {role} (it needs {need}): {got:?}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * statusmesh_admin::rpcs::RPCS.len());
    // Anonymous calls (a few: failures from one address are slowed down after five).
    for rpc in [
        "CreateToken",
        "AddNode",
        "ListAudit",
        "GetComponent",
        "Backup",
    ] {
        let got = call_by_name(channel.clone(), rpc, None).await;
        assert_eq!(
            got.as_ref().err().map(tonic::Status::code),
            Some(Code::Unauthenticated),
            "{rpc} anonymously: {got:?}"
        );
    }
}
