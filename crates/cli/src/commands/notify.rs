//! Webhook subscribers, the events kept in the outbox, and their deliveries.

use anyhow::{anyhow, bail, Context as _};
use statusmesh_proto::admin as pb;

use super::Ctx;
use crate::args::*;
use crate::output;

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
        SubscriberCmd::List {
            page_size,
            page_token,
            kind,
            state,
        } => {
            let one_page = page_size.is_some() || page_token.is_some();
            let req = pb::ListSubscribersRequest {
                consistency: ctx.consistency(),
                page_size: page_size.unwrap_or(0),
                page_token: page_token.unwrap_or_default(),
                kind: kind.unwrap_or_default(),
                state: state.unwrap_or_default(),
            };
            let all = list_subscribers(ctx, req, one_page).await?;
            output::show(ctx.out, &all)
        }
        SubscriberCmd::Import { csv, file } => {
            let file = csv.or(file).expect("clap requires one of them");
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let mut import =
                crate::csv::rows(&text).with_context(|| format!("{}", file.display()))?;
            if import.names_components {
                let components = ctx
                    .ask(ctx.read(), async |c, r| c.list_components(r).await)
                    .await?;
                import
                    .resolve_components(&components.components)
                    .with_context(|| format!("{}", file.display()))?;
            }
            let reply = ctx
                .client
                .call(true, import.rows, async |c, r| {
                    c.import_subscribers(r.map(tokio_stream::iter)).await
                })
                .await?;
            output::show(ctx.out, &reply)
        }
        SubscriberCmd::Export {
            statuspage,
            kind,
            state,
        } => {
            let me = ctx
                .ask(ctx.read(), async |c, r| c.who_am_i(r).await)
                .await?;
            if me.role != "admin" {
                bail!(
                    "export needs the admin role (addresses and chat URLs are masked below it); \
                     {} has the role {}",
                    me.name,
                    me.role
                );
            }
            let req = pb::ListSubscribersRequest {
                consistency: ctx.consistency(),
                kind: kind.unwrap_or_default(),
                state: state.unwrap_or_default(),
                ..Default::default()
            };
            let all = list_subscribers(ctx, req, false).await?;
            let text = if statuspage {
                let components = ctx
                    .ask(ctx.read(), async |c, r| c.list_components(r).await)
                    .await?;
                let (text, left_out) =
                    crate::csv::export_statuspage(&all.subscribers, &components.components);
                if left_out > 0 {
                    eprintln!(
                        "{left_out} chat subscribers (Slack, Discord) left out: Statuspage's \
                         layout has no row for them"
                    );
                }
                text
            } else {
                crate::csv::export(&all.subscribers)
            };
            use std::io::Write as _;
            std::io::stdout()
                .write_all(text.as_bytes())
                .context("writing standard output")
        }
        SubscriberCmd::Get { id } => {
            let s = ctx
                .ask(ctx.get(id), async |c, r| c.get_subscriber(r).await)
                .await?;
            output::show(
                ctx.out,
                &pb::SubscriberList {
                    subscribers: vec![s],
                    ..Default::default()
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
                .ask(pb::ListDeliveriesRequest { id, limit }, async |c, r| {
                    c.list_deliveries(r).await
                })
                .await?;
            output::show(ctx.out, &l)
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
                .ask(pb::ListEventsRequest { limit, kind }, async |c, r| {
                    c.list_events(r).await
                })
                .await?;
            output::show(ctx.out, &l)
        }
    }
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
                .ask(ctx.read(), async |c, r| c.outbox_status(r).await)
                .await?;
            output::show(ctx.out, &s)
        }
    }
}

/// `24h`, `30m`, `90s`, `2d` or a bare number of seconds.
pub(super) fn parse_duration_secs(s: &str) -> anyhow::Result<u64> {
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

/// The subscribers `req` lists: its page only, or every page from it on.
async fn list_subscribers(
    ctx: &Ctx,
    mut req: pb::ListSubscribersRequest,
    one_page: bool,
) -> anyhow::Result<pb::SubscriberList> {
    let mut all = pb::SubscriberList::default();
    loop {
        let page = ctx
            .ask(req.clone(), async |c, r| c.list_subscribers(r).await)
            .await?;
        all.subscribers.extend(page.subscribers);
        all.total = page.total;
        all.next_page_token = page.next_page_token;
        if one_page || all.next_page_token.is_empty() {
            return Ok(all);
        }
        req.page_token = all.next_page_token.clone();
    }
}
