//! The two gRPC ports: the peer port (Raft and forwarded writes) and the admin port (the
//! operator API, gRPC health checking and server reflection). Both get a deadline on every
//! request, bounded concurrency per connection and bounded streams, the request figures of
//! [`crate::observe`] and a connection cap ([`Admission`]).

use std::sync::Arc;
use std::time::Duration;

use statusmesh_admin::AdminService;
use statusmesh_cluster::{ClusterNode, PeerService};
use statusmesh_proto::admin::admin_server::AdminServer;
use statusmesh_tls::{Admission, ReloadingTls, TcpIncoming};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::observe::{GrpcObserveLayer, GrpcPort, PortMetrics};

/// Admin requests are small; anything bigger is refused with RESOURCE_EXHAUSTED.
const MAX_ADMIN_MESSAGE: usize = 1024 * 1024;
/// Every peer request ends by then (openraft sets shorter deadlines of its own; snapshot
/// chunks are the slowest).
const PEER_REQUEST_DEADLINE: Duration = Duration::from_secs(60);
/// An admin request may take the write timeout plus this (reading and answering).
const ADMIN_DEADLINE_SLACK: Duration = Duration::from_secs(5);
/// Requests handled at once on one connection (admin and peer ports).
const CONCURRENCY_PER_CONNECTION: usize = 64;
/// HTTP/2 streams a client may open at once on one connection.
const MAX_STREAMS: u32 = 128;
/// How often the health status is re-checked when nothing is applied.
const HEALTH_RECHECK: Duration = Duration::from_millis(500);

pub(crate) const ADMIN_SERVICE: &str =
    <AdminServer<AdminService> as tonic::server::NamedService>::NAME;

type Observed = tower_layer::Stack<GrpcObserveLayer, tower_layer::Identity>;

/// A running gRPC port.
pub(crate) type GrpcTask = tokio::task::JoinHandle<Result<(), tonic::transport::Error>>;

/// What every gRPC port is served with.
pub(crate) struct GrpcPortParts {
    pub listener: TcpListener,
    pub tls: Option<Arc<ReloadingTls>>,
    pub admission: Admission,
    pub ports: Arc<PortMetrics>,
    pub stop: watch::Receiver<bool>,
}

/// Serves the peer protocol for `node`.
pub(crate) fn peer_port(node: Arc<ClusterNode>, parts: GrpcPortParts) -> anyhow::Result<GrpcTask> {
    let router = grpc_server(
        PEER_REQUEST_DEADLINE,
        GrpcObserveLayer::new(parts.ports.clone(), GrpcPort::Peer),
    )
    .add_service(PeerService::server(node));
    let tls = parts
        .tls
        .clone()
        .map(|t| tls_fn(t, |c| c.peer_server.clone()));
    serve_grpc(router, tls, parts)
}

/// The admin port: the operator API, and standard gRPC tools work without the .proto files —
/// the health checking protocol (SERVING for the admin service once this node holds a replica,
/// kept current by the returned health task) and server reflection.
pub(crate) fn admin_port(
    node: Arc<ClusterNode>,
    admin: AdminService,
    write_timeout: Duration,
    parts: GrpcPortParts,
) -> anyhow::Result<(GrpcTask, tokio::task::JoinHandle<()>)> {
    let admin_service = AdminServer::new(admin).max_decoding_message_size(MAX_ADMIN_MESSAGE);
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
    let stop = parts.stop.clone();
    let health = tokio::spawn(statusmesh_cluster::worker::run("grpc_health", |span| {
        report_health(node, health_reporter, stop, span)
    }));
    let router = grpc_server(
        write_timeout + ADMIN_DEADLINE_SLACK,
        GrpcObserveLayer::new(parts.ports.clone(), GrpcPort::Admin),
    )
    .add_service(health_service)
    .add_service(reflection)
    .add_service(reflection_alpha)
    .add_service(admin_service);
    let tls = parts
        .tls
        .clone()
        .map(|t| tls_fn(t, |c| c.admin_server.clone()));
    Ok((serve_grpc(router, tls, parts)?, health))
}

/// A tonic server with what every gRPC port has: a deadline on every request, bounded
/// concurrency per connection and bounded streams, and the request figures (and on the admin
/// port request ids) of [`crate::observe`].
fn grpc_server(
    deadline: Duration,
    observe: GrpcObserveLayer,
) -> tonic::transport::Server<Observed> {
    tonic::transport::Server::builder()
        .timeout(deadline)
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
        .max_concurrent_streams(MAX_STREAMS)
        .tcp_nodelay(true)
        .layer(observe)
}

/// Serves `router` on the port's listener, over TLS when `tls` gives configurations, holding
/// at most the connections its admission allows, until stop.
fn serve_grpc(
    router: tonic::transport::server::Router<Observed>,
    tls: Option<impl Fn() -> Arc<rustls::ServerConfig> + Send + Sync + 'static>,
    parts: GrpcPortParts,
) -> anyhow::Result<GrpcTask> {
    let GrpcPortParts {
        listener,
        admission,
        stop,
        ..
    } = parts;
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
pub(crate) fn tls_fn<T: Clone>(
    tls: Arc<ReloadingTls>,
    pick: impl Fn(&statusmesh_tls::NodeTls) -> T + Send + Sync + 'static,
) -> impl Fn() -> T + Send + Sync + 'static {
    move || pick(&tls.current())
}

/// Keeps the gRPC health status current: the admin service (and the server as a whole, "")
/// is SERVING while this node is a member of an initialised cluster, NOT_SERVING otherwise.
async fn report_health(
    node: Arc<ClusterNode>,
    reporter: tonic_health::server::HealthReporter,
    mut stop: watch::Receiver<bool>,
    span: statusmesh_cluster::worker::WorkerSpan,
) {
    let mut applied = node.replica().subscribe();
    let mut last = None;
    loop {
        let member = node.is_member();
        if last != Some(member) {
            let (status, state) = if member {
                (tonic_health::ServingStatus::Serving, "serving")
            } else {
                (tonic_health::ServingStatus::NotServing, "not serving")
            };
            statusmesh_cluster::worker::set_state(&span, state);
            reporter.set_service_status(ADMIN_SERVICE, status).await;
            reporter.set_service_status("", status).await;
            last = Some(member);
        }
        tokio::select! {
            // Membership changes arrive through the log: re-check on every applied entry.
            _ = applied.changed() => {}
            _ = tokio::time::sleep(HEALTH_RECHECK) => {}
            _ = stop.changed() => {
                reporter.set_not_serving::<AdminServer<AdminService>>().await;
                return;
            }
        }
    }
}
