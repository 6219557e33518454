//! Certificates and keys that change without a restart.
//!
//! [`ReloadingTls`] holds the node's current [`NodeTls`]; every new connection (accepted or
//! dialled) takes the configuration current at that moment, and connections already open
//! keep theirs. [`ReloadingTls::watch`] re-reads the files when their contents change (checked
//! every couple of seconds) or on SIGHUP. A reload that fails — a half-written file, a key
//! that does not match — is logged and the previous configuration stays in use.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::material::{NodeTls, TlsError, TlsFiles};

#[derive(Debug)]
pub struct ReloadingTls {
    files: TlsFiles,
    node_id: u64,
    current: RwLock<Arc<NodeTls>>,
    /// Hash of every file's contents at the last successful load.
    stamp: Mutex<[u8; 32]>,
}

fn stamp(files: &TlsFiles) -> [u8; 32] {
    let mut h = Sha256::new();
    for path in files.all() {
        h.update(path.as_os_str().as_encoded_bytes());
        match std::fs::read(path) {
            Ok(bytes) => h.update(&bytes),
            Err(e) => h.update(e.to_string().as_bytes()),
        }
    }
    h.finalize().into()
}

impl ReloadingTls {
    pub fn load(files: TlsFiles, node_id: u64) -> Result<Arc<ReloadingTls>, TlsError> {
        let stamp_now = stamp(&files);
        let tls = NodeTls::load(&files, node_id)?;
        Ok(Arc::new(ReloadingTls {
            files,
            node_id,
            current: RwLock::new(Arc::new(tls)),
            stamp: Mutex::new(stamp_now),
        }))
    }

    /// The configuration new connections use now.
    pub fn current(&self) -> Arc<NodeTls> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-reads the files now. On error the previous configuration stays in use, and the
    /// watcher tries again once the files change from what this attempt read.
    pub fn reload(&self) -> Result<(), TlsError> {
        // Stamped before reading: a file replaced while it is read changes the stamp again.
        let stamp_now = stamp(&self.files);
        let tls = match NodeTls::load(&self.files, self.node_id) {
            Ok(t) => t,
            Err(e) => {
                *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = stamp_now;
                return Err(e);
            }
        };
        let serial = tls.node_serial.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tls);
        *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = stamp_now;
        tracing::info!(node_certificate_serial = %serial, "TLS certificates reloaded");
        Ok(())
    }

    fn changed(&self) -> bool {
        *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) != stamp(&self.files)
    }

    /// Reloads on file change (polled every `every`) and on SIGHUP, until `stop`.
    pub async fn watch(self: Arc<Self>, every: Duration, mut stop: watch::Receiver<bool>) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
                _ = stop.changed() => return,
            };
            if forced || self.changed() {
                if let Err(e) = self.reload() {
                    // Not retried until the files change again (reload stamped what it read).
                    tracing::warn!(error = %e, "TLS reload failed; the previous certificates stay in use");
                }
            }
        }
    }
}
