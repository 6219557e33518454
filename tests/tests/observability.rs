//! Request ids and structured logs on a real cluster: the id statusctl sends reaches the node it
//! called, the leader its write is forwarded to, the audit record and the error message; a
//! malformed id is refused; nodes started with `--log-format json` write one JSON object per
//! line.

// Test-only crate: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use statusmesh_proto::admin as pb;
use statusmesh_tests::*;

fn statusctl(cluster: &TestCluster, node: usize, args: &[&str]) -> Output {
    Command::new(binary("statusctl"))
        .env("STATUSMESH_ENDPOINT", cluster.nodes[node].admin_endpoint())
        .env("STATUSMESH_CA_CERT", cluster.ca_cert().unwrap())
        .env("STATUSMESH_TOKEN", TOKEN)
        .env_remove("STATUSMESH_REQUEST_ID")
        .args(["--output", "json"])
        .args(args)
        .output()
        .expect("run statusctl")
}

/// Every line of a node's log, parsed; a line that is not a JSON object fails the test.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

/// The lines whose span (`span`, or one of the enclosing `spans`) carries `request_id == id`.
fn lines_with_request_id<'a>(lines: &'a [Value], id: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| {
            l["span"]["request_id"] == id
                || l["spans"]
                    .as_array()
                    .is_some_and(|spans| spans.iter().any(|s| s["request_id"] == id))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_travel_from_statusctl_through_forwarding_to_the_leader() {
    let mut cluster = TestCluster::start_options(
        3,
        ClusterOptions {
            json_logs: true,
            ..Default::default()
        },
    );
    let leader = cluster.wait_leader(Duration::from_secs(30)).await;
    let follower = (leader + 1) % 3;
    let follower_id = cluster.nodes[follower].id;

    // A write through a follower, with the operator's own id.
    let out = statusctl(
        &cluster,
        follower,
        &[
            "--request-id",
            "ops-4711",
            "component",
            "create",
            "--name",
            "API",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The follower logged the call under the id; the leader logged the forwarded write under
    // the same id; the third node never saw it.
    let arrived = eventually(Duration::from_secs(10), "the follower's log line", || {
        let lines = json_lines(&cluster.nodes[follower].log());
        let hits: Vec<Value> = lines_with_request_id(&lines, "ops-4711")
            .into_iter()
            .cloned()
            .collect();
        let found = hits.iter().any(|l| l["fields"]["message"] == "answered");
        async move { found.then_some(hits) }
    })
    .await;
    let answered = arrived
        .iter()
        .find(|l| l["fields"]["message"] == "answered")
        .unwrap();
    assert_eq!(answered["fields"]["code"], "OK");
    assert_eq!(answered["level"], "INFO");
    assert_eq!(
        answered["span"]["method"],
        "statusmesh.admin.v1.Admin/CreateComponent"
    );
    let leader_lines = json_lines(&cluster.nodes[leader].log());
    let forwarded = lines_with_request_id(&leader_lines, "ops-4711");
    let committed = forwarded
        .iter()
        .find(|l| l["fields"]["message"] == "forwarded write committed")
        .unwrap_or_else(|| panic!("leader did not log the forwarded write: {forwarded:?}"));
    assert_eq!(committed["fields"]["action"], "create_component");
    assert_eq!(committed["span"]["from"], follower_id);
    let third = 3 - leader - follower;
    assert!(lines_with_request_id(&json_lines(&cluster.nodes[third].log()), "ops-4711").is_empty());

    // The audit record keeps it (read from the third node).
    let audit = statusctl(
        &cluster,
        third,
        &["audit", "list", "--action", "create_component"],
    );
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    let audit: Value = serde_json::from_slice(&audit.stdout).unwrap();
    let records = audit["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{audit}");
    assert_eq!(records[0]["request_id"], "ops-4711");
    assert_eq!(records[0]["via_node"], follower_id);

    // Without --request-id, statusctl makes one per invocation; an error names it.
    let refused = statusctl(&cluster, follower, &["component", "get", "nope"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("(request id statusctl-"), "{stderr}");

    // A malformed id is refused naming the header, and nothing is written.
    let before = cluster.wait_converged(Duration::from_secs(30)).await;
    let bad = statusctl(
        &cluster,
        follower,
        &[
            "--request-id",
            "has spaces",
            "component",
            "create",
            "--name",
            "Nope",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--request-id"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let mut c = cluster.admin(follower).await.unwrap();
    let mut req = write(component_request("Nope"), &key("bad-id"));
    req.metadata_mut()
        .insert("x-request-id", "a/b".parse().unwrap());
    let err = c.create_component(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("x-request-id"), "{}", err.message());
    assert_eq!(
        cluster.wait_converged(Duration::from_secs(30)).await,
        before
    );

    // The answer echoes the id (the client's, or the node's own).
    let mut req = read(pb::ReadRequest::default());
    req.metadata_mut()
        .insert("x-request-id", "echo-me".parse().unwrap());
    let resp = c.who_am_i(req).await.unwrap();
    assert_eq!(resp.metadata().get("x-request-id").unwrap(), "echo-me");
    let resp = c.who_am_i(read(pb::ReadRequest::default())).await.unwrap();
    assert_eq!(
        resp.metadata().get("x-request-id").unwrap().len(),
        16,
        "a node-made id"
    );

    // Every line every node wrote is one JSON object.
    for n in &cluster.nodes {
        assert!(!json_lines(&n.log()).is_empty());
    }
}
