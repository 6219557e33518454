//! The demo's first page: components in groups, an incident with its updates and a
//! maintenance, written once, when the cluster is empty.

use statusmesh_proto::admin::admin_client::AdminClient;
use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_proto::authed;

/// Seeds the page once: fixed idempotency keys make a repeated or interrupted seed harmless,
/// and an existing page (any component) is left alone.
pub(super) async fn seed_if_empty(
    c: &mut AdminClient<tonic::transport::Channel>,
    token: &str,
    page_url: &str,
) -> anyhow::Result<()> {
    let req = authed(
        pb::ReadRequest {
            consistency: pb::Consistency::Linearizable as i32,
        },
        token,
        None,
    )?;
    if !c
        .list_components(req)
        .await?
        .into_inner()
        .components
        .is_empty()
    {
        return Ok(());
    }
    let mut n = 0;
    let mut key = || {
        n += 1;
        format!("demo-seed-{n}")
    };
    c.set_page(w(
        token,
        pb::SetPageRequest {
            name: Some("Acme Cloud".into()),
            url: Some(page_url.into()),
            time_zone: Some("Europe/Paris".into()),
            emit_maintenance_status: None,
            email_subscriptions: None,
            webhook_subscriptions: None,
            mail_header: None,
            mail_footer: None,
        },
        key(),
    )?)
    .await?;
    let mut ids = std::collections::HashMap::new();
    for (name, group, desc) in [
        ("Platform", None, "Core services"),
        ("API", Some("Platform"), "Public REST API"),
        ("Dashboard", Some("Platform"), "Web console"),
        ("Database", Some("Platform"), "Managed PostgreSQL"),
        ("Regions", None, "Data centers"),
        ("Europe (Paris)", Some("Regions"), "eu-west"),
        ("North America (Montreal)", Some("Regions"), "ca-east"),
        ("Asia (Singapore)", Some("Regions"), "ap-southeast"),
        ("Email delivery", None, "Transactional email"),
    ] {
        let reply = c
            .create_component(w(
                token,
                pb::CreateComponentRequest {
                    name: name.into(),
                    description: Some(desc.into()),
                    group: group.is_none() && name != "Email delivery",
                    group_id: group.and_then(|g| ids.get(g).cloned()),
                    showcase: true,
                    ..Default::default()
                },
                key(),
            )?)
            .await?
            .into_inner();
        if let Some(Entity::Component(comp)) = reply.entity {
            ids.insert(name, comp.id);
        }
    }
    let id = |n: &str| ids.get(n).cloned().unwrap_or_default();
    c.create_incident(w(token, pb::CreateIncidentRequest {
        name: "Elevated API error rates in Europe".into(),
        status: Some("identified".into()),
        impact: Some("major".into()),
        body: "Some API requests served from Paris fail with 503. We have identified a faulty load balancer and are replacing it.".into(),
        started_at: None,
        component_changes: vec![
            pb::ComponentChange { component_id: id("API"), status: "partial_outage".into() },
            pb::ComponentChange { component_id: id("Europe (Paris)"), status: "degraded_performance".into() },
        ],
    }, key())?).await?;
    let start = chrono::Utc::now() + chrono::Duration::days(2);
    let end = start + chrono::Duration::hours(2);
    c.schedule_maintenance(w(
        token,
        pb::ScheduleMaintenanceRequest {
            name: "Database engine upgrade".into(),
            body: "We will upgrade the managed PostgreSQL fleet. Connections may drop briefly."
                .into(),
            scheduled_for: start.to_rfc3339(),
            scheduled_until: end.to_rfc3339(),
            component_ids: vec![id("Database")],
            manual_transitions: false,
        },
        key(),
    )?)
    .await?;
    Ok(())
}

fn w<T>(token: &str, message: T, key: String) -> anyhow::Result<tonic::Request<T>> {
    authed(message, token, Some(&key)).map_err(anyhow::Error::from)
}
