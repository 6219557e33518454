//! Render once, serve many: every public representation is built when the replica's applied
//! index changes (never per request), compressed once (gzip and brotli), given a strong ETag,
//! and published as one immutable [`View`] shared by all requests.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use statusmesh_store::Replica;
use tokio::sync::watch;

use crate::statuspage;

/// One representation in all its encodings.
#[derive(Debug)]
pub struct Representation {
    pub content_type: &'static str,
    pub identity: Bytes,
    pub gzip: Bytes,
    pub brotli: Bytes,
    /// Strong validator over the identity bytes (quoted, as sent).
    pub etag: String,
}

impl Representation {
    pub fn new(content_type: &'static str, body: Vec<u8>) -> Self {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
        let gzip = {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            // Writing to a Vec cannot fail.
            let _ = enc.write_all(&body);
            enc.finish().unwrap_or_default()
        };
        let brotli = {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams {
                quality: 9,
                ..Default::default()
            };
            let _ = brotli::BrotliCompress(&mut body.as_slice(), &mut out, &params);
            out
        };
        Representation {
            content_type,
            identity: Bytes::from(body),
            gzip: Bytes::from(gzip),
            brotli: Bytes::from(brotli),
            etag,
        }
    }
}

/// Every public representation at one applied index.
#[derive(Debug, Default)]
pub struct View {
    pub index: u64,
    /// Keyed by request path (`/api/v2/summary.json`).
    pub bodies: HashMap<String, Arc<Representation>>,
}

impl View {
    /// Renders every representation from the replica's current state.
    pub fn render(replica: &Replica) -> View {
        let (index, endpoints) = {
            let data = replica.read();
            let index = data.last_applied.map_or(0, |l| l.index);
            (index, statuspage::endpoints(&data.state))
        };
        // Serialisation and compression happen outside the replica lock.
        let bodies = endpoints
            .into_iter()
            .map(|(path, value)| {
                let body = serde_json::to_vec(&value).unwrap_or_default();
                (
                    format!("/api/v2/{path}"),
                    Arc::new(Representation::new("application/json; charset=utf-8", body)),
                )
            })
            .collect();
        View { index, bodies }
    }
}

/// Keeps a [`View`] current: renders at start and after every change of the applied index.
/// Bursts coalesce (the watch channel keeps only the latest index), so a flood of commits costs
/// one render per catch-up, not one per entry.
pub fn spawn_renderer(
    replica: Arc<Replica>,
    mut shutdown: watch::Receiver<bool>,
) -> watch::Receiver<Arc<View>> {
    let (tx, rx) = watch::channel(Arc::new(View::render(&replica)));
    let mut applied = replica.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = applied.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
            let r = replica.clone();
            let view = match tokio::task::spawn_blocking(move || View::render(&r)).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(error = %e, "rendering the public view failed");
                    continue;
                }
            };
            tracing::debug!(index = view.index, "public view rendered");
            tx.send_replace(Arc::new(view));
        }
    });
    rx
}
