//! The fire drill (`statusmesh demo --drill`): with the demo cluster up, take the leader's
//! region down the hard way (SIGKILL), post an incident through a surviving region, and report
//! in plain words what a customer and an operator would have seen; then bring the region back.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use axum::body::Bytes;
use axum::http::HeaderMap;
use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_proto::authed;

use super::nodes::{admin_client, DemoNode};
use crate::config::Config;

const SUBSCRIBERS: usize = 3;
const LIMIT: Duration = Duration::from_secs(30);

/// One webhook the drill's receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    path: String,
    webhook_id: String,
    verified: bool,
}

#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<Delivery>>,
    secrets: Mutex<BTreeMap<String, String>>,
}

fn key(what: &str) -> String {
    format!("drill-{what}-{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// Runs the drill against the demo's nodes; `Ok(true)` when the cluster rode it out.
pub(crate) async fn run(
    configs: &[Config],
    endpoints: &[String],
    ca: Option<&std::path::Path>,
    nodes: &mut [DemoNode],
    token: &str,
) -> anyhow::Result<bool> {
    let admin = |endpoint: &str| {
        let endpoint = endpoint.to_owned();
        async move { admin_client(&endpoint, ca, LIMIT).await }
    };
    fn req<T>(token: &str, m: T) -> anyhow::Result<tonic::Request<T>> {
        authed(m, token, None).map_err(anyhow::Error::from)
    }
    fn wreq<T>(token: &str, m: T, k: &str) -> anyhow::Result<tonic::Request<T>> {
        authed(m, token, Some(k)).map_err(anyhow::Error::from)
    }

    // A local receiver standing in for the subscribers' endpoints.
    let receiver = Arc::new(Receiver::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route(
            "/{*path}",
            axum::routing::post(
                |axum::extract::State(r): axum::extract::State<Arc<Receiver>>,
                 axum::extract::Path(path): axum::extract::Path<String>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
                    let path = format!("/{path}");
                    let secret = r.secrets.lock().ok().and_then(|s| s.get(&path).cloned());
                    let verified = secret.is_some_and(|s| {
                        let now = chrono::Utc::now().timestamp();
                        statusmesh_webhook::signature::verify(
                            &s,
                            h("webhook-id"),
                            h("webhook-timestamp"),
                            h("webhook-signature"),
                            &body,
                            now,
                        )
                        .is_ok()
                    });
                    if let Ok(mut got) = r.got.lock() {
                        got.push(Delivery {
                            path,
                            webhook_id: h("webhook-id").unwrap_or("").to_owned(),
                            verified,
                        });
                    }
                    axum::http::StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(receiver.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
    });

    // Who leads, and the subscribers.
    let mut any = admin(&endpoints[0]).await?;
    let status = any
        .cluster_status(req(token, pb::ClusterStatusRequest {})?)
        .await?
        .into_inner();
    let leader_id = status
        .leader_id
        .context("no leader: is the demo cluster healthy?")?;
    let leader = configs
        .iter()
        .position(|c| c.node_id == leader_id)
        .context("the leader is not one of the demo's nodes")?;
    let survivors: Vec<usize> = (0..configs.len()).filter(|&i| i != leader).collect();
    let region = |i: usize| configs[i].region.clone();
    let mut sub_ids = Vec::new();
    for n in 0..SUBSCRIBERS {
        let path = format!("/drill/{n}");
        let r = any
            .add_subscriber(wreq(
                token,
                pb::AddSubscriberRequest {
                    url: format!("http://{addr}{path}"),
                    description: Some("fire drill".into()),
                    ..Default::default()
                },
                &key("sub"),
            )?)
            .await?
            .into_inner();
        let Some(Entity::Subscriber(s)) = r.entity else {
            bail!("no subscriber in the reply");
        };
        if let Ok(mut secrets) = receiver.secrets.lock() {
            secrets.insert(path, s.secret.clone());
        }
        sub_ids.push(s.id);
    }
    println!(
        "\nFire drill: losing the leader's region ({})",
        region(leader)
    );
    println!(
        "  {SUBSCRIBERS} webhook subscribers on a local receiver; the public pages of {} are read every 20 ms.",
        survivors.iter().map(|&i| region(i)).collect::<Vec<_>>().join(" and ")
    );

    // Public reads in the surviving regions throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let reader = {
        let urls: Vec<String> = survivors
            .iter()
            .map(|&i| format!("http://{}/api/v2/summary.json", configs[i].listen.public))
            .collect();
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_default();
            while !stop.load(Ordering::Relaxed) {
                for u in &urls {
                    sent.fetch_add(1, Ordering::Relaxed);
                    let ok = http
                        .get(u)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // The region goes dark.
    let down_at = Instant::now();
    nodes[leader].kill().await;
    println!(
        "  {}  {} (node {}, the leader) is taken down with SIGKILL: no goodbye, like a power cut.",
        chrono::Local::now().format("%H:%M:%S"),
        region(leader),
        leader_id
    );
    let mut via = admin(&endpoints[survivors[1]]).await?;
    let title = format!("Drill: {} is down", region(leader));
    let r = via
        .create_incident(wreq(
            token,
            pb::CreateIncidentRequest {
                name: title.clone(),
                impact: Some("minor".into()),
                body: "A fire drill: this region was switched off on purpose.".into(),
                ..Default::default()
            },
            &key("incident"),
        )?)
        .await
        .context("the drill incident could not be posted through a surviving region")?
        .into_inner();
    let unavailable = down_at.elapsed();
    let Some(Entity::Incident(incident)) = r.entity else {
        bail!("no incident in the reply");
    };
    let now_status = via
        .cluster_status(req(token, pb::ClusterStatusRequest {})?)
        .await?
        .into_inner();
    let new_leader = now_status
        .leader_id
        .and_then(|l| configs.iter().position(|c| c.node_id == l));
    println!(
        "  {}  {} now leads.",
        chrono::Local::now().format("%H:%M:%S"),
        new_leader.map_or("nobody".to_owned(), region)
    );
    println!(
        "  Writes were unavailable for {:.1} s: \"{title}\" was accepted through {} {:.1} s after the loss.",
        unavailable.as_secs_f64(),
        region(survivors[1]),
        unavailable.as_secs_f64()
    );

    // Every subscriber hears about it.
    let wanted: BTreeSet<String> = (0..SUBSCRIBERS).map(|n| format!("/drill/{n}")).collect();
    let deadline = Instant::now() + LIMIT;
    let mut reached = BTreeSet::new();
    while Instant::now() < deadline {
        reached = receiver
            .got
            .lock()
            .map(|g| g.iter().map(|d| d.path.clone()).collect())
            .unwrap_or_default();
        if wanted.is_subset(&reached) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = receiver.got.lock().map(|g| g.clone()).unwrap_or_default();
    let all_verified = got.iter().all(|d| d.verified);
    let distinct: BTreeSet<(String, String)> = got
        .iter()
        .map(|d| (d.path.clone(), d.webhook_id.clone()))
        .collect();
    let notified = wanted.intersection(&reached).count();
    println!(
        "  Notifications: {notified} of {SUBSCRIBERS} subscribers received it ({} deliveries, {} duplicates with the same webhook-id, signatures {}).",
        got.len(),
        got.len() - distinct.len(),
        if all_verified { "valid" } else { "NOT all valid" }
    );

    // Bring the region back.
    nodes[leader].respawn().await?;
    let back_at = Instant::now();
    let mut back = None;
    while back_at.elapsed() < LIMIT {
        if let Ok(mut c) = admin(&endpoints[leader]).await {
            if let Ok(s) = c
                .cluster_status(req(token, pb::ClusterStatusRequest {})?)
                .await
            {
                let s = s.into_inner();
                if s.applied_index >= r.index && s.leader_id.is_some() {
                    back = Some(s);
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = reader.await;
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!(
        "  Public pages: {sent} reads in {} during the drill, {failed} failed.",
        survivors
            .iter()
            .map(|&i| region(i))
            .collect::<Vec<_>>()
            .join(" and ")
    );
    match &back {
        Some(s) => println!(
            "  {} is back: restarted and caught up in {:.1} s; it is now a {}.",
            region(leader),
            back_at.elapsed().as_secs_f64(),
            s.state
        ),
        None => println!("  {} did not catch up within {LIMIT:?}.", region(leader)),
    }

    // Clean up: resolve the drill incident, remove the drill's subscribers.
    let _ = via
        .resolve_incident(wreq(
            token,
            pb::ResolveIncidentRequest {
                id: incident.id.clone(),
                body: Some("The drill is over; the region is back.".into()),
                ..Default::default()
            },
            &key("resolve"),
        )?)
        .await;
    for id in sub_ids {
        let _ = via
            .remove_subscriber(wreq(token, pb::IdRequest { id }, &key("unsub"))?)
            .await;
    }
    let _ = stop_tx.send(());
    let _ = server.await;

    let ok = failed == 0 && notified == SUBSCRIBERS && all_verified && back.is_some();
    println!(
        "  The drill incident was resolved and its subscribers removed.\n\nResult: {}",
        if ok {
            "the cluster rode out the loss of a region: customers kept reading, operators kept writing, every subscriber was told."
        } else {
            "the drill found a problem (see above)."
        }
    );
    Ok(ok)
}
