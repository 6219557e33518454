//! Cluster status and membership changes.

use anyhow::Context as _;
use statusmesh_proto::admin as pb;

use super::Ctx;
use crate::args::*;
use crate::output;

pub async fn cluster(ctx: &Ctx, cmd: ClusterCmd) -> anyhow::Result<()> {
    let reply = match cmd {
        ClusterCmd::Status => {
            let s = ctx
                .ask(pb::ClusterStatusRequest {}, async |c, r| {
                    c.cluster_status(r).await
                })
                .await?;
            return output::show(ctx.out, &s);
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
            ctx.ask(m, async |c, r| c.add_node(r).await)
                .await
                .context("add-node")?
        }
        ClusterCmd::Promote { id } => ctx
            .ask(pb::NodeIdRequest { id }, async |c, r| {
                c.promote_node(r).await
            })
            .await
            .context("promote")?,
        ClusterCmd::RemoveNode { id } => ctx
            .ask(pb::NodeIdRequest { id }, async |c, r| {
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
