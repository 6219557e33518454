//! `statusmesh serve`: the composition root. Open the store, start Raft, bind the three ports
//! (one builder each: [`grpc::peer_port`], [`grpc::admin_port`], [`public::public_port`]),
//! initialise the cluster once, run the background [`workers::Workers`], and shut down in
//! their order on a signal.

mod grpc;
mod public;
mod workers;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use statusmesh_admin::{AdminService, Authenticator, Token};
use statusmesh_cluster::{ClusterNode, NodeConfig};
use statusmesh_store::NodeInfo;
use statusmesh_tls::Admission;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, MemberConfig};
use crate::observe::PortMetrics;
use grpc::GrpcPortParts;
use workers::Workers;

/// How often certificate files are checked for changes.
const TLS_RELOAD_POLL: std::time::Duration = std::time::Duration::from_secs(2);

impl From<&MemberConfig> for NodeInfo {
    fn from(m: &MemberConfig) -> NodeInfo {
        NodeInfo {
            region: m.region.clone(),
            peer_addr: m.peer_addr.clone(),
            admin_addr: m.admin_addr.clone(),
            public_addr: m.public_addr.clone(),
        }
    }
}

/// What this node advertises: what the initial member list says about it (its public address
/// defaulting to the one it listens on), else its listen addresses.
fn advertised(config: &Config) -> NodeInfo {
    match config
        .initial_members
        .iter()
        .find(|m| m.id == config.node_id)
    {
        Some(m) => {
            let mut info = NodeInfo::from(m);
            if info.public_addr.is_empty() {
                info.public_addr = config.listen.public.to_string();
            }
            info
        }
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
    let info = advertised(&config);
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
    .await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let ports = Arc::new(PortMetrics::default());
    let parts = |listener, admission: &Admission| GrpcPortParts {
        listener,
        tls: tls.clone(),
        admission: admission.clone(),
        ports: ports.clone(),
        stop: stop_rx.clone(),
    };
    let peer = grpc::peer_port(node.clone(), parts(peer_listener, &admissions[2]))?;
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
    let mut dispatcher = statusmesh_webhook::Dispatcher::new(node.clone(), webhooks)?;
    if let Some(email) = &config.email {
        let password = std::env::var("STATUSMESH_EMAIL_PASSWORD").ok();
        let mailer = statusmesh_webhook::Mailer::new(email.to_mail_config(password)?)?;
        dispatcher = dispatcher.with_mailer(mailer);
    }
    let admin = AdminService::new(node.clone(), auth, config.write_timeout())
        .with_webhooks(targets, dispatcher.stats())
        .with_tls(tls.clone());
    let failure_reports =
        tokio::spawn(admin.clone().report_failed_authentications(stop_rx.clone()));
    let (admin, health) = grpc::admin_port(
        node.clone(),
        admin,
        config.write_timeout(),
        parts(admin_listener, &admissions[1]),
    )?;
    let public = public::public_port(
        &config,
        node.clone(),
        public::MetricsSources {
            dispatch: dispatcher.stats(),
            ports: ports.clone(),
            admissions: admissions.clone(),
        },
        public_listener,
        tls.clone(),
        stop_rx.clone(),
    )?;
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

    initialize(&config, &node, &info).await?;
    let restore = tokio::spawn(crate::restore::apply_pending(
        node.clone(),
        config.data_dir.clone(),
        config.write_timeout(),
        stop_rx.clone(),
    ));
    let workers = Workers {
        peer,
        admin,
        public,
        tls_watch,
        restore,
        scheduler,
        watchdog,
        health,
        failure_reports,
        dispatch,
    };
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
    workers.shutdown(&node).await;
    tracing::info!("stopped");
    Ok(())
}

/// Initialises the cluster when this node should: `statusmesh recover --force-new-cluster`
/// staged a one-node cluster of this node, or it is one of `initial_members` (safe on every
/// start: a node with state is already initialised). Otherwise it waits to be added.
async fn initialize(config: &Config, node: &ClusterNode, info: &NodeInfo) -> anyhow::Result<()> {
    let force_new = crate::recover::flag(&config.data_dir);
    if force_new.exists() {
        // The staged state is restored through its log (`restore::apply_pending`).
        tracing::warn!("forced new cluster: initialising a one-node cluster of this node");
        let members = BTreeMap::from([(config.node_id, info.clone())]);
        node.initialize(members).await?;
        let _ = std::fs::remove_file(&force_new);
    } else if config.is_initial_member() {
        let members: BTreeMap<u64, NodeInfo> = config
            .initial_members
            .iter()
            .map(|m| {
                let member = if m.id == config.node_id {
                    info.clone()
                } else {
                    NodeInfo::from(m)
                };
                (m.id, member)
            })
            .collect();
        if node.initialize(members).await? {
            tracing::info!("cluster initialised from initial_members");
        }
    } else {
        tracing::info!(
            "not an initial member: waiting to be added with `statusctl cluster add-node`"
        );
    }
    Ok(())
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
