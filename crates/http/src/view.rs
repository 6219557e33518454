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

use crate::html::{component_label, indicator_class, Html};
use crate::{badge, feeds};

/// One representation in all its encodings.
#[derive(Debug)]
pub struct Representation {
    pub content_type: &'static str,
    pub identity: Bytes,
    pub gzip: Bytes,
    pub brotli: Bytes,
    /// Strong validator over the identity bytes (quoted, as sent).
    pub etag: String,
    /// `etag` and `content_type` as header values, built once.
    pub etag_header: axum::http::HeaderValue,
    pub content_type_header: axum::http::HeaderValue,
}

impl Representation {
    pub fn new(content_type: &'static str, body: Vec<u8>) -> Self {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
        let gzip = {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(8));
            // Writing to a Vec cannot fail.
            let _ = enc.write_all(&body);
            enc.finish().unwrap_or_default()
        };
        let brotli = {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams {
                quality: 7,
                ..Default::default()
            };
            let _ = brotli::BrotliCompress(&mut body.as_slice(), &mut out, &params);
            out
        };
        let etag_header = axum::http::HeaderValue::from_str(&etag)
            .unwrap_or(axum::http::HeaderValue::from_static("\"0\""));
        Representation {
            content_type,
            identity: Bytes::from(body),
            gzip: Bytes::from(gzip),
            brotli: Bytes::from(brotli),
            etag,
            etag_header,
            content_type_header: axum::http::HeaderValue::from_static(content_type),
        }
    }
}

/// Every public representation at one applied index.
#[derive(Debug, Default)]
pub struct View {
    pub index: u64,
    /// The state's `page_revision` the bodies were rendered from.
    pub page_revision: u64,
    /// Keyed by request path (`/api/v2/summary.json`).
    pub bodies: Arc<HashMap<String, Arc<Representation>>>,
}

impl View {
    /// Renders every representation from the replica's current state. `region` is this
    /// node's region, named in the HTML footer.
    pub fn render(replica: &Replica, region: &str) -> View {
        const JSON: &str = "application/json; charset=utf-8";
        const HTML: &str = "text/html; charset=utf-8";
        let (index, page_revision, docs) = {
            let data = replica.read();
            let state = &data.state;
            let index = data.last_applied.map_or(0, |l| l.index);
            let page_revision = state.page_revision;
            let mut docs: Vec<(String, &'static str, Vec<u8>)> =
                statusmesh_statuspage::endpoints(state)
                    .into_iter()
                    .map(|(path, v)| {
                        (
                            format!("/api/v2/{path}"),
                            JSON,
                            serde_json::to_vec(&v).unwrap_or_default(),
                        )
                    })
                    .collect();
            let html = Html::new(state, region, statusmesh_cluster::now());
            docs.push(("/".into(), HTML, html.index().into_bytes()));
            for n in 1..=html.history_pages() {
                if let Some(page) = html.history_page(n) {
                    docs.push((format!("/history/{n}"), HTML, page.into_bytes()));
                }
            }
            for id in state.incidents.keys().chain(state.maintenances.keys()) {
                if let Some(page) = html.incident_page(id) {
                    docs.push((format!("/incidents/{id}"), HTML, page.into_bytes()));
                }
            }
            docs.push((
                "/history.atom".into(),
                "application/atom+xml; charset=utf-8",
                feeds::atom(state).into_bytes(),
            ));
            docs.push((
                "/history.rss".into(),
                "application/rss+xml; charset=utf-8",
                feeds::rss(state).into_bytes(),
            ));
            let indicator = state.public_indicator();
            let (class, _) = indicator_class(indicator);
            docs.push((
                "/badge.svg".into(),
                SVG,
                badge::badge("status", indicator.description(), class).into_bytes(),
            ));
            for c in state.components.values() {
                let status = state.public_component_status(c);
                let (text, _, class) = component_label(status);
                docs.push((
                    format!("/components/{}/badge.svg", c.id),
                    SVG,
                    badge::badge(&c.name, text, class).into_bytes(),
                ));
            }
            (index, page_revision, docs)
        };
        // Compression happens outside the replica lock.
        let bodies = docs
            .into_iter()
            .map(|(path, content_type, body)| {
                (path, Arc::new(Representation::new(content_type, body)))
            })
            .collect();
        View {
            index,
            page_revision,
            bodies: Arc::new(bodies),
        }
    }

    /// The same bodies at a later index, when the commands in between (outbox bookkeeping,
    /// subscriber changes) changed nothing the public sees.
    fn advanced(&self, index: u64) -> View {
        View {
            index,
            page_revision: self.page_revision,
            bodies: self.bodies.clone(),
        }
    }
}

const SVG: &str = "image/svg+xml";

/// Re-render at least this often, so time-dependent parts (uptime "today") stay current.
pub const RERENDER_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Keeps a [`View`] current: renders at start and after every change of the applied index.
/// Bursts coalesce (the watch channel keeps only the latest index), so a flood of commits costs
/// one render per catch-up, not one per entry.
pub fn spawn_renderer(
    replica: Arc<Replica>,
    region: String,
    mut shutdown: watch::Receiver<bool>,
) -> watch::Receiver<Arc<View>> {
    let (tx, rx) = watch::channel(Arc::new(View::render(&replica, &region)));
    let mut applied = replica.subscribe();
    tokio::spawn(async move {
        let mut last_full = tokio::time::Instant::now();
        loop {
            tokio::select! {
                changed = applied.changed() => if changed.is_err() { return },
                // Uptime bars move with the calendar even when nothing is written.
                _ = tokio::time::sleep_until(last_full + RERENDER_EVERY) => {}
                _ = shutdown.changed() => return,
            }
            let (index, revision) = {
                let data = replica.read();
                (
                    data.last_applied.map_or(0, |l| l.index),
                    data.state.page_revision,
                )
            };
            let current = tx.borrow().clone();
            if revision == current.page_revision && last_full.elapsed() < RERENDER_EVERY {
                tx.send_replace(Arc::new(current.advanced(index)));
                continue;
            }
            last_full = tokio::time::Instant::now();
            let (r, region) = (replica.clone(), region.clone());
            let started = std::time::Instant::now();
            let view = match tokio::task::spawn_blocking(move || View::render(&r, &region)).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(error = %e, "rendering the public view failed");
                    continue;
                }
            };
            tracing::debug!(
                index = view.index,
                bodies = view.bodies.len(),
                ms = started.elapsed().as_millis() as u64,
                "public view rendered"
            );
            tx.send_replace(Arc::new(view));
        }
    });
    rx
}
