//! Webhooks end to end: real `statusmesh` processes deliver to a receiver on loopback.
//! Signatures are checked with the Standard Webhooks verification, formats and filters by
//! reading the bodies, the failure policy against a receiver programmed to misbehave, and
//! failover by killing the leader in the middle of a fan-out.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_server::config::WebhooksConfig;
use statusmesh_tests::notify::*;
use statusmesh_tests::receiver::{Behavior, Receiver};
use statusmesh_tests::*;

const LIMIT: Duration = Duration::from_secs(30);

async fn create_incident(
    c: &mut pb::admin_client::AdminClient<tonic::transport::Channel>,
    component: &str,
) -> String {
    let r = c
        .create_incident(write(
            pb::CreateIncidentRequest {
                name: "API errors".into(),
                status: Some("investigating".into()),
                impact: Some("major".into()),
                body: "We are looking into elevated error rates.".into(),
                component_changes: vec![pb::ComponentChange {
                    component_id: component.into(),
                    status: "major_outage".into(),
                }],
                ..Default::default()
            },
            &key("inc"),
        ))
        .await
        .unwrap()
        .into_inner();
    match r.entity {
        Some(Entity::Incident(i)) => i.id,
        other => panic!("expected an incident, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_deliveries_in_every_format_follow_component_filters() {
    let recv = Receiver::start().await;
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_leader(LIMIT).await;
    let follower = (leader + 1) % 3;
    let mut c = cluster.admin(follower).await.unwrap();
    let api = create_component(&mut c, "API").await;
    let cdn = create_component(&mut c, "CDN").await;
    let all = add_subscriber(&mut c, recv.url("/all"), vec![], "statuspage").await;
    let slack = add_subscriber(&mut c, recv.url("/slack"), vec![api.clone()], "slack").await;
    let discord = add_subscriber(&mut c, recv.url("/discord"), vec![cdn.clone()], "discord").await;
    let incident = create_incident(&mut c, &api).await;

    // The whole-page subscriber and the API filter get the incident and the component change.
    assert!(
        recv.wait_for(LIMIT, |r| {
            r.iter().filter(|x| x.path == "/all").count() >= 2
                && r.iter().filter(|x| x.path == "/slack").count() >= 2
        })
        .await,
        "deliveries did not arrive: {:?}",
        recv.requests()
    );
    let got = recv.on("/all");
    for r in &got {
        verify(r, &all.secret).unwrap();
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert!(r.webhook_id.as_deref().unwrap().starts_with("msg_"));
    }
    let inc = got
        .iter()
        .map(body)
        .find(|b| b.get("incident").is_some())
        .unwrap();
    assert_eq!(inc["incident"]["id"], incident.as_str());
    assert_eq!(
        inc["incident"]["incident_updates"][0]["status"],
        "investigating"
    );
    assert_eq!(inc["page"]["status_indicator"], "critical");
    assert_eq!(inc["meta"]["event_type"], "incident.created");
    let comp = got
        .iter()
        .map(body)
        .find(|b| b.get("component").is_some())
        .unwrap();
    assert_eq!(comp["component_update"]["old_status"], "operational");
    assert_eq!(comp["component_update"]["new_status"], "major_outage");
    assert_eq!(comp["component"]["id"], api.as_str());
    // Slack: fallback text and blocks; signed with its own secret only.
    for r in recv.on("/slack") {
        verify(&r, &slack.secret).unwrap();
        assert!(verify(&r, &all.secret).is_err());
        let b = body(&r);
        assert!(b["text"].as_str().unwrap().contains("API"));
        assert_eq!(b["blocks"][0]["type"], "header");
    }
    // The CDN filter saw nothing yet; a CDN change reaches it as a Discord message.
    assert!(recv.on("/discord").is_empty());
    c.set_component_status(write(
        pb::SetComponentStatusRequest {
            id: cdn.clone(),
            status: "degraded_performance".into(),
        },
        &key("cdn"),
    ))
    .await
    .unwrap();
    assert!(
        recv.wait_for(LIMIT, |r| r.iter().any(|x| x.path == "/discord"))
            .await
    );
    let d = &recv.on("/discord")[0];
    verify(d, &discord.secret).unwrap();
    let b = body(d);
    assert!(b["content"].as_str().unwrap().contains("CDN"));
    assert_eq!(b["embeds"][0]["fields"][0]["value"], "degraded_performance");
    assert_eq!(b["allowed_mentions"]["parse"], serde_json::json!([]));

    // Rotation: during the overlap both secrets sign a test ping.
    let r = c
        .rotate_subscriber_secret(write(
            pb::RotateSecretRequest {
                id: all.id.clone(),
                overlap_seconds: 3600,
            },
            &key("rot"),
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(Entity::Subscriber(rotated)) = r.entity else {
        panic!("expected the subscriber")
    };
    assert_ne!(rotated.secret, all.secret);
    assert!(rotated.previous_secret_until.is_some());
    let before = recv.on("/all").len();
    let r = c
        .test_subscriber(write(pb::IdRequest { id: all.id.clone() }, &key("ping")))
        .await
        .unwrap()
        .into_inner();
    let Some(Entity::EventId(ping_id)) = r.entity else {
        panic!("expected an event id")
    };
    assert!(
        recv.wait_for(LIMIT, |r| r.iter().filter(|x| x.path == "/all").count()
            > before)
            .await
    );
    let ping = recv.on("/all").pop().unwrap();
    assert_eq!(ping.webhook_id.as_deref(), Some(ping_id.as_str()));
    assert_eq!(ping.signature.as_deref().unwrap().split(' ').count(), 2);
    verify(&ping, &rotated.secret).unwrap();
    verify(&ping, &all.secret).unwrap();
    assert!(body(&ping).get("ping").is_some());

    // Operators see the events and the attempt log; secrets never appear there. Attempts are
    // recorded through Raft after the receiver answers: wait until they are on this node.
    wait_outbox_drained(&c, LIMIT).await;
    let events = c
        .list_events(read(pb::ListEventsRequest {
            limit: 10,
            kind: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(events[0].webhook_id, ping_id);
    assert!(events.iter().any(|e| e.kind == "incident.created"));
    let log = c
        .list_deliveries(read(pb::ListDeliveriesRequest {
            id: all.id.clone(),
            limit: 10,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(log.attempts.iter().all(|a| a.outcome == "delivered"));
    assert!(log.attempts.iter().any(|a| a.http_status == Some(204)));
    let shown = format!("{log:?}{events:?}");
    assert!(!shown.contains(&all.secret[6..]) && !shown.contains(&rotated.secret[6..]));
    let status = c
        .outbox_status(read(pb::ReadRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(status.delivered_total >= 6, "{status:?}");
    // Every subscriber received each event once (no failover here, no retries).
    let ids: Vec<String> = recv
        .requests()
        .iter()
        .map(|r| format!("{}{}", r.path, r.webhook_id.clone().unwrap()))
        .collect();
    assert_eq!(
        ids.len(),
        ids.iter().collect::<BTreeSet<_>>().len(),
        "{ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_throttling_redirects_timeouts_gone_and_quarantine() {
    let recv = Receiver::start().await;
    let cfg = WebhooksConfig {
        allow_loopback: true,
        request_timeout_ms: 1_000,
        retry_schedule_s: vec![0, 1, 1, 1],
        jitter_percent: 0,
        throttle_floor_s: 1,
        quarantine_failures: 100,
        ..WebhooksConfig::default()
    };
    let mut cluster = TestCluster::start_configured(3, 1000, cfg);
    cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(0).await.unwrap();
    let mut subs = BTreeMap::new();
    for (path, b) in [
        ("/flaky", Behavior::FailTimes(2)),
        ("/throttled", Behavior::Throttle { secs: 2 }),
        ("/redirect", Behavior::Redirect),
        ("/hang", Behavior::Hang),
        ("/gone", Behavior::Gone),
    ] {
        recv.set(path, b);
        let s = add_subscriber(&mut c, recv.url(path), vec![], "statuspage").await;
        subs.insert(path, s);
    }
    let r = c
        .test_subscriber(write(
            pb::IdRequest {
                id: subs["/flaky"].id.clone(),
            },
            &key("t"),
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(Entity::EventId(flaky_event)) = r.entity else {
        panic!()
    };
    for path in ["/throttled", "/redirect", "/hang", "/gone"] {
        c.test_subscriber(write(
            pb::IdRequest {
                id: subs[path].id.clone(),
            },
            &key("t"),
        ))
        .await
        .unwrap();
    }
    // Fails twice, succeeds on the third attempt with the same webhook-id and fresh timestamps.
    assert!(
        recv.wait_for(LIMIT, |r| r.iter().filter(|x| x.path == "/flaky").count()
            >= 3)
            .await
    );
    let flaky = recv.on("/flaky");
    assert!(flaky
        .iter()
        .all(|r| r.webhook_id.as_deref() == Some(flaky_event.as_str())));
    for r in &flaky {
        verify(r, &subs["/flaky"].secret).unwrap();
    }
    assert!(flaky[1].at.duration_since(flaky[0].at) >= Duration::from_millis(900));
    // 429 with Retry-After: 2 -> the second attempt waits at least 2 s.
    assert!(
        recv.wait_for(LIMIT, |r| r
            .iter()
            .filter(|x| x.path == "/throttled")
            .count()
            >= 2)
            .await
    );
    let t = recv.on("/throttled");
    assert!(t[1].at.duration_since(t[0].at) >= Duration::from_millis(1_900));
    // A redirect is a failure and is never followed; four attempts exhaust the schedule.
    let redirect_id = subs["/redirect"].id.clone();
    let quarantined = wait_subscriber_state(&c, &redirect_id, "quarantined", LIMIT).await;
    assert!(quarantined.state_reason.unwrap().contains("exhausted"));
    assert_eq!(recv.on("/redirect").len(), 4);
    assert!(recv.on("/redirect-target").is_empty());
    // 410 disables after a single attempt.
    let gone = wait_subscriber_state(&c, &subs["/gone"].id, "disabled", LIMIT).await;
    assert!(gone.state_reason.unwrap().contains("410"));
    assert_eq!(recv.on("/gone").len(), 1);
    // A hanging endpoint times out; the attempt log says so.
    let hang_id = subs["/hang"].id.clone();
    let log = eventually(LIMIT, "a timed-out attempt is recorded", || {
        let mut c = c.clone();
        let id = hang_id.clone();
        async move {
            let l = c
                .list_deliveries(read(pb::ListDeliveriesRequest { id, limit: 10 }))
                .await
                .unwrap()
                .into_inner();
            (!l.attempts.is_empty()).then_some(l)
        }
    })
    .await;
    let a = &log.attempts[0];
    assert!(
        a.error.as_deref().unwrap_or("").contains("timed out"),
        "{a:?}"
    );
    assert!(a.duration_ms >= 900, "{a:?}");
    // The quarantine is an event for operators.
    let events = c
        .list_events(read(pb::ListEventsRequest {
            limit: 50,
            kind: Some("subscriber.quarantined".into()),
        }))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(events.iter().any(|e| e.summary.contains(&redirect_id)));

    // Fixed endpoint, re-enabled with replay: the ping arrives again with its original id.
    recv.set("/redirect", Behavior::Ok);
    let first = recv.on("/redirect")[0].webhook_id.clone();
    c.set_subscriber_state(write(
        pb::SetSubscriberStateRequest {
            id: redirect_id.clone(),
            enabled: true,
            replay_since: Some("2000-01-01T00:00:00Z".into()),
        },
        &key("en"),
    ))
    .await
    .unwrap();
    // A ping is not a broadcast event; replay it explicitly.
    c.replay_event(write(
        pb::ReplayEventRequest {
            event_id: first.clone().unwrap(),
            subscriber_id: Some(redirect_id.clone()),
        },
        &key("rp"),
    ))
    .await
    .unwrap();
    assert!(
        recv.wait_for(LIMIT, |r| r
            .iter()
            .filter(|x| x.path == "/redirect")
            .count()
            >= 5)
            .await
    );
    assert_eq!(recv.on("/redirect")[4].webhook_id, first);
    wait_subscriber_state(&c, &redirect_id, "active", LIMIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_targets_are_refused_at_subscription_time() {
    let mut cluster = TestCluster::start_configured(1, 1000, WebhooksConfig::default());
    cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(0).await.unwrap();
    for (url, why) in [
        ("http://127.0.0.1:9/x", "loopback"),
        ("http://localhost:9/x", "localhost resolves to"),
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://10.1.2.3/x", "private"),
        ("http://[::ffff:127.0.0.1]/x", "IPv4-mapped"),
        ("http://100.64.0.1/x", "carrier-grade NAT"),
    ] {
        let e = c
            .add_subscriber(write(
                pb::AddSubscriberRequest {
                    url: url.into(),
                    ..Default::default()
                },
                &key("s"),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{url}");
        assert!(e.message().contains(why), "{url}: {}", e.message());
    }
    let subs = c
        .list_subscribers(read(pb::ListSubscribersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(subs.subscribers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_mid_fanout_loses_nothing() {
    const SUBSCRIBERS: usize = 200;
    let recv = Receiver::start().await;
    // Slow answers stretch the fan-out so the kill lands in the middle of it.
    recv.set_default(Behavior::Slow(Duration::from_millis(150)));
    let cfg = WebhooksConfig {
        allow_loopback: true,
        request_timeout_ms: 5_000,
        retry_schedule_s: vec![0, 1, 2, 2, 2, 2, 2, 2],
        max_in_flight: 24,
        ..WebhooksConfig::default()
    };
    let mut cluster = TestCluster::start_configured(3, 1000, cfg);
    let leader = cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin((leader + 1) % 3).await.unwrap();
    let api = create_component(&mut c, "API").await;
    let mut secrets = BTreeMap::new();
    for i in 0..SUBSCRIBERS {
        let path = format!("/s/{i}");
        let s = add_subscriber(&mut c, recv.url(&path), vec![], "statuspage").await;
        secrets.insert(path, s.secret);
    }
    create_incident(&mut c, &api).await;
    // Two events (incident + component change) per subscriber.
    let expected = 2 * SUBSCRIBERS;
    assert!(recv.wait_for(LIMIT, |r| r.len() >= expected / 5).await);
    let leader = cluster.wait_leader(LIMIT).await;
    cluster.kill(leader);
    let at_kill = recv.count();
    assert!(
        at_kill < expected,
        "the fan-out finished before the kill ({at_kill})"
    );

    let survivor = (leader + 1) % 3;
    let c = cluster.admin(survivor).await.unwrap();
    let events = event_ids(&c, 10).await;
    assert_eq!(events.len(), 2);
    let all = assert_all_delivered(&recv, &secrets, &events).await;
    // The outbox drains on the new leader, with nothing failed.
    let drained = wait_outbox_drained(&c, LIMIT).await;
    assert_eq!(drained.failed, 0, "{drained:?}");
    let duplicates = all.len() - expected;
    println!(
        "fan-out of {expected}: {at_kill} delivered before the kill, {} requests in all, {duplicates} duplicates (same webhook-id)",
        all.len()
    );
}

/// One incident per call, retried with the same idempotency key on the next endpoint until it
/// is acknowledged or `limit` passes; returns the incident id.
async fn create_incident_anywhere(
    endpoints: &[String],
    ca: &std::path::Path,
    n: usize,
    limit: Duration,
) -> Option<String> {
    let idem = key(&format!("rolling-{n}"));
    let deadline = tokio::time::Instant::now() + limit;
    let mut attempt = 0;
    while tokio::time::Instant::now() < deadline {
        let ep = &endpoints[(n + attempt) % endpoints.len()];
        attempt += 1;
        let Ok(mut c) = admin_client(ep, Some(ca)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let req = write(
            pb::CreateIncidentRequest {
                name: format!("Rolling {n}"),
                status: Some("investigating".into()),
                impact: Some("minor".into()),
                body: "Checking notifications during a rolling restart.".into(),
                ..Default::default()
            },
            &idem,
        );
        match c.create_incident(req).await {
            Ok(r) => match r.into_inner().entity {
                Some(Entity::Incident(i)) => return Some(i.id),
                other => panic!("expected an incident, got {other:?}"),
            },
            Err(s) if s.code() == tonic::Code::InvalidArgument => panic!("refused: {s:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    None
}

/// Every node is stopped with SIGTERM and restarted in turn, the leader included, while
/// incidents are written and fanned out: every acknowledged write is on every node, every
/// subscriber gets every event (signed, under the event's one webhook-id), the outbox drains
/// with nothing failed, and each node exits promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_loses_no_write_and_no_notification() {
    const SUBSCRIBERS: usize = 10;
    const WRITES: usize = 30;
    let recv = Receiver::start().await;
    // Slightly slow answers keep requests in flight when a leader is asked to stop.
    recv.set_default(Behavior::Slow(Duration::from_millis(40)));
    let cfg = WebhooksConfig {
        allow_loopback: true,
        request_timeout_ms: 5_000,
        retry_schedule_s: vec![0, 1, 1, 2, 2, 2, 2, 2],
        max_in_flight: 8,
        ..WebhooksConfig::default()
    };
    let mut cluster = TestCluster::start_configured(3, 1000, cfg);
    let leader = cluster.wait_leader(LIMIT).await;
    let mut c = cluster.admin(leader).await.unwrap();
    let mut secrets = BTreeMap::new();
    for i in 0..SUBSCRIBERS {
        let path = format!("/r/{i}");
        let s = add_subscriber(&mut c, recv.url(&path), vec![], "statuspage").await;
        secrets.insert(path, s.secret);
    }
    drop(c);

    let endpoints: Vec<String> = cluster.nodes.iter().map(|n| n.admin_endpoint()).collect();
    let ca = cluster.ca_cert().unwrap();
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let acked = acked.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..WRITES {
                let id = create_incident_anywhere(&endpoints, &ca, n, Duration::from_secs(40))
                    .await
                    .unwrap_or_else(|| panic!("write {n} was never acknowledged"));
                ids.push(id);
                acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            ids
        })
    };
    let wait_acked = |at_least: usize| {
        let acked = acked.clone();
        eventually(LIMIT, "writes to be acknowledged", move || {
            let n = acked.load(std::sync::atomic::Ordering::Relaxed);
            async move { (n >= at_least).then_some(()) }
        })
    };
    wait_acked(3).await;
    // Followers first, then the leader (the usual upgrade order); writes go on throughout.
    let leader = cluster.wait_leader(LIMIT).await;
    let order: Vec<usize> = (0..3)
        .filter(|&i| i != leader)
        .chain(std::iter::once(leader))
        .collect();
    let mut stop_times = Vec::new();
    for i in order {
        let before = acked.load(std::sync::atomic::Ordering::Relaxed);
        let t = std::time::Instant::now();
        cluster.stop(i);
        stop_times.push(t.elapsed());
        wait_acked(before + 2).await;
        cluster.spawn(i);
        cluster.wait_leader(LIMIT).await;
        cluster.wait_converged(LIMIT).await;
    }
    let ids = writer.await.unwrap();
    assert_eq!(ids.len(), WRITES);

    // Every acknowledged write is on every node.
    cluster.wait_converged(LIMIT).await;
    for i in 0..3 {
        let mut c = cluster.admin(i).await.unwrap();
        for id in &ids {
            c.get_incident(read(pb::GetRequest {
                id: id.clone(),
                ..Default::default()
            }))
            .await
            .unwrap_or_else(|e| panic!("incident {id} missing on node {}: {e}", i + 1));
        }
    }
    // One event per incident, each delivered to every subscriber.
    let leader = cluster.wait_leader(LIMIT).await;
    let c = cluster.admin(leader).await.unwrap();
    let events = event_ids(&c, 1000).await;
    assert_eq!(events.len(), WRITES, "one event per acknowledged incident");
    let all = assert_all_delivered(&recv, &secrets, &events).await;
    let drained = wait_outbox_drained(&c, LIMIT).await;
    assert_eq!(drained.failed, 0, "{drained:?}");
    let expected = WRITES * SUBSCRIBERS;
    println!(
        "rolling restart: {WRITES} writes acknowledged, {expected} notifications delivered in {} requests ({} duplicates); SIGTERM to exit: {:?}",
        all.len(),
        all.len() - expected,
        stop_times
    );
}
