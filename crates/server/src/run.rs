//! `statusmesh serve`: open the store, start Raft, bind the three ports, initialise the
//! cluster once, run the leader's scheduler, and shut down in order on a signal.

use anyhow::Context as _;
use statusmesh_admin::{AdminService, Authenticator, Token};
use statusmesh_cluster::{ClusterNode, NodeConfig, PeerService};
use statusmesh_proto::admin::admin_server::AdminServer;
use statusmesh_store::NodeInfo;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

use statusmesh_tls::{Admission, TcpIncoming};

use crate::config::Config;
use crate::observe::{GrpcObserveLayer, GrpcPort, PortMetrics};

/// Admin requests are small; anything bigger is refused with RESOURCE_EXHAUSTED.
const MAX_ADMIN_MESSAGE: usize = 1024 * 1024;
/// Every peer request ends by then (openraft sets shorter deadlines of its own; snapshot
/// chunks are the slowest).
const PEER_REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);
/// An admin request may take the write timeout plus this (reading and answering).
const ADMIN_DEADLINE_SLACK: std::time::Duration = std::time::Duration::from_secs(5);
/// Requests handled at once on one connection (admin and peer ports).
const CONCURRENCY_PER_CONNECTION: usize = 64;
/// HTTP/2 streams a client may open at once on one connection.
const MAX_STREAMS: u32 = 128;
/// How often certificate files are checked for changes.
const TLS_RELOAD_POLL: std::time::Duration = std::time::Duration::from_secs(2);

type Observed = tower_layer::Stack<GrpcObserveLayer, tower_layer::Identity>;

/// A tonic server with what every gRPC port has: a deadline on every request, bounded
/// concurrency per connection and bounded streams, and the request figures (and on the admin
/// port request ids) of [`crate::observe`].
fn grpc_server(
    deadline: std::time::Duration,
    observe: GrpcObserveLayer,
) -> tonic::transport::Server<Observed> {
    tonic::transport::Server::builder()
        .timeout(deadline)
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
        .max_concurrent_streams(MAX_STREAMS)
        .tcp_nodelay(true)
        .layer(observe)
}

type GrpcTask = tokio::task::JoinHandle<Result<(), tonic::transport::Error>>;

