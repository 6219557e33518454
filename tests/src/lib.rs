//! A test harness that runs real `statusmesh` processes on loopback: start, SIGKILL, SIGTERM,
//! restart, add a node, and wait for conditions with deadlines (never bare sleeps). Every
//! process is killed when the cluster value is dropped, even when a test fails.
//!
//! The binaries must be built first (`cargo build --workspace`); `.ci/run` does that.

// Test-only crate: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

pub mod backups;
pub mod faultnet;
pub mod history;
pub mod notify;
pub mod procstat;
pub mod receiver;
pub mod selfservice;
pub mod smtp;
pub mod tools;

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use statusmesh_cluster::TimingProfile;
use statusmesh_proto::admin::admin_client::AdminClient;
use statusmesh_proto::admin::{self as pb};
use statusmesh_proto::authed;
use statusmesh_server::config::{Config, ListenConfig, MemberConfig, TokenConfig, WebhooksConfig};
use tempfile::TempDir;
use tonic::transport::Channel;

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// Path of a workspace binary next to the running test executable.
pub fn binary(name: &str) -> PathBuf {
    // Test executables run from target/debug/deps, tools such as the benchmarks from
    // target/debug; the binaries are in target/debug.
    let exe = std::env::current_exe().expect("test executable path");
    let here = exe.parent().expect("executable dir");
    let dir = if here.ends_with("deps") {
        here.parent().unwrap_or(here)
    } else {
        here
    };
    let path: PathBuf = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests (.ci/run does)",
        path.display()
    );
    path
}

/// The first of `n` consecutive free ports (for the demo, which numbers its nodes' ports).
pub fn free_port_block(n: u16) -> u16 {
    ports(n)
}

/// A port no other test of this process has been given, below Linux's ephemeral range (so
/// outgoing connections never take it), and free right now.
fn free_port() -> u16 {
    ports(1)
}

/// Reserves `n` consecutive ports in one step (so concurrent callers never interleave) and
/// returns the first, once all of them are free right now. The starting point depends on the
/// process id so concurrent test processes start far apart.
fn ports(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = (std::process::id() * 211) % 20_000;
    for _ in 0..20_000 {
        let offset = NEXT.fetch_add(u32::from(n), Ordering::Relaxed);
        let first = 10_000 + (base + offset) % 22_000;
        if first + u32::from(n) > 32_000 {
            continue;
        }
        let first = first as u16;
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", first + i)).is_ok()) {
            return first;
        }
    }
    panic!("no {n} free consecutive ports found");
}

/// One node of a test cluster.
#[derive(Debug)]
pub struct TestNode {
    pub id: u64,
    pub config: Config,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
}

impl TestNode {
    /// `https://` when the node has TLS (the default), else `http://`.
    pub fn admin_endpoint(&self) -> String {
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.config.listen.admin)
    }

    /// The cluster CA's certificate, when the node has TLS.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.config.tls.as_ref().map(|t| t.ca_cert.clone())
    }

    pub fn public_url(&self, path: &str) -> String {
        let scheme = match &self.config.tls {
            Some(t) if t.public_cert.is_some() => "https",
            _ => "http",
        };
        format!("{scheme}://{}{path}", self.config.listen.public)
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The `AddNode` request that adds this node with the addresses it listens on.
    pub fn add_node_request(&self) -> pb::AddNodeRequest {
        pb::AddNodeRequest {
            id: self.id,
            region: self.config.region.clone(),
            peer_addr: self.config.listen.peer.to_string(),
            admin_addr: self.config.listen.admin.to_string(),
            public_addr: self.config.listen.public.to_string(),
        }
    }
}

#[derive(Debug)]
pub struct TestCluster {
    pub dir: TempDir,
    pub nodes: Vec<TestNode>,
    members: Vec<MemberConfig>,
    snapshot_every: u64,
    webhooks: WebhooksConfig,
    options: ClusterOptions,
    /// Where each node's peer server really listens, when it differs from the advertised
    /// address (a fault-injection proxy sits in between).
    peer_listen: std::collections::HashMap<u64, String>,
}

