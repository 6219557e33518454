//! A test harness that runs real `statusmesh` processes on loopback: start, SIGKILL, SIGTERM,
//! restart, add a node, and wait for conditions with deadlines (never bare sleeps). Every
//! process is killed when the cluster value is dropped, even when a test fails.
//!
//! The binaries must be built first (`cargo build --workspace`); `.ci/run` does that.

// Test-only crate: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

pub mod receiver;

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
    loop {
        let first = free_port();
        if first < 32_000 - n
            && (1..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", first + i)).is_ok())
        {
            // Keep the counter past the block so no later caller gets one of its ports.
            for _ in 1..n {
                free_port();
            }
            return first;
        }
    }
}

/// A port no other test of this process has been given, below Linux's ephemeral range (so
/// outgoing connections never take it), and free right now. The starting point depends on the
/// process id so concurrent test processes start far apart.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 10_000 + (std::process::id() * 211) % 20_000;
    for _ in 0..20_000 {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (10_000 + (base - 10_000 + offset) % 22_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port found");
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
    pub fn admin_endpoint(&self) -> String {
        format!("http://{}", self.config.listen.admin)
    }

    pub fn public_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.config.listen.public)
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
}

#[derive(Debug)]
pub struct TestCluster {
    pub dir: TempDir,
    pub nodes: Vec<TestNode>,
    members: Vec<MemberConfig>,
    snapshot_every: u64,
    webhooks: WebhooksConfig,
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
        let dir = TempDir::new().expect("temp dir");
        let members: Vec<MemberConfig> = (1..=n).map(member).collect();
        let mut cluster = TestCluster {
            dir,
            nodes: Vec::new(),
            members: members.clone(),
            snapshot_every,
            webhooks,
        };
        for m in &members {
            cluster.add_node_process(m.clone(), true);
        }
        cluster
    }

    fn add_node_process(&mut self, m: MemberConfig, initial: bool) -> usize {
        let config = Config {
            node_id: m.id,
            region: m.region.clone(),
            data_dir: self.dir.path().join(format!("node{}", m.id)),
            listen: ListenConfig {
                peer: m.peer_addr.parse().expect("addr"),
                admin: m.admin_addr.parse().expect("addr"),
                public: m.public_addr.parse().expect("addr"),
            },
            timing_profile: TimingProfile::Lan,
            snapshot_every: self.snapshot_every,
            write_timeout_ms: Some(8000),
            stale_after_ms: Some(2000),
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
        let child = Command::new(binary("statusmesh"))
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

    pub fn index_of(&self, id: u64) -> usize {
        self.nodes.iter().position(|n| n.id == id).expect("node id")
    }

    pub async fn admin(&self, i: usize) -> anyhow::Result<AdminClient<Channel>> {
        let ch = tonic::transport::Endpoint::from_shared(self.nodes[i].admin_endpoint())?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(20))
            .connect()
            .await?;
        Ok(AdminClient::new(ch))
    }

    pub async fn status(&self, i: usize) -> anyhow::Result<pb::ClusterStatusReply> {
        let mut c = self.admin(i).await?;
        Ok(c.cluster_status(read(pb::ClusterStatusRequest {}))
            .await?
            .into_inner())
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

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Polls `check` until it yields a value or `limit` passes (then panics naming `what`).
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

pub fn component_request(name: &str) -> pb::CreateComponentRequest {
    pb::CreateComponentRequest {
        name: name.into(),
        ..Default::default()
    }
}
