//! Nobody in where they don't belong: tokens and roles, the audit log, mutual TLS on the peer
//! port, TLS on the admin port, certificate rotation, limits, and secrets kept out of logs and
//! public output. Real processes, real TLS on loopback.

// Test-only crate: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_proto::authed;
use statusmesh_proto::peer::peer_client::PeerClient;
use statusmesh_proto::peer::PeerRequest;
use statusmesh_tests::*;
use statusmesh_tls::pki;
use tonic::Code;

const LIMIT: Duration = Duration::from_secs(30);

fn statusctl(cluster: &TestCluster, endpoint: &str, token: &str, args: &[&str]) -> Output {
    Command::new(binary("statusctl"))
        .env("STATUSMESH_ENDPOINT", endpoint)
        .env("STATUSMESH_CA_CERT", cluster.ca_cert().unwrap())
        .env("STATUSMESH_TOKEN", token)
        .args(["--output", "json"])
        .args(args)
        .output()
        .unwrap()
}

fn ok_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "statusctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn as_token<T>(m: T, token: &str, key: Option<&str>) -> tonic::Request<T> {
    authed(m, token, key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_revocation_and_an_audit_record_per_write() {
    let mut cluster = TestCluster::start(3);
    cluster.wait_leader(LIMIT).await;
    let eps: Vec<String> = cluster.nodes.iter().map(|n| n.admin_endpoint()).collect();
    let mut c = cluster.admin(1).await.unwrap();

    // No token at all.
    let e = c
        .list_components(tonic::Request::new(pb::ReadRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    // The bootstrap (config) token is admin: it creates a read-only and an operator token.
    let ro = ok_json(&statusctl(
        &cluster,
        &eps[0],
        TOKEN,
        &["token", "create", "viewer", "--role", "read-only"],
    ));
    let ro_secret = ro["secret"].as_str().unwrap().to_owned();
    assert_eq!(ro["token"]["role"], "read-only");
    let op = ok_json(&statusctl(
        &cluster,
        &eps[2],
        TOKEN,
        &["token", "create", "oncall", "--role", "operator"],
    ));
    let op_secret = op["secret"].as_str().unwrap().to_owned();

    // Read-only: reads work, writes are refused with PERMISSION_DENIED.
    let who = ok_json(&statusctl(&cluster, &eps[1], &ro_secret, &["whoami"]));
    assert_eq!(who["name"], "viewer");
    assert_eq!(who["role"], "read-only");
    assert!(c
        .list_components(as_token(pb::ReadRequest::default(), &ro_secret, None))
        .await
        .is_ok());
    let e = c
        .create_component(as_token(
            component_request("nope"),
            &ro_secret,
            Some(&key("ro")),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains("read-only") && e.message().contains("operator"),
        "{e:?}"
    );
    // An operator may not manage tokens.
    let out = statusctl(
        &cluster,
        &eps[0],
        &op_secret,
        &["token", "create", "x", "--role", "admin"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PERMISSION_DENIED"));

    // An operator write through node 2, retried with the same key through node 3: applied once,
    // audited once, under the token's name and the node it arrived on.
    let k = key("audited");
    let first = c
        .create_component(as_token(
            component_request("Audited API"),
            &op_secret,
            Some(&k),
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(Entity::Component(comp)) = first.entity else {
        panic!("component")
    };
    let mut c3 = cluster.admin(2).await.unwrap();
    let again = c3
        .create_component(as_token(
            component_request("Audited API"),
            &op_secret,
            Some(&k),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    // A subscriber, whose secret must not reach the audit log.
    let sub = c
        .add_subscriber(as_token(
            pb::AddSubscriberRequest {
                url: "http://127.0.0.1:9/status".into(),
                ..Default::default()
            },
            &op_secret,
            Some(&key("sub")),
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(Entity::Subscriber(sub)) = sub.entity else {
        panic!("subscriber")
    };

    // Revoked: refused from then on, on every node.
    ok_json(&statusctl(
        &cluster,
        &eps[1],
        TOKEN,
        &["token", "revoke", "viewer"],
    ));
    for i in 0..3 {
        let mut ci = cluster.admin(i).await.unwrap();
        let e = eventually(LIMIT, "the revocation reaches every node", || {
            let mut ci = ci.clone();
            let s = ro_secret.clone();
            async move {
                let r = ci
                    .list_components(as_token(
                        pb::ReadRequest {
                            consistency: pb::Consistency::Local as i32,
                        },
                        &s,
                        None,
                    ))
                    .await;
                r.err()
            }
        })
        .await;
        assert_eq!(e.code(), Code::Unauthenticated);
        assert!(!e.message().contains(&ro_secret));
        let _ = ci.get_page(read(pb::ReadRequest::default())).await.unwrap();
    }
    let tokens = ok_json(&statusctl(&cluster, &eps[0], TOKEN, &["token", "list"]));
    let shown = tokens.to_string();
    assert!(shown.contains("viewer") && shown.contains("revoked_at"));
    assert!(!shown.contains(&ro_secret) && !shown.contains(&op_secret));

    // The audit log: one record per applied write, with who, where and what.
    let audit = ok_json(&statusctl(
        &cluster,
        &eps[2],
        TOKEN,
        &["--linearizable", "audit", "list", "--limit", "100"],
    ));
    let records = audit["records"].as_array().unwrap();
    let of = |action: &str, target: &str| {
        records
            .iter()
            .filter(|r| r["action"] == action && r["target"] == target)
            .collect::<Vec<_>>()
    };
    let created = of("create_component", &comp.id);
    assert_eq!(created.len(), 1, "{audit}");
    assert_eq!(created[0]["actor"], "oncall");
    assert_eq!(created[0]["via_node"], 2);
    assert!(
        created[0]["detail"]
            .as_str()
            .unwrap()
            .contains("Audited API"),
        "{}",
        created[0]
    );
    assert_eq!(of("create_token", "viewer").len(), 1);
    assert_eq!(of("create_token", "viewer")[0]["actor"], "test");
    assert_eq!(of("create_token", "oncall")[0]["via_node"], 3);
    assert_eq!(of("revoke_token", "viewer").len(), 1);
    assert_eq!(of("add_subscriber", &sub.id).len(), 1);
    // Exactly the writes made above, nothing else (refused writes are not applied).
    assert_eq!(records.len(), 5, "{audit}");
    let filtered = ok_json(&statusctl(
        &cluster,
        &eps[0],
        TOKEN,
        &["audit", "list", "--actor", "oncall"],
    ));
    assert_eq!(filtered["records"].as_array().unwrap().len(), 2);

    // Secrets are nowhere: not in the audit log, public output, or any node's log.
    let mut haystack = audit.to_string();
    for path in ["/api/v2/summary.json", "/api/cluster", "/"] {
        haystack += &reqwest::get(cluster.nodes[0].public_url(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    for n in &cluster.nodes {
        haystack += &n.log();
    }
    for secret in [&ro_secret, &op_secret, &sub.secret, &TOKEN.to_owned()] {
        assert!(!haystack.contains(secret.as_str()), "a secret leaked");
    }
    assert!(!haystack.contains("PRIVATE KEY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_slowed_down() {
    let mut cluster = TestCluster::start(1);
    cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(0).await.unwrap();
    let mut last = Duration::ZERO;
    for i in 0..8 {
        let started = Instant::now();
        let e = c
            .list_components(as_token(
                pb::ReadRequest::default(),
                &format!("wrong-token-{i}-0123456789"),
                None,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        last = started.elapsed();
    }
    // The 8th failure within a minute waits 400 ms before answering.
    assert!(last >= Duration::from_millis(400), "{last:?}");
    // A valid token still works at once.
    assert!(c
        .list_components(read(pb::ReadRequest::default()))
        .await
        .is_ok());
}

/// A rustls client configuration trusting `ca`, presenting `identity` when given.
fn client_config(ca: &Path, identity: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    let roots = statusmesh_tls::material::load_roots(ca).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(statusmesh_tls::material::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                statusmesh_tls::material::load_certs(cert).unwrap(),
                statusmesh_tls::material::load_key(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Calls Vote on node 1's peer port as `from`, over TLS with `config`.
async fn peer_vote(
    peer_addr: &str,
    config: Arc<rustls::ClientConfig>,
    from: u64,
) -> Result<(), tonic::Status> {
    let connector =
        statusmesh_tls::TlsConnector::new(move || config.clone(), "node-1.statusmesh", None)
            .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{peer_addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect_with_connector(connector)
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e}")))?;
    PeerClient::new(channel)
        .vote(tonic::Request::new(PeerRequest {
            from,
            to: 1,
            payload: b"not a vote".to_vec(),
        }))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_port_admits_only_the_node_its_certificate_names() {
    let mut cluster = TestCluster::start(3);
    cluster.wait_leader(LIMIT).await;
    let dir = cluster.tls_dir();
    let ca = dir.join(pki::CA_CERT);
    let peer = cluster.nodes[0].config.listen.peer.to_string();
    let (n2_cert, n2_key) = pki::node_files(&dir, 2);

    // Plaintext gRPC: refused (the port only speaks TLS).
    let plain = async {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{peer}"))
            .unwrap()
            .timeout(Duration::from_secs(5))
            .connect()
            .await?;
        PeerClient::new(ch)
            .vote(tonic::Request::new(PeerRequest {
                from: 2,
                to: 1,
                payload: vec![],
            }))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::Ok(())
    }
    .await;
    assert!(plain.is_err());

    // TLS without a client certificate: the handshake is refused.
    let e = peer_vote(&peer, client_config(&ca, None), 2)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled
        ),
        "{e:?}"
    );

    // A node certificate from another CA: refused.
    let other = tempfile::TempDir::new().unwrap();
    pki::create_ca(other.path(), "rogue CA", 1).unwrap();
    let (rogue_cert, rogue_key) = pki::issue_node(other.path(), 2, &[], 1).unwrap();
    let e = peer_vote(
        &peer,
        client_config(&ca, Some((&rogue_cert, &rogue_key))),
        2,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            e.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled
        ),
        "{e:?}"
    );

    // Node 2's genuine certificate, claiming to be node 3: refused by name.
    let e = peer_vote(&peer, client_config(&ca, Some((&n2_cert, &n2_key))), 3)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains("node 2") && e.message().contains("node 3"),
        "{e:?}"
    );

    // Node 2 as itself with a malformed payload: a clear error, and node 1 keeps serving.
    let e = peer_vote(&peer, client_config(&ca, Some((&n2_cert, &n2_key))), 2)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("malformed peer payload"), "{e:?}");

    // The dialling side: a server that is not the node asked for is refused too (node 2's
    // port answered as if it were node 1).
    let n2_peer = cluster.nodes[1].config.listen.peer.to_string();
    let (n3_cert, n3_key) = pki::node_files(&dir, 3);
    let e = peer_vote(&n2_peer, client_config(&ca, Some((&n3_cert, &n3_key))), 3)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled
        ),
        "{e:?}"
    );

    let refused = cluster.nodes[0].log();
    assert!(
        refused.contains("TLS handshake refused"),
        "node 1 logs refused handshakes"
    );
    // Still a healthy cluster.
    let mut c = cluster.admin(0).await.unwrap();
    create_component(&mut c, "after the intruders").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_tls_client_certificates_and_plaintext_refused() {
    let mut cluster = TestCluster::start(3);
    cluster.wait_leader(LIMIT).await;
    let admin = cluster.nodes[0].config.listen.admin;

    // Plaintext to a TLS admin port: no answer.
    let plain = admin_client(&format!("http://{admin}"), None).await;
    let refused = match plain {
        Err(_) => true,
        Ok(mut c) => c.get_page(read(pb::ReadRequest::default())).await.is_err(),
    };
    assert!(refused, "plaintext admin call was answered");

    // An operator client certificate (no token) authenticates with its role; its writes are
    // audited under cert:<name>; membership calls it forwards to the leader keep its identity.
    let dir = cluster.tls_dir();
    let (cert, key_path) = pki::issue_operator(&dir, "alice", "operator", 1).unwrap();
    let ctl = |args: &[&str]| {
        Command::new(binary("statusctl"))
            .env_remove("STATUSMESH_TOKEN")
            .env("STATUSMESH_ENDPOINT", cluster.nodes[1].admin_endpoint())
            .env("STATUSMESH_CA_CERT", cluster.ca_cert().unwrap())
            .args([
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                key_path.to_str().unwrap(),
            ])
            .args(["--output", "json"])
            .args(args)
            .output()
            .unwrap()
    };
    let who = ok_json(&ctl(&["whoami"]));
    assert_eq!(who["name"], "cert:alice");
    assert_eq!(who["role"], "operator");
    assert_eq!(who["method"], "certificate");
    let comp = ok_json(&ctl(&["component", "create", "--name", "Certified"]));
    let id = comp["component"]["id"].as_str().unwrap().to_owned();
    let out = ctl(&["cluster", "remove-node", "3"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PERMISSION_DENIED"),
        "{out:?}"
    );
    let audit = ok_json(&statusctl(
        &cluster,
        &cluster.nodes[0].admin_endpoint(),
        TOKEN,
        &["--linearizable", "audit", "list", "--actor", "cert:alice"],
    ));
    let records = audit["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{audit}");
    assert_eq!(records[0]["target"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_while_the_cluster_runs() {
    let mut cluster = TestCluster::start(3);
    cluster.wait_leader(LIMIT).await;
    let dir = cluster.tls_dir();
    let ca = dir.join(pki::CA_CERT);
    let serial_served = || async {
        let config = client_config(&ca, None);
        let mut config = (*config).clone();
        config.alpn_protocols.clear();
        let tcp = tokio::net::TcpStream::connect(cluster.nodes[0].config.listen.admin)
            .await
            .unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect("127.0.0.1".try_into().unwrap(), tcp)
            .await
            .unwrap();
        let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        statusmesh_tls::identity::serial(&leaf)
    };
    let before = serial_served().await;

    // Issue node 1 a new certificate in a staging directory, then move it into place, as an
    // operator (or cert-manager) would.
    let staging = tempfile::TempDir::new().unwrap();
    for f in [pki::CA_CERT, pki::CA_KEY] {
        std::fs::copy(dir.join(f), staging.path().join(f)).unwrap();
    }
    let (new_cert, new_key) = pki::issue_node(staging.path(), 1, &["127.0.0.1".into()], 1).unwrap();
    let new_serial = statusmesh_tls::identity::serial(
        &statusmesh_tls::material::load_certs(&new_cert).unwrap()[0],
    );
    assert_ne!(new_serial, before);
    let (cert, key_path) = pki::node_files(&dir, 1);
    std::fs::rename(&new_key, &key_path).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();

    let served = eventually(LIMIT, "node 1 serves its new certificate", || async {
        let s = serial_served().await;
        (s == new_serial).then_some(s)
    })
    .await;
    assert_eq!(served, new_serial);
    assert!(cluster.nodes[0].log().contains("TLS certificates reloaded"));

    // The cluster keeps committing through node 1, and a restart of another node (fresh peer
    // connections to node 1, which now presents the new certificate) rejoins.
    let mut c = cluster.admin(0).await.unwrap();
    create_component(&mut c, "after rotation").await;
    cluster.stop(1);
    cluster.spawn(1);
    cluster.wait_leader(LIMIT).await;
    let mut c2 = cluster.admin(1).await.unwrap();
    create_component(&mut c2, "after restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_input_is_refused_and_nothing_changes() {
    let mut cluster = TestCluster::start(1);
    cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(0).await.unwrap();
    create_component(&mut c, "Existing").await;
    let digest = |s: pb::ClusterStatusReply| s.state_digest;
    let before = digest(cluster.status(0).await.unwrap());

    // An admin message over the 1 MiB limit.
    let huge = pb::CreateIncidentRequest {
        name: "x".repeat(2 * 1024 * 1024),
        ..Default::default()
    };
    let e = c
        .create_incident(write(huge, &key("huge")))
        .await
        .unwrap_err();
    assert!(
        matches!(e.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{e:?}"
    );
    assert!(e.message().contains("limit"), "{e:?}");
    // Fields past their limits, named in the error.
    let e = c
        .create_component(write(component_request(&"n".repeat(300)), &key("long")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("name") && e.message().contains("255"),
        "{e:?}"
    );
    let e = c
        .create_token(write(
            pb::CreateTokenRequest {
                name: "bad name!".into(),
                role: "admin".into(),
                secret: "s".repeat(40),
            },
            &key("tok"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("name"), "{e:?}");
    let e = c
        .create_token(write(
            pb::CreateTokenRequest {
                name: "short".into(),
                role: "admin".into(),
                secret: "tooshort-secret".into(),
            },
            &key("tok2"),
        ))
        .await
        .unwrap_err();
    assert!(
        e.message().contains("secret") && !e.message().contains("tooshort"),
        "{e:?}"
    );
    let e = c
        .list_audit(read(pb::ListAuditRequest {
            since: Some("yesterday".into()),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert!(e.message().contains("since"), "{e:?}");

    // The public port: a 1 MiB header block and a body on a read-only route.
    let public = cluster.nodes[0].config.listen.public;
    let mut tcp = tokio::net::TcpStream::connect(public).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let _ = tcp.write_all(big.as_bytes()).await;
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut answer))
        .await
        .unwrap()
        .unwrap_or(0);
    let head = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(
        n == 0 || head.contains(" 431") || head.contains(" 400"),
        "{head}"
    );
    // A body on a read-only route: refused without being read (the answer may arrive before
    // the client finishes sending, which then sees the connection close).
    let r = reqwest::Client::new()
        .post(cluster.nodes[0].public_url("/api/v2/summary.json"))
        .body(vec![b'x'; 4 * 1024 * 1024])
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), reqwest::StatusCode::METHOD_NOT_ALLOWED);
    }

    // The node keeps serving, with exactly the state it had.
    let r = reqwest::get(cluster.nodes[0].public_url("/api/v2/summary.json"))
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(digest(cluster.status(0).await.unwrap()), before);
}

/// The nodes' own idempotency keys (scheduler, membership audit, dispatcher, restore) cannot be
/// claimed by a client: such a key is refused, naming it, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_use_the_nodes_own_idempotency_keys() {
    let mut cluster = TestCluster::start(1);
    cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(0).await.unwrap();
    let before = cluster.status(0).await.unwrap().state_digest;
    for key in [
        "auto:abc123:in_progress",
        "membership:7",
        "attempts:1:2:3",
        "restore-0123abcd-0-restore_begin",
    ] {
        let err = c
            .create_component(write(component_request("claimed"), key))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{key}: {err:?}");
        assert!(err.message().contains(key), "{key}: {}", err.message());
        assert!(err.message().contains("own writes"), "{}", err.message());
    }
    assert_eq!(cluster.status(0).await.unwrap().state_digest, before);
    // Keys that only look alike are a client's to use.
    create_component(&mut c, "automatic").await;
    c.create_component(write(component_request("restored"), "restored-1"))
        .await
        .unwrap();
}

/// A backup exports every secret: taking one leaves an audit record naming who took it and
/// the state it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_is_audited() {
    use futures::StreamExt as _;
    let mut cluster = TestCluster::start(1);
    cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(0).await.unwrap();
    create_component(&mut c, "api").await;
    let mut stream = c
        .backup(read(pb::ReadRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    while stream.next().await.is_some() {}
    let digest = first.digest.clone();
    let record = statusmesh_tests::backups::backup_audit_record(&cluster, 0, &digest).await;
    assert_eq!(record.actor, "test");
    assert_eq!(
        record.target.as_deref(),
        Some(format!("state {digest}").as_str())
    );
    assert!(
        record.detail.contains(&first.applied_index.to_string()),
        "{record:?}"
    );
}

/// Item 5: a node certificate used to count as a node's identity whoever it named. Now, on the
/// peer port, a genuine cluster-CA certificate of a node that is not a member is refused; on
/// the admin port, such a certificate cannot vouch for a forwarded identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_current_members_speak_as_nodes() {
    let mut cluster = TestCluster::start(3);
    cluster.wait_leader(LIMIT).await;
    let dir = cluster.tls_dir();
    let ca = dir.join(pki::CA_CERT);
    // Node 5: a certificate from the cluster CA, but never added to the cluster.
    let (n5_cert, n5_key) = pki::issue_node(&dir, 5, &["127.0.0.1".into()], 1).unwrap();
    let outsider = client_config(&ca, Some((&n5_cert, &n5_key)));

    let peer = cluster.nodes[0].config.listen.peer.to_string();
    let e = peer_vote(&peer, outsider.clone(), 5).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("not a member"), "{e:?}");
    // A member's certificate still gets as far as the payload.
    let (n2_cert, n2_key) = pki::node_files(&dir, 2);
    let e = peer_vote(&peer, client_config(&ca, Some((&n2_cert, &n2_key))), 2)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // The admin port: the outsider claims to forward an admin's call.
    let connector =
        statusmesh_tls::TlsConnector::new(move || outsider.clone(), "localhost", None).unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!(
        "http://{}",
        cluster.nodes[0].config.listen.admin
    ))
    .unwrap()
    .timeout(Duration::from_secs(5))
    .connect_with_connector(connector)
    .await
    .unwrap();
    let mut req = tonic::Request::new(pb::ReadRequest::default());
    req.metadata_mut().insert(
        statusmesh_admin::auth::ON_BEHALF_OF_HEADER,
        "cert:mallory/admin".parse().unwrap(),
    );
    let e = pb::admin_client::AdminClient::new(channel)
        .list_tokens(req)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("current member"), "{e:?}");
}
