//! Three-node clusters of real `statusmesh` processes on loopback.

// Test-only crate: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_tests::*;

const LIMIT: Duration = Duration::from_secs(30);

fn component_id(reply: &pb::WriteReply) -> String {
    match &reply.entity {
        Some(Entity::Component(c)) => c.id.clone(),
        other => panic!("expected a component, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_writes_commit_and_writes_resume_after_the_leader_dies() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_leader(LIMIT).await;
    let follower = (leader + 1) % 3;

    // A write sent to a follower is forwarded to the leader and answered with its index.
    let mut c = cluster.admin(follower).await?;
    let reply = c
        .create_component(write(component_request("API"), &key("c")))
        .await?
        .into_inner();
    assert!(reply.index > 0);
    let api = component_id(&reply);
    // Read-your-write on the follower that answered.
    let got = c
        .get_component(read(pb::GetRequest {
            id: api.clone(),
            consistency: 0,
        }))
        .await?
        .into_inner();
    assert_eq!(got.name, "API");
    let digest_before = cluster.wait_converged(LIMIT).await;

    // The leader's region goes dark.
    let killed_at = Instant::now();
    cluster.kill(leader);
    let survivor = (leader + 2) % 3;
    let mut c = cluster.admin(survivor).await?;
    let reply = c
        .create_incident(write(
            pb::CreateIncidentRequest {
                name: "Leader region lost".into(),
                body: "Failing over".into(),
                component_changes: vec![pb::ComponentChange {
                    component_id: api.clone(),
                    status: "major_outage".into(),
                }],
                ..Default::default()
            },
            &key("i"),
        ))
        .await?
        .into_inner();
    let failover = killed_at.elapsed();
    println!(
        "failover: first write acknowledged {} ms after SIGKILL of the leader",
        failover.as_millis()
    );
    assert!(matches!(reply.entity, Some(Entity::Incident(_))));
    for n in 0..5 {
        c.create_component(write(component_request(&format!("after-{n}")), &key("c")))
            .await?;
    }
    let new_leader = cluster.wait_leader(LIMIT).await;
    assert_ne!(new_leader, leader);

    // The killed node restarts, catches up and holds the same state.
    cluster.spawn(leader);
    let digest_after = cluster.wait_converged(LIMIT).await;
    assert_ne!(digest_before, digest_after);
    let s = cluster.status(leader).await?;
    assert_eq!(s.state_digest, digest_after);
    let mut c = cluster.admin(leader).await?;
    let list = c
        .list_components(read(pb::ReadRequest { consistency: 0 }))
        .await?
        .into_inner();
    assert_eq!(list.components.len(), 6);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_catches_up_by_snapshot_after_the_log_is_purged() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start_with(3, 20);
    let leader = cluster.wait_leader(LIMIT).await;
    let lagging = (leader + 1) % 3;
    cluster.stop(lagging);
    let mut c = cluster.admin(leader).await?;
    for n in 0..80 {
        c.create_component(write(component_request(&format!("c{n}")), &key("c")))
            .await?;
    }
    cluster.spawn(lagging);
    let digest = cluster.wait_converged(LIMIT).await;
    assert_eq!(cluster.status(lagging).await?.state_digest, digest);
    let log = cluster.nodes[lagging].log();
    assert!(
        log.contains("snapshot installed"),
        "the lagging node should have caught up by snapshot:\n{log}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_every_node_loses_no_acknowledged_write() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start_with(3, 25);
    let leader = cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(leader).await?;
    let mut acked = Vec::new();
    for n in 0..40 {
        let r = c
            .create_component(write(component_request(&format!("k{n}")), &key("k")))
            .await?
            .into_inner();
        acked.push(component_id(&r));
    }
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.spawn(i);
    }
    cluster.wait_leader(LIMIT).await;
    cluster.wait_converged(LIMIT).await;
    for i in 0..3 {
        let mut c = cluster.admin(i).await?;
        let list = c
            .list_components(read(pb::ReadRequest { consistency: 0 }))
            .await?
            .into_inner();
        let ids: Vec<String> = list.components.into_iter().map(|c| c.id).collect();
        for id in &acked {
            assert!(
                ids.contains(id),
                "node {i} lost acknowledged component {id}"
            );
        }
        assert_eq!(ids.len(), acked.len());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_through_another_node_after_a_leader_change_applies_once(
) -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_leader(LIMIT).await;
    let k = key("retry");
    let req = pb::CreateIncidentRequest {
        name: "Checkout errors".into(),
        body: "Investigating".into(),
        ..Default::default()
    };
    let mut c = cluster.admin(leader).await?;
    let first = c
        .create_incident(write(req.clone(), &k))
        .await?
        .into_inner();
    cluster.kill(leader);
    let other = (leader + 1) % 3;
    let mut c = cluster.admin(other).await?;
    let again = c
        .create_incident(write(req.clone(), &k))
        .await?
        .into_inner();
    assert!(
        again.replayed,
        "the retry must be answered from the idempotency log"
    );
    assert_eq!(again.index, first.index);
    let id = |r: &pb::WriteReply| match &r.entity {
        Some(Entity::Incident(i)) => i.id.clone(),
        _ => panic!("expected an incident"),
    };
    assert_eq!(id(&again), id(&first));
    let list = c
        .list_incidents(read(pb::ListIncidentsRequest::default()))
        .await?
        .into_inner();
    assert_eq!(list.incidents.len(), 1);

    // The same key with a different request is refused, not silently answered.
    let mut other_req = req;
    other_req.name = "Something else".into();
    let err = c.create_incident(write(other_req, &k)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(
        err.message()
            .contains("already used for a different request"),
        "{}",
        err.message()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_and_leave_at_run_time() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(leader).await?;
    for n in 0..5 {
        c.create_component(write(component_request(&format!("pre{n}")), &key("c")))
            .await?;
    }
    let new = cluster.start_extra_node(4);
    // Sent to a follower: membership changes are forwarded to the leader.
    let follower = (leader + 1) % 3;
    let mut f = cluster.admin(follower).await?;
    let reply = f
        .add_node(read(cluster.nodes[new].add_node_request()))
        .await?
        .into_inner();
    assert!(reply
        .members
        .iter()
        .any(|m| m.id == 4 && m.role == "learner"));
    let reply = f
        .promote_node(read(pb::NodeIdRequest { id: 4 }))
        .await?
        .into_inner();
    assert!(reply.members.iter().any(|m| m.id == 4 && m.role == "voter"));
    let digest = cluster.wait_converged(LIMIT).await;
    assert_eq!(cluster.status(new).await?.state_digest, digest);

    // Promoting a voter again is refused with a clear reason.
    let err = f
        .promote_node(read(pb::NodeIdRequest { id: 4 }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    let reply = f
        .remove_node(read(pb::NodeIdRequest { id: 4 }))
        .await?
        .into_inner();
    assert!(!reply.members.iter().any(|m| m.id == 4));
    assert_eq!(reply.members.len(), 3);
    // Each applied change is in the audit log once, with who asked and the membership entry's
    // index; the refused promotion is not.
    let audit = f
        .list_audit(read(pb::ListAuditRequest {
            limit: 10,
            consistency: pb::Consistency::Linearizable as i32,
            ..Default::default()
        }))
        .await?
        .into_inner();
    let membership: Vec<(&str, Option<&str>)> = audit
        .records
        .iter()
        .filter(|r| r.action.ends_with("_node"))
        .map(|r| (r.action.as_str(), r.target.as_deref()))
        .collect();
    assert_eq!(
        membership,
        vec![
            ("remove_node", Some("node 4")),
            ("promote_node", Some("node 4")),
            ("add_node", Some("node 4")),
        ],
        "{audit:?}"
    );
    let add = audit
        .records
        .iter()
        .find(|r| r.action == "add_node")
        .unwrap();
    assert!(add.detail.contains("membership_index"), "{}", add.detail);
    assert!(!add.actor.is_empty());
    cluster.kill(new);
    // The three remaining nodes keep committing.
    c.create_component(write(component_request("post"), &key("c")))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_calls_are_refused_with_clear_errors_and_change_nothing() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(leader).await?;
    c.create_component(write(component_request("API"), &key("c")))
        .await?;
    let before = cluster.wait_converged(LIMIT).await;

    let err = c
        .list_components(tonic::Request::new(pb::ReadRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut bad = tonic::Request::new(pb::ReadRequest::default());
    bad.metadata_mut()
        .insert("authorization", "Bearer wrong-token".parse()?);
    assert_eq!(
        c.list_components(bad).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );

    let err = c
        .create_component(read(component_request("no key")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("idempotency-key"),
        "{}",
        err.message()
    );

    let err = c
        .set_component_status(write(
            pb::SetComponentStatusRequest {
                id: "nope".into(),
                status: "major_outage".into(),
            },
            &key("s"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert_eq!(err.message(), "component nope not found");

    let err = c
        .create_incident(write(
            pb::CreateIncidentRequest {
                name: "x".into(),
                body: "y".into(),
                impact: Some("apocalyptic".into()),
                ..Default::default()
            },
            &key("i"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("impact") && err.message().contains("apocalyptic"),
        "{}",
        err.message()
    );

    let err = c
        .add_subscriber(write(
            pb::AddSubscriberRequest {
                url: "not a url".into(),
                ..Default::default()
            },
            &key("s"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("invalid url"), "{}", err.message());

    let err = c
        .create_component(write(component_request(&"n".repeat(300)), &key("c")))
        .await
        .unwrap_err();
    assert!(err.message().contains("limit of 255"), "{}", err.message());

    assert_eq!(cluster.wait_converged(LIMIT).await, before);

    // The subscriber secret is shown once, then masked.
    let r = c
        .add_subscriber(write(
            pb::AddSubscriberRequest {
                url: "http://127.0.0.1:9/x".into(),
                ..Default::default()
            },
            &key("s"),
        ))
        .await?
        .into_inner();
    let Some(Entity::Subscriber(s)) = r.entity else {
        panic!("expected a subscriber")
    };
    assert!(s.secret.starts_with("whsec_") && s.secret.len() > 30);
    let got = c
        .get_subscriber(read(pb::GetRequest {
            id: s.id.clone(),
            consistency: 1,
        }))
        .await?
        .into_inner();
    assert_eq!(got.secret, "whsec_****");
    Ok(())
}
