//! Who may operate: API tokens, the audit log, and who the caller is.

use statusmesh_proto::admin as pb;

use super::Ctx;
use crate::args::*;
use crate::output;

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
                .ask(
                    pb::ReadRequest {
                        consistency: ctx.consistency(),
                    },
                    async |c, r| c.list_tokens(r).await,
                )
                .await?;
            output::show(ctx.out, &l)
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
                .ask(
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
            output::show(ctx.out, &l)
        }
    }
}

pub async fn whoami(ctx: &Ctx) -> anyhow::Result<()> {
    let id = ctx
        .ask(
            pb::ReadRequest {
                consistency: ctx.consistency(),
            },
            async |c, r| c.who_am_i(r).await,
        )
        .await?;
    output::show(ctx.out, &id)
}
