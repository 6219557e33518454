//! Checking what subscribers received: signatures (ours and the reference Standard Webhooks
//! verifier), completeness over a set of events, and the admin calls the notification tests
//! share.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_webhook::signature;

use crate::receiver::{Received, Receiver};
use crate::{key, read, write};

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Checks a delivery with our verifier and with the reference Standard Webhooks library.
pub fn verify(r: &Received, secret: &str) -> Result<(), signature::VerifyError> {
    let ours = signature::verify(
        secret,
        r.webhook_id.as_deref(),
        r.timestamp.as_deref(),
        r.signature.as_deref(),
        &r.body,
        now_secs(),
    );
    let reference = standardwebhooks::Webhook::new(secret)
        .and_then(|wh| wh.verify(&r.body, &r.headers))
        .is_ok();
    assert_eq!(
        ours.is_ok(),
        reference,
        "our verifier and the reference disagree on {r:?}"
    );
    ours
}

pub fn body(r: &Received) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// The webhook-ids of the newest `limit` events, as the node behind `c` holds them.
pub async fn event_ids(
    c: &pb::admin_client::AdminClient<tonic::transport::Channel>,
    limit: u32,
) -> Vec<String> {
    c.clone()
        .list_events(read(pb::ListEventsRequest { limit, kind: None }))
        .await
        .unwrap()
        .into_inner()
        .events
        .into_iter()
        .map(|e| e.webhook_id)
        .collect()
}

/// Waits until every subscriber (a receiver path, with its secret) has got every event, then
/// checks that every request carried one of those ids and a valid signature; returns them all.
pub async fn assert_all_delivered(
    recv: &Receiver,
    secrets: &BTreeMap<String, String>,
    events: &[String],
) -> Vec<Received> {
    let complete = |r: &[Received]| {
        let got: BTreeSet<(String, String)> = r
            .iter()
            .map(|x| (x.path.clone(), x.webhook_id.clone().unwrap_or_default()))
            .collect();
        secrets
            .keys()
            .all(|p| events.iter().all(|e| got.contains(&(p.clone(), e.clone()))))
    };
    assert!(
        recv.wait_for(Duration::from_secs(60), complete).await,
        "not every subscriber got every event: {} requests",
        recv.count()
    );
    let all = recv.requests();
    for r in &all {
        assert!(
            events.contains(r.webhook_id.as_ref().unwrap()),
            "unknown id {r:?}"
        );
        verify(r, &secrets[&r.path]).unwrap();
    }
    all
}

pub async fn add_subscriber(
    c: &mut pb::admin_client::AdminClient<tonic::transport::Channel>,
    url: String,
    components: Vec<String>,
    format: &str,
) -> pb::Subscriber {
    let r = c
        .add_subscriber(write(
            pb::AddSubscriberRequest {
                url,
                component_ids: components,
                format: format.into(),
                owner: Some("ops@example.com".into()),
                description: None,
            },
            &key("sub"),
        ))
        .await
        .unwrap()
        .into_inner();
    match r.entity {
        Some(Entity::Subscriber(s)) => s,
        other => panic!("expected a subscriber, got {other:?}"),
    }
}

/// Imports one webhook subscriber per URL through `ImportSubscribers` (one call, one
/// idempotency key); answers how many were imported.
pub async fn import_webhooks(
    c: &mut pb::admin_client::AdminClient<tonic::transport::Channel>,
    urls: impl IntoIterator<Item = String>,
) -> Result<u64, tonic::Status> {
    let rows: Vec<pb::ImportSubscriberRow> = urls
        .into_iter()
        .map(|url| pb::ImportSubscriberRow {
            subscriber: Some(pb::AddSubscriberRequest {
                url,
                ..Default::default()
            }),
            secret: None,
        })
        .collect();
    let reply = c
        .import_subscribers(write(futures::stream::iter(rows), &key("import")))
        .await?;
    Ok(reply.into_inner().imported)
}

/// The fan-out benchmarks' incident, created before the subscribers are imported so that the
/// measured update is the only fan-out.
pub async fn bench_incident(
    c: &mut pb::admin_client::AdminClient<tonic::transport::Channel>,
) -> anyhow::Result<pb::Incident> {
    let created = c
        .create_incident(write(
            pb::CreateIncidentRequest {
                name: "Elevated API errors".into(),
                body: "We are investigating.".into(),
                ..Default::default()
            },
            &key("inc"),
        ))
        .await?
        .into_inner();
    match created.entity {
        Some(Entity::Incident(incident)) => Ok(incident),
        _ => anyhow::bail!("no incident in the reply"),
    }
}

/// The fan-out benchmarks' measured write: one update of `incident`.
pub async fn bench_update(
    c: &mut pb::admin_client::AdminClient<tonic::transport::Channel>,
    incident: &pb::Incident,
) -> Result<(), tonic::Status> {
    c.update_incident(write(
        pb::UpdateIncidentRequest {
            id: incident.id.clone(),
            status: Some("identified".into()),
            body: "The cause is identified; a fix is rolling out.".into(),
            ..Default::default()
        },
        &key("upd"),
    ))
    .await?;
    Ok(())
}
