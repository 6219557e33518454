//! Page, components, incidents and maintenances: what the status page shows.

use anyhow::anyhow;
use statusmesh_proto::admin as pb;

use super::Ctx;
use crate::args::*;
use crate::output;

pub(super) fn parse_changes(items: &[String]) -> anyhow::Result<Vec<pb::ComponentChange>> {
    items
        .iter()
        .map(|s| {
            let (id, status) = s.split_once('=').ok_or_else(|| {
                anyhow!("--component {s:?}: expected ID=STATUS, e.g. api=major_outage")
            })?;
            Ok(pb::ComponentChange {
                component_id: id.trim().into(),
                status: status.trim().into(),
            })
        })
        .collect()
}

pub async fn page(ctx: &Ctx, cmd: PageCmd) -> anyhow::Result<()> {
    match cmd {
        PageCmd::Get => {
            let p = ctx
                .ask(ctx.read(), async |c, r| c.get_page(r).await)
                .await?;
            if ctx.out == Output::Json {
                return output::json(&p);
            }
            println!(
                "{}  {}  ({})\nstatus: {} ({})",
                p.name, p.url, p.time_zone, p.description, p.indicator
            );
            Ok(())
        }
        PageCmd::Set {
            name,
            url,
            time_zone,
            emit_maintenance_status,
            email_subscriptions,
            webhook_subscriptions,
            mail_header,
            mail_footer,
        } => {
            ctx.write(
                pb::SetPageRequest {
                    name,
                    url,
                    time_zone,
                    emit_maintenance_status,
                    email_subscriptions,
                    webhook_subscriptions,
                    mail_header,
                    mail_footer,
                },
                async |c, r| c.set_page(r).await,
            )
            .await
        }
    }
}

pub async fn component(ctx: &Ctx, cmd: ComponentCmd) -> anyhow::Result<()> {
    match cmd {
        ComponentCmd::Create {
            name,
            description,
            group_id,
            group,
            position,
            status,
            showcase,
            only_show_if_degraded,
        } => {
            let m = pb::CreateComponentRequest {
                name,
                description,
                position,
                status,
                group_id,
                group,
                showcase,
                only_show_if_degraded,
            };
            ctx.write(m, async |c, r| c.create_component(r).await).await
        }
        ComponentCmd::List => {
            let l = ctx
                .ask(ctx.read(), async |c, r| c.list_components(r).await)
                .await?;
            output::show(ctx.out, &l)
        }
        ComponentCmd::Get { id } => {
            let comp = ctx
                .ask(ctx.get(id), async |c, r| c.get_component(r).await)
                .await?;
            output::show(
                ctx.out,
                &pb::ComponentList {
                    components: vec![comp],
                },
            )
        }
        ComponentCmd::Update {
            id,
            name,
            description,
            position,
            group_id,
            showcase,
            only_show_if_degraded,
        } => {
            let m = pb::UpdateComponentRequest {
                id,
                name,
                description,
                position,
                group_id,
                showcase,
                only_show_if_degraded,
            };
            ctx.write(m, async |c, r| c.update_component(r).await).await
        }
        ComponentCmd::SetStatus { id, status } => {
            ctx.write(
                pb::SetComponentStatusRequest { id, status },
                async |c, r| c.set_component_status(r).await,
            )
            .await
        }
        ComponentCmd::Delete { id } => {
            ctx.write(pb::IdRequest { id }, async |c, r| {
                c.delete_component(r).await
            })
            .await
        }
    }
}

pub async fn incident(ctx: &Ctx, cmd: IncidentCmd) -> anyhow::Result<()> {
    match cmd {
        IncidentCmd::Create {
            name,
            body,
            status,
            impact,
            started_at,
            changes,
        } => {
            let m = pb::CreateIncidentRequest {
                name,
                status,
                impact,
                body,
                started_at,
                component_changes: parse_changes(&changes.components)?,
            };
            ctx.write(m, async |c, r| c.create_incident(r).await).await
        }
        IncidentCmd::Update {
            id,
            body,
            status,
            impact,
            name,
            changes,
        } => {
            let m = pb::UpdateIncidentRequest {
                id,
                status,
                impact,
                name,
                body,
                component_changes: parse_changes(&changes.components)?,
            };
            ctx.write(m, async |c, r| c.update_incident(r).await).await
        }
        IncidentCmd::Resolve {
            id,
            body,
            keep_component_status,
        } => {
            ctx.write(
                pb::ResolveIncidentRequest {
                    id,
                    body,
                    keep_component_status,
                },
                async |c, r| c.resolve_incident(r).await,
            )
            .await
        }
        IncidentCmd::Postmortem { id, body } => {
            ctx.write(pb::PostmortemRequest { id, body }, async |c, r| {
                c.publish_postmortem(r).await
            })
            .await
        }
        IncidentCmd::List { unresolved, limit } => {
            let m = pb::ListIncidentsRequest {
                consistency: ctx.consistency(),
                unresolved_only: unresolved,
                limit,
            };
            let l = ctx.ask(m, async |c, r| c.list_incidents(r).await).await?;
            output::show(ctx.out, &l)
        }
        IncidentCmd::Get { id } => {
            let i = ctx
                .ask(ctx.get(id), async |c, r| c.get_incident(r).await)
                .await?;
            output::show(ctx.out, &i)
        }
    }
}

pub async fn maintenance(ctx: &Ctx, cmd: MaintenanceCmd) -> anyhow::Result<()> {
    match cmd {
        MaintenanceCmd::Schedule {
            name,
            body,
            from,
            until,
            components,
            manual,
        } => {
            let m = pb::ScheduleMaintenanceRequest {
                name,
                body,
                scheduled_for: from,
                scheduled_until: until,
                component_ids: components,
                manual_transitions: manual,
            };
            ctx.write(m, async |c, r| c.schedule_maintenance(r).await)
                .await
        }
        MaintenanceCmd::List => {
            let l = ctx
                .ask(ctx.read(), async |c, r| c.list_maintenances(r).await)
                .await?;
            output::show(ctx.out, &l)
        }
        MaintenanceCmd::Get { id } => {
            let m = ctx
                .ask(ctx.get(id), async |c, r| c.get_maintenance(r).await)
                .await?;
            if ctx.out == Output::Json {
                return output::json(&m);
            }
            output::show(
                ctx.out,
                &pb::MaintenanceList {
                    maintenances: vec![m.clone()],
                },
            )?;
            for u in &m.updates {
                println!("\n{}  [{}]\n  {}", u.created_at, u.status, u.body);
            }
            Ok(())
        }
        MaintenanceCmd::Update {
            id,
            name,
            from,
            until,
            components,
            status,
            body,
        } => {
            let m = pb::UpdateMaintenanceRequest {
                id,
                name,
                scheduled_for: from,
                scheduled_until: until,
                set_components: components.is_some(),
                component_ids: components.unwrap_or_default(),
                status,
                body,
            };
            ctx.write(m, async |c, r| c.update_maintenance(r).await)
                .await
        }
        MaintenanceCmd::Cancel { id, body } => {
            ctx.write(pb::CancelMaintenanceRequest { id, body }, async |c, r| {
                c.cancel_maintenance(r).await
            })
            .await
        }
    }
}
