//! One function per noun: builds the request, calls the API, prints the reply.

use anyhow::{anyhow, Context as _};
use statusmesh_proto::admin::{self as pb, Consistency};

use crate::args::*;
use crate::client::Client;
use crate::output;

pub struct Ctx {
    pub client: Client,
    pub out: Output,
    pub linearizable: bool,
}

impl Ctx {
    fn consistency(&self) -> i32 {
        (if self.linearizable {
            Consistency::Linearizable
        } else {
            Consistency::Local
        }) as i32
    }

    fn read(&self) -> pb::ReadRequest {
        pb::ReadRequest {
            consistency: self.consistency(),
        }
    }

    fn get(&self, id: String) -> pb::GetRequest {
        pb::GetRequest {
            id,
            consistency: self.consistency(),
        }
    }

    async fn write<Req: Clone>(
        &self,
        message: Req,
        f: impl AsyncFn(
            &mut pb::admin_client::AdminClient<tonic::transport::Channel>,
            tonic::Request<Req>,
        ) -> Result<tonic::Response<pb::WriteReply>, tonic::Status>,
    ) -> anyhow::Result<()> {
        let reply = self.client.call(true, message, f).await?;
        output::write(self.out, &reply)
    }
}

fn parse_changes(items: &[String]) -> anyhow::Result<Vec<pb::ComponentChange>> {
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
                .client
                .call(false, ctx.read(), async |c, r| c.get_page(r).await)
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
        } => {
            ctx.write(
                pb::SetPageRequest {
                    name,
                    url,
                    time_zone,
                    emit_maintenance_status,
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
                .client
                .call(false, ctx.read(), async |c, r| c.list_components(r).await)
                .await?;
            output::components(ctx.out, &l)
        }
        ComponentCmd::Get { id } => {
            let comp = ctx
                .client
                .call(false, ctx.get(id), async |c, r| c.get_component(r).await)
                .await?;
            output::components(
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
            let l = ctx
                .client
                .call(false, m, async |c, r| c.list_incidents(r).await)
                .await?;
            output::incidents(ctx.out, &l)
        }
        IncidentCmd::Get { id } => {
            let i = ctx
                .client
                .call(false, ctx.get(id), async |c, r| c.get_incident(r).await)
                .await?;
            output::incident(ctx.out, &i)
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
                .client
                .call(false, ctx.read(), async |c, r| c.list_maintenances(r).await)
                .await?;
            output::maintenances(ctx.out, &l)
        }
        MaintenanceCmd::Get { id } => {
            let m = ctx
                .client
                .call(false, ctx.get(id), async |c, r| c.get_maintenance(r).await)
                .await?;
            if ctx.out == Output::Json {
                return output::json(&m);
            }
            output::maintenances(
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

pub async fn subscriber(ctx: &Ctx, cmd: SubscriberCmd) -> anyhow::Result<()> {
    match cmd {
        SubscriberCmd::Add {
            url,
            components,
            format,
            owner,
            description,
        } => {
            let m = pb::AddSubscriberRequest {
                url,
                component_ids: components,
                description,
                format,
                owner,
            };
            ctx.write(m, async |c, r| c.add_subscriber(r).await).await
        }
        SubscriberCmd::List => {
            let l = ctx
                .client
                .call(false, ctx.read(), async |c, r| c.list_subscribers(r).await)
                .await?;
            output::subscribers(ctx.out, &l)
        }
        SubscriberCmd::Get { id } => {
            let s = ctx
                .client
                .call(false, ctx.get(id), async |c, r| c.get_subscriber(r).await)
                .await?;
            output::subscribers(
                ctx.out,
                &pb::SubscriberList {
                    subscribers: vec![s],
                },
            )
        }
        SubscriberCmd::Remove { id } => {
            ctx.write(pb::IdRequest { id }, async |c, r| {
                c.remove_subscriber(r).await
            })
            .await
        }
        SubscriberCmd::Enable { id, replay_since } => {
            let m = pb::SetSubscriberStateRequest {
                id,
                enabled: true,
                replay_since,
            };
            ctx.write(m, async |c, r| c.set_subscriber_state(r).await)
                .await
        }
        SubscriberCmd::Disable { id } => {
            let m = pb::SetSubscriberStateRequest {
                id,
                enabled: false,
                replay_since: None,
            };
            ctx.write(m, async |c, r| c.set_subscriber_state(r).await)
                .await
        }
        SubscriberCmd::RotateSecret { id, overlap } => {
            let overlap_seconds =
                parse_duration_secs(&overlap).with_context(|| format!("--overlap {overlap:?}"))?;
            let m = pb::RotateSecretRequest {
                id,
                overlap_seconds,
            };
            ctx.write(m, async |c, r| c.rotate_subscriber_secret(r).await)
                .await
        }
        SubscriberCmd::Deliveries { id, limit } => {
            let l = ctx
                .client
                .call(
                    false,
                    pb::ListDeliveriesRequest { id, limit },
                    async |c, r| c.list_deliveries(r).await,
                )
                .await?;
            output::deliveries(ctx.out, &l)
        }
        SubscriberCmd::Test { id } => {
            ctx.write(pb::IdRequest { id }, async |c, r| {
                c.test_subscriber(r).await
            })
            .await
        }
    }
}

pub async fn event(ctx: &Ctx, cmd: EventCmd) -> anyhow::Result<()> {
    match cmd {
        EventCmd::List { limit, kind } => {
            let l = ctx
                .client
                .call(
                    false,
                    pb::ListEventsRequest { limit, kind },
                    async |c, r| c.list_events(r).await,
                )
                .await?;
            output::events(ctx.out, &l)
        }
    }
}

pub async fn token(ctx: &Ctx, cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create { name, role } => {
            // The secret is made here and sent once; the cluster keeps only its hash, so a
            // retried call (same idempotency key, same secret) answers the same token.
            let secret = format!("smt_{}", hex::encode(rand::random::<[u8; 32]>()));
            let w = ctx
                .client
                .call(
                    true,
                    pb::CreateTokenRequest {
                        name,
                        role,
                        secret: secret.clone(),
                    },
                    async |c, r| c.create_token(r).await,
                )
                .await?;
            output::token_created(ctx.out, &w, &secret)
        }
        TokenCmd::List => {
            let l = ctx
                .client
                .call(
                    false,
                    pb::ReadRequest {
                        consistency: ctx.consistency(),
                    },
                    async |c, r| c.list_tokens(r).await,
                )
                .await?;
            output::tokens(ctx.out, &l)
        }
        TokenCmd::Revoke { name } => {
            let w = ctx
                .client
                .call(true, pb::RevokeTokenRequest { name }, async |c, r| {
                    c.revoke_token(r).await
                })
                .await?;
            output::write(ctx.out, &w)
        }
    }
}

pub async fn audit(ctx: &Ctx, cmd: AuditCmd) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::List {
            limit,
            actor,
            action,
            since,
        } => {
            let l = ctx
                .client
                .call(
                    false,
                    pb::ListAuditRequest {
                        limit,
                        actor,
                        action,
                        since,
                        consistency: ctx.consistency(),
                    },
                    async |c, r| c.list_audit(r).await,
                )
                .await?;
            output::audit(ctx.out, &l)
        }
    }
}

/// Streams a backup into `out` (through a temporary file, checked before it is kept).
pub async fn backup(ctx: &Ctx, out: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::{IsTerminal as _, Write as _};
    if out.exists() {
        anyhow::bail!(
            "{} already exists; choose another file (nothing was written)",
            out.display()
        );
    }
    let mut stream = ctx
        .client
        .call(
            false,
            pb::ReadRequest {
                consistency: ctx.consistency(),
            },
            async |c, r| c.backup(r).await,
        )
        .await?;
    let partial = out.with_extension("partial");
    let mut file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let (mut total, mut got, mut digest, mut index) = (0u64, 0u64, String::new(), 0u64);
    let progress = std::io::stderr().is_terminal();
    let result = async {
        while let Some(chunk) = stream.message().await? {
            if total == 0 {
                (total, digest, index) =
                    (chunk.total_bytes, chunk.digest.clone(), chunk.applied_index);
            }
            file.write_all(&chunk.data)?;
            got += chunk.data.len() as u64;
            if progress {
                eprint!(
                    "\rbackup: {got} / {total} bytes ({}%)",
                    got * 100 / total.max(1)
                );
            }
        }
        if progress {
            eprintln!();
        }
        file.sync_all()?;
        anyhow::ensure!(
            got == total,
            "the stream ended after {got} of {total} bytes"
        );
        // Check what was written before keeping it.
        let bytes = std::fs::read(&partial)?;
        let backup: statusmesh_model::backup::Backup = statusmesh_model::codec::decode(&bytes)?;
        backup.verified_state()?;
        anyhow::ensure!(
            backup.digest == digest,
            "the file's digest is not the one announced"
        );
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e.context("backup failed (nothing was kept)"));
    }
    std::fs::rename(&partial, out)?;
    if ctx.out == Output::Json {
        println!(
            "{}",
            serde_json::json!({"file": out.display().to_string(), "bytes": total, "digest": digest, "applied_index": index})
        );
    } else {
        println!(
            "backup of index {index} written to {} ({total} bytes, state digest {digest})",
            out.display()
        );
    }
    Ok(())
}

pub async fn whoami(ctx: &Ctx) -> anyhow::Result<()> {
    let id = ctx
        .client
        .call(
            false,
            pb::ReadRequest {
                consistency: ctx.consistency(),
            },
            async |c, r| c.who_am_i(r).await,
        )
        .await?;
    output::identity(ctx.out, &id)
}

pub async fn delivery(ctx: &Ctx, cmd: DeliveryCmd) -> anyhow::Result<()> {
    match cmd {
        DeliveryCmd::Replay {
            event_id,
            subscriber,
        } => {
            let m = pb::ReplayEventRequest {
                event_id,
                subscriber_id: subscriber,
            };
            ctx.write(m, async |c, r| c.replay_event(r).await).await
        }
        DeliveryCmd::Status => {
            let s = ctx
                .client
                .call(false, ctx.read(), async |c, r| c.outbox_status(r).await)
                .await?;
            output::outbox(ctx.out, &s)
        }
    }
}

/// `24h`, `30m`, `90s`, `2d` or a bare number of seconds.
fn parse_duration_secs(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow!("expected a number with a unit (s, m, h, d), e.g. 24h"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        other => return Err(anyhow!("unknown unit {other:?} (use s, m, h or d)")),
    };
    Ok(n.saturating_mul(mult))
}

pub async fn cluster(ctx: &Ctx, cmd: ClusterCmd) -> anyhow::Result<()> {
    let reply = match cmd {
        ClusterCmd::Status => {
            let s = ctx
                .client
                .call(false, pb::ClusterStatusRequest {}, async |c, r| {
                    c.cluster_status(r).await
                })
                .await?;
            return output::cluster(ctx.out, &s);
        }
        ClusterCmd::AddNode {
            id,
            region,
            peer_addr,
            admin_addr,
            public_addr,
        } => {
            let m = pb::AddNodeRequest {
                id,
                region,
                peer_addr,
                admin_addr,
                public_addr,
            };
            ctx.client
                .call(false, m, async |c, r| c.add_node(r).await)
                .await
                .context("add-node")?
        }
        ClusterCmd::Promote { id } => ctx
            .client
            .call(false, pb::NodeIdRequest { id }, async |c, r| {
                c.promote_node(r).await
            })
            .await
            .context("promote")?,
        ClusterCmd::RemoveNode { id } => ctx
            .client
            .call(false, pb::NodeIdRequest { id }, async |c, r| {
                c.remove_node(r).await
            })
            .await
            .context("remove-node")?,
    };
    if ctx.out == Output::Json {
        return output::json(&reply);
    }
    println!("membership committed at index {}\n", reply.index);
    output::members(&reply.members);
    Ok(())
}
