//! `Backup`: one consistent cut of the replicated state, codec-encoded with its digest and
//! streamed in chunks (the first carries the size, digest and applied index).

use statusmesh_cluster::ClusterNode;
use statusmesh_model::Timestamp;
use statusmesh_proto::admin::{self as pb, Consistency};
use tonic::{Request, Response, Status};

use super::{AdminService, Reply};
use crate::errors::propose_status;
use crate::request::request_id;

/// What `Backup` answers with.
pub(super) type BackupStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<pb::BackupChunk, Status>> + Send + 'static>,
>;

impl AdminService {
    pub(super) async fn stream_backup(&self, req: Request<pb::ReadRequest>) -> Reply<BackupStream> {
        let caller = self.authorize(&req, "Backup").await?;
        if req.get_ref().consistency == Consistency::Linearizable as i32 {
            self.node
                .linearizable_barrier(self.write_timeout)
                .await
                .map_err(|e| propose_status(&e))?;
        }
        let streamed = chunks(&self.node)?;
        // Audited (a backup exports every secret), without holding the backup up: a backup
        // is also how a cluster that lost its quorum is saved, when nothing can commit.
        self.record_access(
            &caller,
            request_id(&req),
            statusmesh_model::command::Access::Backup {
                digest: streamed.digest,
                applied_index: streamed.applied_index,
            },
        );
        Ok(Response::new(Box::pin(futures::stream::iter(
            streamed.chunks,
        ))))
    }
}

/// Backups are streamed in chunks of this size.
const BACKUP_CHUNK: usize = 256 * 1024;

/// A backup's stream, and what identifies it (its digest and applied index, for the audit).
pub(super) struct Streamed {
    pub chunks: Vec<Result<pb::BackupChunk, Status>>,
    pub digest: String,
    pub applied_index: u64,
}

/// The stream's chunks for this node's replica as it is now.
pub(super) fn chunks(node: &ClusterNode) -> Result<Streamed, Status> {
    // One consistent cut: the state as of one applied index, copied under the read lock (the
    // subscribers are shared, not copied) and encoded off it.
    let (state, index) = {
        let data = node.replica().read();
        (data.state.clone(), data.last_applied.map_or(0, |l| l.index))
    };
    let backup = statusmesh_model::backup::Backup::of(
        &state,
        node.id,
        index,
        Timestamp(chrono::Utc::now().timestamp_millis()),
    )
    .map_err(|e| Status::internal(format!("cannot encode the state: {e}")))?;
    drop(state);
    let bytes = statusmesh_model::codec::encode(&backup)
        .map_err(|e| Status::internal(format!("cannot encode the backup: {e}")))?;
    let total = bytes.len() as u64;
    let chunks: Vec<Result<pb::BackupChunk, Status>> = bytes
        .chunks(BACKUP_CHUNK)
        .enumerate()
        .map(|(i, c)| {
            Ok(pb::BackupChunk {
                data: c.to_vec(),
                total_bytes: if i == 0 { total } else { 0 },
                digest: if i == 0 {
                    backup.digest.clone()
                } else {
                    String::new()
                },
                applied_index: if i == 0 { backup.applied_index } else { 0 },
            })
        })
        .collect();
    tracing::info!(
        bytes = total,
        index = backup.applied_index,
        "backup streamed"
    );
    Ok(Streamed {
        chunks,
        digest: backup.digest,
        applied_index: backup.applied_index,
    })
}
