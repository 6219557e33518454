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
use tokio_stream::wrappers::TcpListenerStream;

use crate::config::Config;

/// Admin requests are small; anything bigger is refused with RESOURCE_EXHAUSTED.
const MAX_ADMIN_MESSAGE: usize = 1024 * 1024;

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

    let (log, sm) = statusmesh_store::open(&config.data_dir.join("raft"), config.node_id)?;
    let info = node_info(&config);
    let node = ClusterNode::start(
        NodeConfig {
            id: config.node_id,
            info: info.clone(),
            profile: config.timing_profile,
            snapshot_every: config.snapshot_every,
            peer_source_ip: config.peer_source_ip,
        },
        log,
        sm,
    )
    .await
    .map_err(anyhow::Error::msg)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let peer = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(PeerService::server(node.clone()))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(peer_listener),
                stopped(stop_rx.clone()),
            ),
    );
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
    let admin_service = AdminServer::new(
        AdminService::new(node.clone(), auth, config.write_timeout())
            .with_webhooks(targets, dispatcher.stats()),
    )
    .max_decoding_message_size(MAX_ADMIN_MESSAGE);
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
    let admin = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_alpha)
            .add_service(admin_service)
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(admin_listener),
                stopped(stop_rx.clone()),
            ),
    );
    let public_stop = stopped(stop_rx.clone());
    let view = statusmesh_http::spawn_renderer(
        node.replica().clone(),
        config.region.clone(),
        stop_rx.clone(),
    );
    let public_router = statusmesh_http::router(
        node.clone(),
        view,
        statusmesh_http::PublicOptions {
            stale_after: config.stale_after(),
            min_index_wait: std::time::Duration::from_secs(5),
        },
    );
    let public = tokio::spawn(async move {
        axum::serve(public_listener, public_router)
            .with_graceful_shutdown(public_stop)
            .await
    });
    let scheduler = tokio::spawn(statusmesh_cluster::scheduler::run_maintenance_scheduler(
        node.clone(),
        stop_rx.clone(),
    ));
    let dispatch = tokio::spawn(dispatcher.run(stop_rx.clone()));
    let watchdog = tokio::spawn(statusmesh_cluster::watchdog::run_election_watchdog(
        node.clone(),
        stop_rx.clone(),
    ));

    if config.is_initial_member() {
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
    if let Ok(Err(e)) = public.await {
        tracing::warn!(error = %e, "public server ended with an error");
    }
    let _ = scheduler.await;
    let _ = watchdog.await;
    let _ = health.await;
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