/// How a test cluster's nodes are configured.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub snapshot_every: u64,
    pub webhooks: WebhooksConfig,
    pub profile: TimingProfile,
    pub stale_after_ms: u64,
    pub write_timeout_ms: u64,
    /// Peer and admin traffic over TLS with a CA made for this cluster (default). `false`
    /// runs the nodes in insecure_plaintext dev mode.
    pub tls: bool,
    /// Nodes log JSON lines (`--log-format json`) instead of human-readable ones.
    pub json_logs: bool,
    /// The public port serves HTTPS too, with each node's own certificate.
    pub public_tls: bool,
    /// The nodes' `[limits]` table.
    pub limits: statusmesh_server::config::LimitsConfig,
    /// Each node runs with this file descriptor limit (`prlimit --nofile`), if set.
    pub nofile: Option<u64>,
    /// Extra environment variables for one node: `(node id, name, value)`.
    pub node_env: Vec<(u64, String, String)>,
    /// The nodes' `[email]` relay, if any.
    pub email: Option<statusmesh_server::config::EmailConfig>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            snapshot_every: 1000,
            webhooks: test_webhooks(),
            profile: TimingProfile::Lan,
            stale_after_ms: 2000,
            write_timeout_ms: 8000,
            tls: true,
            json_logs: false,
            public_tls: false,
            limits: Default::default(),
            nofile: None,
            node_env: Vec::new(),
            email: None,
        }
    }
}

/// The source address node `id` uses for peer connections when a fault proxy is in between.
pub fn peer_source_ip(id: u64) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 1, id as u8))
}

fn member(id: u64) -> MemberConfig {
    MemberConfig {
        id,
        region: format!("region{id}"),
        peer_addr: format!("127.0.0.1:{}", free_port()),
        admin_addr: format!("127.0.0.1:{}", free_port()),
        public_addr: format!("127.0.0.1:{}", free_port()),
    }
}

/// An admin client for `endpoint`; `https://` endpoints trust `ca`.
pub async fn admin_client(
    endpoint: &str,
    ca: Option<&std::path::Path>,
) -> anyhow::Result<AdminClient<Channel>> {
    statusmesh_proto::connect_admin(
        endpoint,
        ca,
        Duration::from_secs(1),
        Duration::from_secs(20),
    )
    .await
    .map_err(anyhow::Error::from)
}

/// Webhook settings for tests: loopback receivers allowed, short request timeout.
pub fn test_webhooks() -> WebhooksConfig {
    WebhooksConfig {
        allow_loopback: true,
        request_timeout_ms: 5_000,
        ..WebhooksConfig::default()
    }
}

impl TestCluster {
    /// Starts `n` initial members (ids 1..=n).
    pub fn start(n: u64) -> Self {
        Self::start_with(n, 1000)
    }

    pub fn start_with(n: u64, snapshot_every: u64) -> Self {
        Self::start_configured(n, snapshot_every, test_webhooks())
    }

    /// Starts `n` initial members with the given webhook settings.
    pub fn start_configured(n: u64, snapshot_every: u64, webhooks: WebhooksConfig) -> Self {
        Self::start_options(
            n,
            ClusterOptions {
                snapshot_every,
                webhooks,
                ..ClusterOptions::default()
            },
        )
    }

    pub fn start_options(n: u64, options: ClusterOptions) -> Self {
        let members: Vec<MemberConfig> = (1..=n).map(member).collect();
        Self::launch(members, Default::default(), options)
    }

    /// Starts `n` nodes whose peer traffic all goes through `FaultNet` proxies: node `j`
    /// advertises its proxy's address, and node `i` connects from [`peer_source_ip`]`(i)`, so the
    /// proxy knows the direction of every connection.
    pub async fn start_faulty(n: u64, options: ClusterOptions) -> (Self, faultnet::FaultNet) {
        let mut members = Vec::new();
        let mut listen = std::collections::HashMap::new();
        let mut routes = Vec::new();
        for id in 1..=n {
            let mut m = member(id);
            let proxy: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let real: std::net::SocketAddr = m.peer_addr.parse().unwrap();
            listen.insert(id, m.peer_addr.clone());
            m.peer_addr = proxy.to_string();
            routes.push((id, proxy, real));
            members.push(m);
        }
        let net =
            faultnet::FaultNet::start(routes, (1..=n).map(|i| (peer_source_ip(i), i)).collect())
                .await;
        (Self::launch(members, listen, options), net)
    }

