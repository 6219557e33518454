//! What a hostile or merely careless client can do to a node: floods of half-sent
//! connections, slow clients, expensive public requests. Real processes on loopback, each run
//! with the limits the scenario is about.

// Test-only crate: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use statusmesh_server::config::LimitsConfig;
use statusmesh_tests::notify::add_subscriber;
use statusmesh_tests::receiver::{Behavior, Receiver};
use statusmesh_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(30);

/// A request that never finishes its headers.
const HALF_SENT: &[u8] = b"GET / HTTP/1.1\r\nHost: statusmesh\r\nX-Slow: ";

/// Reads until the server closes the connection (EOF or reset) or `within` passes; true if
/// it closed.
async fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// The value of one series (`name` or `name{labels}`) in a node's `/metrics`, if the node
/// answers within 2 s.
async fn metric(node: &TestNode, series: &str) -> Option<f64> {
    let get = async {
        reqwest::get(node.public_url("/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    };
    let text = tokio::time::timeout(Duration::from_secs(2), get)
        .await
        .ok()??;
    let prefix = format!("{series} ");
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {series} in /metrics"));
    Some(value.trim().parse().unwrap())
}

/// [`metric`] of the series `name{port="<port>"}`.
async fn port_sample(node: &TestNode, name: &str, port: &str) -> Option<f64> {
    metric(node, &format!("{name}{{port=\"{port}\"}}")).await
}

/// Item 1 of the hardening issue: with a low file limit, more half-sent connections than the
/// limit allows used to take every descriptor, so the admin port (and RocksDB) failed while the
/// public port held them. Now the public port sheds what is over its cap, and Raft and
/// operators go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_half_sent_connections_is_shed_and_writes_still_commit() {
    const NOFILE: u64 = 1024;
    const FLOOD: usize = 1_500;
    let mut cluster = TestCluster::start_options(
        3,
        ClusterOptions {
            nofile: Some(NOFILE),
            // Long enough that the flood is still held while the writes run.
            limits: LimitsConfig {
                header_read_timeout_ms: 60_000,
                ..LimitsConfig::default()
            },
            ..ClusterOptions::default()
        },
    );
    let leader = cluster.wait_leader(LIMIT).await;
    let term_before = cluster.status(leader).await.unwrap().term;
    let public = cluster.nodes[leader].config.listen.public;
    let cap = port_sample(
        &cluster.nodes[leader],
        "statusmesh_port_connection_limit",
        "public",
    )
    .await
    .unwrap();
    assert!(
        cap > 16.0 && cap < (NOFILE as f64) / 2.0,
        "the public cap ({cap}) is what the file limit leaves after the reserves"
    );

    let mut flood = Vec::with_capacity(FLOOD);
    let mut refused = 0;
    for _ in 0..FLOOD {
        match TcpStream::connect(public).await {
            Ok(mut s) => {
                if s.write_all(HALF_SENT).await.is_err() {
                    refused += 1;
                }
                flood.push(s);
            }
            Err(_) => refused += 1,
        }
    }
    // The ones over the cap are closed at once instead of queuing in the backlog.
    let mut shed_seen = 0;
    for s in flood.iter_mut().rev().take(100) {
        if closed_within(s, Duration::from_millis(200)).await {
            shed_seen += 1;
        }
    }
    assert!(
        shed_seen > 50,
        "connections over the cap are closed on arrival ({shed_seen} of the last 100; {refused} refused)"
    );

    // While the flood is held: a new operator connection to the flooded node works, writes
    // commit through it, and every node keeps the same leader in the same term.
    let started = Instant::now();
    let mut admin = cluster.admin(leader).await.unwrap();
    for i in 0..10 {
        create_component(&mut admin, &format!("written during the flood {i}")).await;
    }
    let writes = started.elapsed();
    for i in 0..cluster.nodes.len() {
        let s = cluster.status(i).await.unwrap();
        assert_eq!(
            s.leader_id,
            Some(cluster.nodes[leader].id),
            "node {i} kept its leader"
        );
        assert_eq!(s.term, term_before, "no election during the flood");
    }
    // The flooded node's log still names nothing about running out of descriptors.
    let log = cluster.nodes[leader].log();
    assert!(
        !log.contains("Too many open files"),
        "no accept failed for lack of descriptors:\n{}",
        log.lines()
            .filter(|l| l.contains("Too many open files"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );

    drop(flood);
    let node = &cluster.nodes[leader];
    let shed = eventually(LIMIT, "the public port answers again", || async move {
        port_sample(node, "statusmesh_port_connections_shed_total", "public").await
    })
    .await;
    assert!(shed >= (FLOOD as f64) - cap, "shed {shed}, cap {cap}");
    println!("flood of {FLOOD} on a cap of {cap}: shed {shed}, 10 writes in {writes:?}");
}

/// A request whose headers never finish is closed at the header-read timeout, including one
/// that trickles a byte at a time (slowloris), and so is a keep-alive connection left idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_keep_alive_connections_are_closed_at_the_timeout() {
    let mut cluster = TestCluster::start_options(
        1,
        ClusterOptions {
            limits: LimitsConfig {
                header_read_timeout_ms: 1_000,
                ..LimitsConfig::default()
            },
            ..ClusterOptions::default()
        },
    );
    cluster.wait_leader(LIMIT).await;
    let public = cluster.nodes[0].config.listen.public;

    // Half-sent headers, then silence.
    let started = Instant::now();
    let mut silent = TcpStream::connect(public).await.unwrap();
    silent.write_all(HALF_SENT).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");

    // A byte every 200 ms never completes a header line: closed all the same.
    let started = Instant::now();
    let mut trickle = TcpStream::connect(public).await.unwrap();
    trickle.write_all(HALF_SENT).await.unwrap();
    let closed = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if trickle.write_all(b"x").await.is_err() {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(5) {
            panic!("a trickling client was kept for 5 s");
        }
    };
    assert!(closed < Duration::from_secs(3), "{closed:?}");

    // A full request is answered; the connection, then left idle, is closed.
    let mut idle = TcpStream::connect(public).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: statusmesh\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
}

/// Item 10: one subscriber's backlog used to fill the dispatcher's ready queue (its cap counted
/// jobs the busy endpoint could not start), so nobody else was served until the backlog
/// drained. Now each subscriber holds at most its `per_endpoint` share of the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscribers_backlog_does_not_delay_the_others() {
    use statusmesh_proto::admin as pb;
    const COMPONENTS: usize = 200;
    const OTHERS: usize = 100;
    let recv = Receiver::start().await;
    recv.set("/slow", Behavior::Slow(Duration::from_secs(2)));
    let mut cluster = TestCluster::start(1);
    cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(0).await.unwrap();
    let slow = add_subscriber(&mut c, recv.url("/slow"), vec![], "statuspage").await;

    // About 2,000 deliveries for the slow endpoint: 10 incident writes that each change 200
    // components (one event per incident write and one per component).
    let mut components = Vec::new();
    for i in 0..COMPONENTS {
        components.push(create_component(&mut c, &format!("backlog {i}")).await);
    }
    let changes = |status: &str| -> Vec<pb::ComponentChange> {
        components
            .iter()
            .map(|id| pb::ComponentChange {
                component_id: id.clone(),
                status: status.into(),
            })
            .collect()
    };
    let created = c
        .create_incident(write(
            pb::CreateIncidentRequest {
                name: "Backlog".into(),
                status: Some("investigating".into()),
                body: "Everything at once.".into(),
                component_changes: changes("major_outage"),
                ..Default::default()
            },
            &key("inc"),
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(pb::write_reply::Entity::Incident(incident)) = created.entity else {
        panic!("expected an incident");
    };
    for round in 0..9 {
        let status = if round % 2 == 0 {
            "partial_outage"
        } else {
            "major_outage"
        };
        c.update_incident(write(
            pb::UpdateIncidentRequest {
                id: incident.id.clone(),
                body: format!("Round {round}."),
                component_changes: changes(status),
                ..Default::default()
            },
            &key("upd"),
        ))
        .await
        .unwrap();
    }

    // Then a hundred other subscribers, and one new incident for them (and the slow one).
    let mut others = Vec::new();
    for i in 0..OTHERS {
        let path = format!("/other/{i}");
        others.push(path.clone());
        add_subscriber(&mut c, recv.url(&path), vec![], "statuspage").await;
    }
    let before_slow = recv.on("/slow").len();
    let committed = Instant::now();
    let fresh = create_component(&mut c, "fresh").await;
    c.create_incident(write(
        pb::CreateIncidentRequest {
            name: "Fresh news".into(),
            status: Some("investigating".into()),
            body: "Everyone must hear this.".into(),
            component_changes: vec![pb::ComponentChange {
                component_id: fresh,
                status: "major_outage".into(),
            }],
            ..Default::default()
        },
        &key("inc"),
    ))
    .await
    .unwrap();
    let reached = recv
        .wait_for(Duration::from_secs(20), |all| {
            others.iter().all(|p| {
                all.iter()
                    .any(|r| &r.path == p && r.body.windows(10).any(|w| w == b"Fresh news"))
            })
        })
        .await;
    let took = committed.elapsed();
    let slow_done = recv.on("/slow").len() - before_slow;
    assert!(
        reached,
        "the new incident reached all {OTHERS} other subscribers (slow endpoint answered {slow_done} meanwhile)"
    );
    println!(
        "new incident reached {OTHERS} subscribers in {took:?} behind a backlog of ~2010 for {} (it answered {slow_done} meanwhile)",
        slow.id
    );
    assert!(
        took < Duration::from_secs(4),
        "{took:?}: the others waited behind the slow subscriber's backlog"
    );
}

/// The value of an unlabelled series in a node's `/metrics`.
async fn sample(node: &TestNode, name: &str) -> f64 {
    metric(node, name)
        .await
        .unwrap_or_else(|| panic!("node did not answer /metrics"))
}

/// Stops leaders (each restarted once the others have elected a new one) until the node at
/// index `want` leads (`leads`) or does not (`!leads`); returns the leader's index.
async fn lead_by(cluster: &mut TestCluster, want: usize, leads: bool) -> usize {
    for _ in 0..20 {
        let leader = cluster.wait_leader(LIMIT).await;
        if (leader == want) == leads {
            return leader;
        }
        cluster.stop(leader);
        let next = cluster.wait_leader(LIMIT).await;
        cluster.spawn(leader);
        if (next == want) == leads {
            // The restarted node rejoins as a follower of the new term.
            let settled = cluster.wait_leader(LIMIT).await;
            if (settled == want) == leads {
                return settled;
            }
        }
    }
    panic!(
        "node index {want} did not {} in 20 elections",
        if leads { "lead" } else { "step aside" }
    );
}

/// Item 9: a leader whose wall clock runs two days fast used to stamp its writes two days
/// ahead, so the state's time jumped for good (idempotency keys forgotten, events pruned).
/// Now its stamps are clamped to the time a majority of the voters report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_with_a_fast_clock_cannot_move_the_states_time() {
    use statusmesh_proto::admin as pb;
    const TWO_DAYS_MS: i64 = 2 * 24 * 3_600 * 1_000;
    let mut cluster = TestCluster::start_options(
        3,
        ClusterOptions {
            node_env: vec![(
                1,
                statusmesh_cluster::node::CLOCK_OFFSET_ENV.into(),
                TWO_DAYS_MS.to_string(),
            )],
            ..ClusterOptions::default()
        },
    );
    let fast = cluster.index_of(1);
    // A write committed while a node with a correct clock leads.
    let honest = lead_by(&mut cluster, fast, false).await;
    let mut c = cluster.admin(honest).await.unwrap();
    let first_key = key("before");
    let request = || component_request("written before the fast leader");
    c.create_component(write(request(), &first_key))
        .await
        .unwrap();

    // Then the fast node leads, and a write goes through it.
    lead_by(&mut cluster, fast, true).await;
    let mut f = cluster.admin(fast).await.unwrap();
    let reply = f
        .create_component(write(
            component_request("stamped by the fast leader"),
            &key("fast"),
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(pb::write_reply::Entity::Component(component)) = reply.entity else {
        panic!("expected a component");
    };
    let stamped =
        statusmesh_model::Timestamp::parse_rfc3339("created_at", &component.created_at).unwrap();
    let real = statusmesh_model::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    let ahead_ms = stamped.0 - real.0;
    assert!(
        ahead_ms < 30 * 1_000,
        "the write was stamped {ahead_ms} ms ahead of real time"
    );
    // The first write's key is still remembered: its retry is a replay, not a second write.
    let again = f
        .create_component(write(request(), &first_key))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed, "the retry applied twice: {again:?}");
    let clamped = sample(&cluster.nodes[fast], "statusmesh_clock_clamped_total").await;
    assert!(clamped >= 1.0, "clamps counted: {clamped}");
    let largest = sample(
        &cluster.nodes[fast],
        "statusmesh_clock_largest_clamp_seconds",
    )
    .await;
    assert!(largest > 47.0 * 3600.0, "{largest}");
    assert!(cluster.nodes[fast]
        .log()
        .contains("this node's clock runs ahead"));
    println!("fast leader's write stamped {ahead_ms} ms from real time; largest clamp {largest} s");
}
