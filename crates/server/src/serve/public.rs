//! The public port: the local replica's page, feeds and JSON API (`statusmesh_http`), plus
//! `/metrics`, behind the request figures of [`crate::observe`], served by
//! [`crate::public_port`] over TLS when a public certificate is configured.

use std::sync::Arc;
use std::time::Duration;

use statusmesh_cluster::ClusterNode;
use statusmesh_metrics::DispatchStats;
use statusmesh_tls::{Admission, ReloadingTls, TcpIncoming};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::grpc::tls_fn;
use crate::config::Config;
use crate::observe::PortMetrics;

/// How long a request may wait for this replica to reach the index it names.
const MIN_INDEX_WAIT: Duration = Duration::from_secs(5);

/// Everything `/metrics` renders from.
pub(crate) struct MetricsSources {
    pub dispatch: Arc<DispatchStats>,
    pub ports: Arc<PortMetrics>,
    pub admissions: [Admission; 3],
}

/// Starts the renderer and serves the public port until stop.
pub(crate) fn public_port(
    config: &Config,
    node: Arc<ClusterNode>,
    sources: MetricsSources,
    listener: TcpListener,
    tls: Option<Arc<ReloadingTls>>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let view = statusmesh_http::spawn_renderer(
        node.replica().clone(),
        config.region.clone(),
        stop.clone(),
    );
    let diagnostics = statusmesh_http::Diagnostics::new(node.replica().clone());
    let admission = sources.admissions[0].clone();
    let ports = sources.ports.clone();
    let metrics = metrics_renderer(node.clone(), sources, diagnostics.clone());
    let router = statusmesh_http::router(
        node,
        view,
        diagnostics,
        statusmesh_http::PublicOptions {
            stale_after: config.stale_after(),
            min_index_wait: MIN_INDEX_WAIT,
            hsts: config.tls.as_ref().is_some_and(|t| t.public_cert.is_some()),
            targets: config.webhooks.to_webhook_config().targets,
        },
        Some(metrics),
    );
    // Every public request counted by route, from outside the router (see `observe`).
    let service = tower_layer::Layer::layer(&crate::observe::HttpObserveLayer::new(&ports), router);
    let limits = crate::public_port::HttpLimits {
        header_read_timeout: config.limits.header_read_timeout(),
        write_stall_timeout: config.limits.write_stall_timeout(),
        trusted_proxies: Arc::new(config.limits.trusted_proxies()),
    };
    let tls = tls.filter(|t| t.current().public_server.is_some());
    Ok(match tls {
        Some(t) => {
            let incoming = statusmesh_tls::accept_tls(
                listener,
                tls_fn(t, move |c| {
                    // Set at start; a reload cannot remove it (validated), so fall back to the
                    // admin certificate only if the files were emptied under us.
                    c.public_server
                        .clone()
                        .unwrap_or_else(|| c.admin_server.clone())
                }),
                admission.clone(),
                stop.clone(),
            )?;
            tokio::spawn(crate::public_port::serve(
                incoming, service, admission, limits, stop,
            ))
        }
        None => tokio::spawn(crate::public_port::serve(
            TcpIncoming::new(listener, admission.clone()),
            service,
            admission,
            limits,
            stop,
        )),
    })
}

/// Prometheus metrics (numbers only; nothing secret).
fn metrics_renderer(
    node: Arc<ClusterNode>,
    sources: MetricsSources,
    diagnostics: Arc<statusmesh_http::Diagnostics>,
) -> statusmesh_http::MetricsRenderer {
    let sources = Arc::new(sources);
    Arc::new(move || {
        let (node, sources, diagnostics) = (node.clone(), sources.clone(), diagnostics.clone());
        Box::pin(async move {
            let outbox = diagnostics.figures().await.outbox;
            crate::metrics::render(
                &node,
                &sources.dispatch,
                &sources.ports,
                &sources.admissions,
                &outbox,
            )
        })
    })
}
