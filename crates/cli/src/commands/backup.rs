//! `statusctl backup`: stream a consistent snapshot to a file, checked before it is kept.

use statusmesh_proto::admin as pb;

use super::Ctx;
use crate::args::*;

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
        .ask(
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