/// Serves `router` on `listener`, over TLS when `tls` gives configurations, holding at most
/// the connections `admission` allows.
fn serve_grpc(
    router: tonic::transport::server::Router<Observed>,
    listener: TcpListener,
    tls: Option<impl Fn() -> Arc<rustls::ServerConfig> + Send + Sync + 'static>,
    admission: Admission,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<GrpcTask> {
    let stopped = {
        let mut rx = stop.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    Ok(match tls {
        Some(config) => {
            let incoming = statusmesh_tls::accept_tls(listener, config, admission, stop)?;
            tokio::spawn(router.serve_with_incoming_shutdown(incoming, stopped))
        }
        None => tokio::spawn(
            router.serve_with_incoming_shutdown(TcpIncoming::new(listener, admission), stopped),
        ),
    })
}

/// The configuration of one port, taken from the node's current (reloadable) TLS material.
fn tls_fn<T: Clone>(
    tls: Arc<statusmesh_tls::ReloadingTls>,
    pick: impl Fn(&statusmesh_tls::NodeTls) -> T + Send + Sync + 'static,
) -> impl Fn() -> T + Send + Sync + 'static {
    move || pick(&tls.current())
}

fn node_info(config: &Config) -> NodeInfo {
    // Advertise what the initial member list says about us, else our listen addresses.
    match config
        .initial_members
        .iter()
        .find(|m| m.id == config.node_id)
    {
        Some(m) => NodeInfo {
            region: m.region.clone(),
            peer_addr: m.peer_addr.clone(),
            admin_addr: m.admin_addr.clone(),
            public_addr: if m.public_addr.is_empty() {
                config.listen.public.to_string()
            } else {
                m.public_addr.clone()
            },
        },
        None => NodeInfo {
            region: config.region.clone(),
            peer_addr: config.listen.peer.to_string(),
            admin_addr: config.listen.admin.to_string(),
            public_addr: config.listen.public.to_string(),
        },
    }
}

async fn bind(what: &str, addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on the {what} address {addr}"))
}

/// Runs a node until `shutdown` resolves.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    // Bind first: a port conflict should fail before anything else starts.
    let peer_listener = bind("peer", config.listen.peer).await?;
    let admin_listener = bind("admin", config.listen.admin).await?;
    let public_listener = bind("public", config.listen.public).await?;

    // Certificates are checked before anything starts: a wrong path or a certificate for
    // another node id fails here, naming the file.
    let tls = match &config.tls {
        Some(t) => Some(
            statusmesh_tls::ReloadingTls::load(t.files(), config.node_id)
                .map_err(|e| anyhow::anyhow!("TLS: {e}"))?,
        ),
        None => {
            tracing::warn!("insecure_plaintext: peer and admin traffic are NOT encrypted or authenticated by certificate (dev mode)");
            None
        }
    };

    // Connections the node opens itself: webhook deliveries, and a few per peer.
    let outbound = config.webhooks.max_in_flight + 4 * config.initial_members.len().max(3);
    let fds = crate::fds::plan(crate::fds::raise_nofile_limit(), &config.limits, outbound)?;
    if fds.public < config.limits.public_connections {
        tracing::warn!(
            limit = fds.limit,
            reserved = fds.reserved,
            public = fds.public,
            "the file descriptor limit caps the public port below limits.public_connections"
        );
    }
    let admissions = [
        Admission::new("public", fds.public),
        Admission::new("admin", fds.admin),
        Admission::new("peer", fds.peer),
    ];

    let offset = statusmesh_cluster::node::clock_fault_offset_ms();
    if offset != 0 {
        tracing::warn!(
            offset_ms = offset,
            "{} is set: this node's wall clock is shifted (fault drill)",
            statusmesh_cluster::node::CLOCK_OFFSET_ENV
        );
    }
    let (log, sm) = statusmesh_store::open(&config.data_dir.join("raft"), config.node_id)?;
    let info = node_info(&config);
    let node = ClusterNode::start(
        NodeConfig {
            id: config.node_id,
            info: info.clone(),
            profile: config.timing_profile,
            snapshot_every: config.snapshot_every,
            peer_source_ip: config.peer_source_ip,
            tls: tls.clone(),
            max_clock_jump: config.limits.max_clock_jump(),
        },
        log,
        sm,
    )
    .await
    .map_err(anyhow::Error::msg)?;

    let (stop_tx, stop_rx) = watch::channel(false);

    let ports = Arc::new(PortMetrics::default());
    let peer = serve_grpc(
        grpc_server(
            PEER_REQUEST_DEADLINE,
            GrpcObserveLayer::new(ports.clone(), GrpcPort::Peer),
        )
        .add_service(PeerService::server(node.clone())),
        peer_listener,
        tls.clone().map(|t| tls_fn(t, |c| c.peer_server.clone())),
        admissions[2].clone(),
        stop_rx.clone(),
    )?;
    let auth = Authenticator::new(
        config
            .tokens
            .iter()
            .map(|t| Token {
                name: t.name.clone(),
                secret: t.token.clone(),
            })
            .collect(),
    );
    let webhooks = config.webhooks.to_webhook_config();
    let targets = webhooks.targets;
    let dispatcher =
        statusmesh_webhook::Dispatcher::new(node.clone(), webhooks).map_err(anyhow::Error::msg)?;
    let admin = AdminService::new(node.clone(), auth, config.write_timeout())
        .with_webhooks(targets, dispatcher.stats())
        .with_tls(tls.clone());
    // Failed authentications, summarised into the audit log once a minute.
    let failure_reports =
        tokio::spawn(admin.clone().report_failed_authentications(stop_rx.clone()));
    let admin_service = AdminServer::new(admin).max_decoding_message_size(MAX_ADMIN_MESSAGE);
    // Standard gRPC tools work without the .proto files: the health checking protocol (SERVING
    // for the admin service once this node holds a replica) and server reflection.
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // Only the services this port serves are advertised (the descriptor set also holds the
    // peer protocol, which lives on the peer port).
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(statusmesh_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(ADMIN_SERVICE)
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1.ServerReflection")
            .with_service_name("grpc.reflection.v1alpha.ServerReflection")
    };
    let reflection = reflection_builder()
        .build_v1()
        .map_err(|e| anyhow::anyhow!("cannot build gRPC reflection: {e}"))?;
    // Older tools (and grpcio-reflection's default client) speak v1alpha.
    let reflection_alpha = reflection_builder()
        .build_v1alpha()
        .map_err(|e| anyhow::anyhow!("cannot build gRPC reflection: {e}"))?;
    let health = tokio::spawn(report_health(
        node.clone(),
        health_reporter,
        stop_rx.clone(),
    ));
    let admin = serve_grpc(
        grpc_server(
            config.write_timeout() + ADMIN_DEADLINE_SLACK,
            GrpcObserveLayer::new(ports.clone(), GrpcPort::Admin),
        )
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(admin_service),
        admin_listener,
        tls.clone().map(|t| tls_fn(t, |c| c.admin_server.clone())),
        admissions[1].clone(),
        stop_rx.clone(),
    )?;
    let view = statusmesh_http::spawn_renderer(
        node.replica().clone(),
        config.region.clone(),
        stop_rx.clone(),
    );
    let diagnostics = statusmesh_http::Diagnostics::new(node.replica().clone());
    let public_router = statusmesh_http::router(
        node.clone(),
        view,
        diagnostics.clone(),
        statusmesh_http::PublicOptions {
            stale_after: config.stale_after(),
            min_index_wait: std::time::Duration::from_secs(5),
            hsts: config.tls.as_ref().is_some_and(|t| t.public_cert.is_some()),
        },
    );
    // Prometheus metrics on the public port (numbers only; nothing secret).
    let public_router = {
        let (node, dispatch, figures) = (node.clone(), dispatcher.stats(), ports.clone());
        let admissions = admissions.clone();
        public_router.route(
            "/metrics",
            axum::routing::get(move || {
                let (node, dispatch, figures, admissions, diagnostics) = (
                    node.clone(),
                    dispatch.clone(),
                    figures.clone(),
                    admissions.clone(),
                    diagnostics.clone(),
                );
                async move {
                    let outbox = diagnostics.figures().await.outbox;
                    let body =
                        crate::metrics::render(&node, &dispatch, &figures, &admissions, &outbox);
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
    };
    // Every public request counted by route, from outside the router (see `observe`).
    let public_service = tower_layer::Layer::layer(
        &crate::observe::HttpObserveLayer::new(&ports),
        public_router,
    );
    let http_limits = crate::public_port::HttpLimits {
        header_read_timeout: config.limits.header_read_timeout(),
        write_stall_timeout: config.limits.write_stall_timeout(),
    };
    let public_tls = tls
        .as_ref()
        .filter(|t| t.current().public_server.is_some())
        .cloned();
    let public = match public_tls {
        Some(t) => {
            let incoming = statusmesh_tls::accept_tls(
                public_listener,
                tls_fn(t.clone(), move |c| {
                    // Set at start; a reload cannot remove it (validated), so fall back to the
                    // admin certificate only if the files were emptied under us.
                    c.public_server
                        .clone()
                        .unwrap_or_else(|| c.admin_server.clone())
                }),
                admissions[0].clone(),
                stop_rx.clone(),
            )?;
            tokio::spawn(crate::public_port::serve(
                incoming,
                public_service,
                admissions[0].clone(),
                http_limits,
                stop_rx.clone(),
            ))
        }
        None => tokio::spawn(crate::public_port::serve(
            TcpIncoming::new(public_listener, admissions[0].clone()),
            public_service,
            admissions[0].clone(),
            http_limits,
            stop_rx.clone(),
        )),
    };
    let tls_watch = tls
        .clone()
        .map(|t| tokio::spawn(t.watch(TLS_RELOAD_POLL, stop_rx.clone())));
    let scheduler = tokio::spawn(statusmesh_cluster::scheduler::run_maintenance_scheduler(
        node.clone(),
        stop_rx.clone(),
    ));
    let dispatch = tokio::spawn(dispatcher.run(stop_rx.clone()));
    let watchdog = tokio::spawn(statusmesh_cluster::watchdog::run_election_watchdog(
        node.clone(),
        stop_rx.clone(),
    ));

    let force_new = crate::recover::flag(&config.data_dir);
    if force_new.exists() {
        // `statusmesh recover --force-new-cluster`: a one-node cluster of this node, whatever
        // initial_members says; the staged state is restored through its log.
        tracing::warn!("forced new cluster: initialising a one-node cluster of this node");
        let members = BTreeMap::from([(config.node_id, info.clone())]);
        node.initialize(members).await.map_err(anyhow::Error::msg)?;
        let _ = std::fs::remove_file(&force_new);
    } else if config.is_initial_member() {
        let members: BTreeMap<u64, NodeInfo> = config
            .initial_members
            .iter()
            .map(|m| {
                let info = if m.id == config.node_id {
                    info.clone()
                } else {
                    NodeInfo {
                        region: m.region.clone(),
                        peer_addr: m.peer_addr.clone(),
                        admin_addr: m.admin_addr.clone(),
                        public_addr: m.public_addr.clone(),
                    }
                };
                (m.id, info)
            })
            .collect();
        if node.initialize(members).await.map_err(anyhow::Error::msg)? {
            tracing::info!("cluster initialised from initial_members");
        }
    } else {
        tracing::info!(
            "not an initial member: waiting to be added with `statusctl cluster add-node`"
        );
    }
    let restore = tokio::spawn(crate::restore::apply_pending(
        node.clone(),
        config.data_dir.clone(),
        config.write_timeout(),
        stop_rx.clone(),
    ));
    tracing::info!(
        node = config.node_id,
        region = %config.region,
        peer = %config.listen.peer,
        admin = %config.listen.admin,
        public = %config.listen.public,
        profile = %config.timing_profile,
        "statusmesh node serving"
    );

    shutdown.await;
    tracing::info!("shutting down: closing ports, then stopping raft");
    let _ = stop_tx.send(true);
    // Ports close first so no new work arrives; raft stops last so in-flight writes finish.
    for (name, task) in [("peer", peer), ("admin", admin)] {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(server = name, error = %e, "server ended with an error"),
            Err(e) => tracing::warn!(server = name, error = %e, "server task failed"),
        }
    }
    if let Err(e) = public.await {
        tracing::warn!(error = %e, "public server task failed");
    }
    if let Some(w) = tls_watch {
        let _ = w.await;
    }
    let _ = restore.await;
    let _ = scheduler.await;
    let _ = watchdog.await;
    let _ = health.await;
    let _ = failure_reports.await;
    // The dispatcher records the attempts it already made before raft stops.
    let _ = dispatch.await;
    node.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

const ADMIN_SERVICE: &str = <AdminServer<AdminService> as tonic::server::NamedService>::NAME;

/// Keeps the gRPC health status current: the admin service (and the server as a whole, "")
/// is SERVING while this node is a member of an initialised cluster, NOT_SERVING otherwise.
async fn report_health(
    node: Arc<ClusterNode>,
    reporter: tonic_health::server::HealthReporter,
    mut stop: watch::Receiver<bool>,
) {
    let mut applied = node.replica().subscribe();
    let mut last = None;
    loop {
        let member = node.is_member();
        if last != Some(member) {
            let status = if member {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            reporter.set_service_status(ADMIN_SERVICE, status).await;
            reporter.set_service_status("", status).await;
            last = Some(member);
        }
        tokio::select! {
            // Membership changes arrive through the log: re-check on every applied entry.
            _ = applied.changed() => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            _ = stop.changed() => {
                reporter.set_not_serving::<AdminServer<AdminService>>().await;
                return;
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