    fn launch(
        members: Vec<MemberConfig>,
        peer_listen: std::collections::HashMap<u64, String>,
        options: ClusterOptions,
    ) -> Self {
        let dir = TempDir::new().expect("temp dir");
        let mut cluster = TestCluster {
            dir,
            nodes: Vec::new(),
            members: members.clone(),
            snapshot_every: options.snapshot_every,
            webhooks: options.webhooks.clone(),
            options,
            peer_listen,
        };
        for m in &members {
            cluster.add_node_process(m.clone(), true);
        }
        cluster
    }

    /// Where this cluster's CA and node certificates are.
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    /// The cluster CA (`None` in plaintext mode).
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.options
            .tls
            .then(|| self.tls_dir().join(statusmesh_tls::pki::CA_CERT))
    }

    /// The `[tls]` table for node `id`, issuing its certificate (and the CA) on first use.
    fn node_tls(&self, id: u64) -> Option<statusmesh_server::config::TlsConfig> {
        use statusmesh_tls::pki;
        if !self.options.tls {
            return None;
        }
        let dir = self.tls_dir();
        if !dir.join(pki::CA_CERT).exists() {
            pki::create_ca(&dir, "test cluster CA", 30).expect("create test CA");
        }
        let (cert, key) = pki::node_files(&dir, id);
        if !cert.exists() {
            pki::issue_node(&dir, id, &["127.0.0.1".into(), "localhost".into()], 30)
                .expect("issue node certificate");
        }
        let public = self.options.public_tls.then(|| (cert.clone(), key.clone()));
        Some(statusmesh_server::config::TlsConfig {
            ca_cert: dir.join(pki::CA_CERT),
            cert,
            key,
            admin_cert: None,
            admin_key: None,
            operator_ca: Some(dir.join(pki::CA_CERT)),
            public_cert: public.as_ref().map(|p| p.0.clone()),
            public_key: public.map(|p| p.1),
        })
    }

    fn add_node_process(&mut self, m: MemberConfig, initial: bool) -> usize {
        let tls = self.node_tls(m.id);
        let config = Config {
            node_id: m.id,
            region: m.region.clone(),
            data_dir: self.dir.path().join(format!("node{}", m.id)),
            listen: ListenConfig {
                peer: self
                    .peer_listen
                    .get(&m.id)
                    .unwrap_or(&m.peer_addr)
                    .parse()
                    .expect("addr"),
                admin: m.admin_addr.parse().expect("addr"),
                public: m.public_addr.parse().expect("addr"),
            },
            timing_profile: self.options.profile,
            snapshot_every: self.snapshot_every,
            write_timeout_ms: Some(self.options.write_timeout_ms),
            stale_after_ms: Some(self.options.stale_after_ms),
            initial_members: if initial {
                self.members.clone()
            } else {
                vec![]
            },
            tokens: vec![TokenConfig {
                name: "test".into(),
                token: TOKEN.into(),
            }],
            webhooks: self.webhooks.clone(),
            email: self.options.email.clone(),
            peer_source_ip: self
                .peer_listen
                .contains_key(&m.id)
                .then(|| peer_source_ip(m.id)),
            insecure_plaintext: tls.is_none(),
            limits: self.options.limits.clone(),
            tls,
        };
        let config_path = self.dir.path().join(format!("node{}.toml", m.id));
        std::fs::write(&config_path, toml::to_string(&config).expect("toml"))
            .expect("write config");
        let log_path = self.dir.path().join(format!("node{}.log", m.id));
        self.nodes.push(TestNode {
            id: m.id,
            config,
            config_path,
            log_path,
            child: None,
        });
        let i = self.nodes.len() - 1;
        self.spawn(i);
        i
    }

    /// Starts a node that is not an initial member (to be added with AddNode).
    pub fn start_extra_node(&mut self, id: u64) -> usize {
        self.add_node_process(member(id), false)
    }

    pub fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "node {} already running", node.id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .expect("log file");
        let mut cmd = match self.options.nofile {
            // prlimit execs the node, so the child's pid is the node's.
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(binary("statusmesh"));
                c
            }
            None => Command::new(binary("statusmesh")),
        };
        // The node reads STATUSMESH_* variables as config overrides: keep the test's own out.
        for (k, _) in std::env::vars() {
            if k.starts_with("STATUSMESH_") {
                cmd.env_remove(k);
            }
        }
        if self.options.json_logs {
            cmd.args(["--log-format", "json"]);
        }
        for (id, name, value) in &self.options.node_env {
            if *id == node.id {
                cmd.env(name, value);
            }
        }
        let child = cmd
            .arg("serve")
            .arg("--config")
            .arg(&node.config_path)
            .env("STATUSMESH_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn statusmesh");
        node.child = Some(child);
    }

    /// SIGKILL: the region is gone, nothing is flushed or closed.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process hangs (a frozen VM, a stuck disk) but keeps its sockets.
    pub fn pause(&mut self, i: usize) {
        self.signal(i, nix::sys::signal::Signal::SIGSTOP);
    }

    /// SIGCONT after [`TestCluster::pause`].
    pub fn resume(&mut self, i: usize) {
        self.signal(i, nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&mut self, i: usize, sig: nix::sys::signal::Signal) {
        if let Some(c) = &self.nodes[i].child {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig);
        }
    }

    /// Deletes a stopped node's data directory (its region was rebuilt from nothing).
    pub fn wipe(&mut self, i: usize) {
        assert!(self.nodes[i].child.is_none(), "wipe a stopped node only");
        let _ = std::fs::remove_dir_all(&self.nodes[i].config.data_dir);
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!(
                "node {} did not stop within 15 s of SIGTERM",
                self.nodes[i].id
            );
        }
    }

    /// Sets an environment variable for node `id`'s next start (see [`ClusterOptions::node_env`]).
    pub fn set_node_env(&mut self, id: u64, name: &str, value: &str) {
        self.options
            .node_env
            .retain(|(n, k, _)| !(*n == id && k == name));
        self.options
            .node_env
            .push((id, name.to_owned(), value.to_owned()));
    }

    pub fn index_of(&self, id: u64) -> usize {
        self.nodes.iter().position(|n| n.id == id).expect("node id")
    }

    pub async fn admin(&self, i: usize) -> anyhow::Result<AdminClient<Channel>> {
        admin_client(&self.nodes[i].admin_endpoint(), self.ca_cert().as_deref()).await
    }

    pub async fn status(&self, i: usize) -> anyhow::Result<pb::ClusterStatusReply> {
        let mut c = self.admin(i).await?;
        Ok(c.cluster_status(read(pb::ClusterStatusRequest {}))
            .await?
            .into_inner())
    }

    /// One line per node: its role, term, leader and indexes as it reports them, or why it
    /// could not be asked.
    pub async fn describe(&self) -> String {
        let mut lines = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let line = match self.status(i).await {
                Ok(s) => format!(
                    "node {}: {} term {} leader {:?} applied {} last log {} leader contact {:?} ms",
                    n.id,
                    s.state,
                    s.term,
                    s.leader_id,
                    s.applied_index,
                    s.last_log_index,
                    s.millis_since_leader_contact
                ),
                Err(e) => format!("node {}: no status ({e:#})", n.id),
            };
            lines.push(line);
        }
        lines.join("\n")
    }

    /// Waits until the running nodes agree on a leader; returns its index in `nodes`.
    pub async fn wait_leader(&mut self, limit: Duration) -> usize {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect();
        let this = &*self;
        eventually(limit, "a leader every running node agrees on", || async {
            let mut leader = None;
            for &i in &running {
                let s = this.status(i).await.ok()?;
                let l = s.leader_id?;
                if leader.is_some_and(|x| x != l) {
                    return None;
                }
                leader = Some(l);
            }
            let l = leader?;
            let idx = this.index_of(l);
            running.contains(&idx).then_some(idx)
        })
        .await
    }

    /// Waits until every running node reports the same state digest at the same applied index.
    pub async fn wait_converged(&mut self, limit: Duration) -> String {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect();
        let this = &*self;
        eventually(
            limit,
            "equal state digests on every running node",
            || async {
                let mut seen: Option<(u64, String)> = None;
                for &i in &running {
                    let s = this.status(i).await.ok()?;
                    let here = (s.applied_index, s.state_digest);
                    if seen.as_ref().is_some_and(|x| *x != here) {
                        return None;
                    }
                    seen = Some(here);
                }
                seen.map(|(_, d)| d)
            },
        )
        .await
    }
}

