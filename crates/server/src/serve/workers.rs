//! Everything a serving node runs besides Raft itself, and the order it stops in.
//!
//! Shutdown order (the invariant): ports close first so no new work arrives (peer and admin,
//! then public); the background workers end next; the dispatcher ends last of them, so the
//! attempts it already made are recorded while Raft still runs; Raft stops last, so in-flight
//! writes finish.

use statusmesh_cluster::ClusterNode;
use tokio::task::JoinHandle;

use super::grpc::GrpcTask;

/// The node's running tasks. Every one ends on its own once the stop signal is sent.
pub(crate) struct Workers {
    pub peer: GrpcTask,
    pub admin: GrpcTask,
    pub public: JoinHandle<()>,
    /// Certificate reloads (with TLS only).
    pub tls_watch: Option<JoinHandle<()>>,
    /// A staged `statusmesh restore`, applied through the log.
    pub restore: JoinHandle<()>,
    /// The leader's maintenance transitions.
    pub scheduler: JoinHandle<()>,
    /// Elections that do not settle, logged and counted.
    pub watchdog: JoinHandle<()>,
    /// The gRPC health status.
    pub health: JoinHandle<()>,
    /// Failed authentications, summarised into the audit log once a minute.
    pub failure_reports: JoinHandle<()>,
    /// The leader's webhook dispatcher.
    pub dispatch: JoinHandle<()>,
}

impl Workers {
    /// Waits for every task in the order above (the stop signal must have been sent), then
    /// stops Raft.
    pub async fn shutdown(self, node: &ClusterNode) {
        for (name, task) in [("peer", self.peer), ("admin", self.admin)] {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(server = name, error = %e, "server ended with an error");
                }
                Err(e) => tracing::warn!(server = name, error = %e, "server task failed"),
            }
        }
        if let Err(e) = self.public.await {
            tracing::warn!(error = %e, "public server task failed");
        }
        if let Some(w) = self.tls_watch {
            let _ = w.await;
        }
        for task in [
            self.restore,
            self.scheduler,
            self.watchdog,
            self.health,
            self.failure_reports,
            // The dispatcher records the attempts it already made before raft stops.
            self.dispatch,
        ] {
            let _ = task.await;
        }
        node.shutdown().await;
    }
}