/// Node log lines a failed test prints, per node.
const LOG_TAIL_LINES: usize = 40;

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // A failed test shows what the nodes said: their logs go with the temp dir.
        if std::thread::panicking() {
            for n in &self.nodes {
                let text = std::fs::read_to_string(&n.log_path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
                eprintln!("---- node {} log (last {} lines) ----", n.id, tail.len());
                for l in tail {
                    eprintln!("{l}");
                }
            }
        }
    }
}

/// Polls `check` every 100 ms until it yields a value, or `None` once `limit` has passed.
async fn poll_until<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`eventually`], and on timeout the panic also says what every node reports
/// ([`TestCluster::describe`]), so a failure in CI shows the cluster as it was.
pub async fn eventually_in<T, F, Fut>(
    cluster: &TestCluster,
    limit: Duration,
    what: &str,
    check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll_until(limit, check).await {
        Some(v) => v,
        None => {
            let nodes = cluster.describe().await;
            panic!("timed out after {limit:?} waiting for {what}; the nodes say:\n{nodes}");
        }
    }
}

/// Polls `check` until it yields a value or `limit` passes (then panics naming `what`).
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll_until(limit, check)
        .await
        .unwrap_or_else(|| panic!("timed out after {limit:?} waiting for {what}"))
}

/// Waits until no delivery is pending in the outbox (as the node behind `c` sees it); returns
/// the final counts.
pub async fn wait_outbox_drained(
    c: &AdminClient<Channel>,
    limit: Duration,
) -> pb::OutboxStatusReply {
    eventually(
        limit,
        "the outbox drains (no fan-out under way, no delivery pending)",
        || {
            let mut c = c.clone();
            async move {
                let s = c
                    .outbox_status(read(pb::ReadRequest::default()))
                    .await
                    .ok()?
                    .into_inner();
                (s.pending == 0 && s.fanning_out == 0).then_some(s)
            }
        },
    )
    .await
}

/// Waits until subscriber `id` is in `state` (active, disabled, quarantined); returns it.
pub async fn wait_subscriber_state(
    c: &AdminClient<Channel>,
    id: &str,
    state: &str,
    limit: Duration,
) -> pb::Subscriber {
    eventually(limit, &format!("subscriber {id} becomes {state}"), || {
        let mut c = c.clone();
        let id = id.to_owned();
        async move {
            let s = c
                .get_subscriber(read(pb::GetRequest { id, consistency: 0 }))
                .await
                .ok()?
                .into_inner();
            (s.state == state).then_some(s)
        }
    })
    .await
}

/// An authenticated read request.
pub fn read<T>(m: T) -> tonic::Request<T> {
    authed(m, TOKEN, None).expect("request")
}

/// An authenticated write request with an idempotency key.
pub fn write<T>(m: T, key: &str) -> tonic::Request<T> {
    authed(m, TOKEN, Some(key)).expect("request")
}

/// A fresh idempotency key.
pub fn key(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a component named `name` and returns its id.
pub async fn create_component(c: &mut AdminClient<Channel>, name: &str) -> String {
    let r = c
        .create_component(write(component_request(name), &key("c")))
        .await
        .unwrap()
        .into_inner();
    match r.entity {
        Some(pb::write_reply::Entity::Component(c)) => c.id,
        other => panic!("expected a component, got {other:?}"),
    }
}

pub fn component_request(name: &str) -> pb::CreateComponentRequest {
    pb::CreateComponentRequest {
        name: name.into(),
        ..Default::default()
    }
}
