//! `statusmesh demo`: a three-region cluster on this machine, as three child processes of
//! `statusmesh serve`, seeded with a realistic page on first start.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use statusmesh_proto::admin::admin_client::AdminClient;
use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_proto::authed;
use tokio::process::{Child, Command};

use crate::config::{Config, ListenConfig, MemberConfig, TokenConfig, WebhooksConfig};

pub const REGIONS: [&str; 3] = ["paris", "montreal", "singapore"];

/// How much of a child's own output the demo repeats when the child dies during start-up.
const MESSAGE_LINES: usize = 12;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub data_dir: PathBuf,
    /// Public HTTP ports are `public_port`, +1, +2 (one per region).
    pub public_port: u16,
    pub admin_port: u16,
    pub peer_port: u16,
    /// The `statusmesh` binary to run as children.
    pub exe: PathBuf,
    /// Run the fire drill once the cluster is up, then stop.
    pub drill: bool,
    /// Admin and peer traffic over TLS with the demo's own CA (in `<data_dir>/tls`).
    pub tls: bool,
}

impl DemoOptions {
    fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }

    /// The admin endpoints, in region order.
    pub fn endpoints(&self, configs: &[Config]) -> Vec<String> {
        let scheme = if self.tls { "https" } else { "http" };
        configs
            .iter()
            .map(|c| format!("{scheme}://{}", c.listen.admin))
            .collect()
    }

    /// The CA statusctl must trust, when TLS is on.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.tls
            .then(|| self.tls_dir().join(statusmesh_tls::pki::CA_CERT))
    }
}

/// Creates the demo CA and node certificates once; later runs reuse them.
fn ensure_demo_certs(opts: &DemoOptions) -> anyhow::Result<()> {
    use statusmesh_tls::pki;
    let dir = opts.tls_dir();
    if !dir.join(pki::CA_CERT).exists() {
        pki::create_ca(&dir, "statusmesh demo CA", 3650)?;
    }
    for id in 1..=REGIONS.len() as u64 {
        if !pki::node_files(&dir, id).0.exists() {
            pki::issue_node(&dir, id, &["127.0.0.1".into(), "localhost".into()], 365)?;
        }
    }
    Ok(())
}

/// An admin client for `endpoint` (https:// endpoints trust `ca`).
pub async fn admin_client(
    endpoint: &str,
    ca: Option<&Path>,
    timeout: Duration,
) -> anyhow::Result<AdminClient<tonic::transport::Channel>> {
    statusmesh_proto::connect_admin(endpoint, ca, Duration::from_secs(1), timeout)
        .await
        .map_err(anyhow::Error::msg)
}

pub(crate) struct DemoNode {
    region: &'static str,
    config_path: PathBuf,
    log_path: PathBuf,
    /// Where this run of the child starts in its (appended) log.
    log_start: u64,
    exe: PathBuf,
    child: Child,
}

impl DemoNode {
    fn spawn(
        exe: &Path,
        region: &'static str,
        config_path: PathBuf,
        log_path: PathBuf,
    ) -> anyhow::Result<DemoNode> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let log_start = log.metadata()?.len();
        let child = Command::new(exe)
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        Ok(DemoNode {
            region,
            config_path,
            log_path,
            log_start,
            exe: exe.to_path_buf(),
            child,
        })
    }

    /// When the child has exited: an error naming its region, its exit status and the last
    /// lines it wrote in this run (its own error message).
    fn exited(&mut self) -> Option<anyhow::Error> {
        let status = self.child.try_wait().ok()??;
        let written = std::fs::read(&self.log_path)
            .ok()
            .and_then(|all| all.get(self.log_start as usize..).map(<[u8]>::to_vec))
            .unwrap_or_default();
        let message = start_up_error(&String::from_utf8_lossy(&written));
        Some(anyhow::anyhow!(
            "the {} node exited during start-up ({status}; config {}, log {}):\n{message}",
            self.region,
            self.config_path.display(),
            self.log_path.display()
        ))
    }

    /// SIGKILL, and wait for the process to be gone.
    pub(crate) async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts the node again from its config and data directory.
    pub(crate) async fn respawn(&mut self) -> anyhow::Result<()> {
        let _ = self.child.kill().await;
        let fresh = DemoNode::spawn(
            &self.exe,
            self.region,
            self.config_path.clone(),
            self.log_path.clone(),
        )?;
        self.child = fresh.child;
        self.log_start = fresh.log_start;
        Ok(())
    }
}

/// What a child that died wrote about why: its `Error: ...` report (with the causes, without a
/// backtrace), else its last lines.
fn start_up_error(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    if let Some(start) = lines.iter().rposition(|l| l.starts_with("Error: ")) {
        let report: Vec<&str> = lines[start..]
            .iter()
            .take_while(|l| !l.starts_with("Stack backtrace:"))
            .filter(|l| !l.trim().is_empty())
            .copied()
            .collect();
        return report.join("\n");
    }
    let lines: Vec<&str> = lines.into_iter().filter(|l| !l.trim().is_empty()).collect();
    match lines[lines.len().saturating_sub(MESSAGE_LINES)..].join("\n") {
        tail if tail.is_empty() => "(it wrote nothing)".to_owned(),
        tail => tail,
    }
}

/// The three node configs of the demo cluster (the same on every run with the same options).
pub fn demo_configs(opts: &DemoOptions, token: &str) -> Vec<Config> {
    let addr = |base: u16, i: usize| format!("127.0.0.1:{}", base + i as u16);
    let members: Vec<MemberConfig> = REGIONS
        .iter()
        .enumerate()
        .map(|(i, r)| MemberConfig {
            id: i as u64 + 1,
            region: (*r).into(),
            peer_addr: addr(opts.peer_port, i),
            admin_addr: addr(opts.admin_port, i),
            public_addr: addr(opts.public_port, i),
        })
        .collect();
    REGIONS
        .iter()
        .enumerate()
        .map(|(i, r)| Config {
            node_id: i as u64 + 1,
            region: (*r).into(),
            data_dir: opts.data_dir.join(r),
            listen: ListenConfig {
                peer: addr(opts.peer_port, i)
                    .parse()
                    .unwrap_or_else(|_| unreachable!()),
                admin: addr(opts.admin_port, i)
                    .parse()
                    .unwrap_or_else(|_| unreachable!()),
                public: addr(opts.public_port, i)
                    .parse()
                    .unwrap_or_else(|_| unreachable!()),
            },
            timing_profile: statusmesh_cluster::TimingProfile::Lan,
            snapshot_every: 1000,
            write_timeout_ms: None,
            stale_after_ms: None,
            initial_members: members.clone(),
            tokens: vec![TokenConfig {
                name: "admin".into(),
                token: token.into(),
            }],
            peer_source_ip: None,
            tls: opts.tls.then(|| {
                let dir = opts.tls_dir();
                let (cert, key) = statusmesh_tls::pki::node_files(&dir, i as u64 + 1);
                crate::config::TlsConfig {
                    ca_cert: dir.join(statusmesh_tls::pki::CA_CERT),
                    cert,
                    key,
                    admin_cert: None,
                    admin_key: None,
                    operator_ca: Some(dir.join(statusmesh_tls::pki::CA_CERT)),
                    public_cert: None,
                    public_key: None,
                }
            }),
            insecure_plaintext: !opts.tls,
            limits: Default::default(),
            // The demo's receivers run on this machine.
            webhooks: WebhooksConfig {
                allow_loopback: true,
                ..WebhooksConfig::default()
            },
        })
        .collect()
}

/// Reuses the token of an earlier run (from statusctl.env) so a restarted demo keeps working
/// with the same statusctl settings.
fn load_or_create_token(env_file: &Path) -> String {
    if let Ok(text) = std::fs::read_to_string(env_file) {
        for line in text.lines() {
            if let Some(t) = line.strip_prefix("export STATUSMESH_TOKEN=") {
                return t.trim().to_owned();
            }
        }
    }
    hex::encode(rand::random::<[u8; 24]>())
}

pub async fn run_demo(
    opts: DemoOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("cannot create {}", opts.data_dir.display()))?;
    let data_dir = opts.data_dir.canonicalize()?;
    let opts = DemoOptions {
        data_dir: data_dir.clone(),
        ..opts
    };
    let env_file = data_dir.join("statusctl.env");
    // statusctl is built next to statusmesh; sourcing the env file puts both on PATH.
    let bin_dir = opts.exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let token = load_or_create_token(&env_file);
    if opts.tls {
        ensure_demo_certs(&opts)?;
    }
    let configs = demo_configs(&opts, &token);
    let endpoints = opts.endpoints(&configs);
    let ca = opts.ca_cert();
    let ca_line = match &ca {
        Some(p) => format!("export STATUSMESH_CA_CERT={}\n", p.display()),
        None => "unset STATUSMESH_CA_CERT\n".into(),
    };
    std::fs::write(
        &env_file,
        format!(
            "# Source this file: . {}\nexport STATUSMESH_ENDPOINT={}\nexport STATUSMESH_TOKEN={}\n{ca_line}export PATH=\"{}:$PATH\"\n",
            env_file.display(),
            endpoints.join(","),
            token,
            bin_dir.display()
        ),
    )?;

    let mut nodes = Vec::new();
    for (region, config) in REGIONS.iter().zip(&configs) {
        let path = data_dir.join(format!("{region}.toml"));
        std::fs::write(&path, toml::to_string(config)?)?;
        nodes.push(DemoNode::spawn(
            &opts.exe,
            region,
            path,
            data_dir.join(format!("{region}.log")),
        )?);
    }

    // Ctrl-C or SIGTERM during start-up stops the children too (not only once it is up).
    tokio::pin!(shutdown);
    let start = async {
        let mut client = wait_for_leader(
            &mut nodes,
            &endpoints,
            ca.as_deref(),
            &token,
            Duration::from_secs(30),
        )
        .await?;
        let page_url = format!("http://{}/", configs[0].listen.public);
        seed_if_empty(&mut client, &token, &page_url).await?;
        // A quorum may elect a leader while a third node is failing to start: still a failed
        // start, reported with that node's error rather than found later.
        if let Some(died) = nodes.iter_mut().find_map(DemoNode::exited) {
            return Err(died);
        }
        if !opts.drill {
            print_welcome(&configs, &endpoints, &nodes, &env_file);
        }
        anyhow::Ok(())
    };
    let result = tokio::select! {
        started = start => started,
        () = &mut shutdown => Err(anyhow::anyhow!("interrupted during start-up")),
    };
    if let Err(e) = &result {
        eprintln!(
            "demo failed to start: {e:#} (see the logs in {})",
            data_dir.display()
        );
    } else if opts.drill {
        let drilled =
            crate::drill::run(&configs, &endpoints, ca.as_deref(), &mut nodes, &token).await;
        stop_all(&mut nodes).await;
        return match drilled {
            Ok(true) => Ok(()),
            Ok(false) => bail!("the fire drill found a problem"),
            Err(e) => Err(e.context("the fire drill could not run")),
        };
    } else {
        supervise(&mut nodes, shutdown).await;
    }
    stop_all(&mut nodes).await;
    result
}

/// Waits until some node reports a leader; fails at once when a child exits first (with that
/// child's own error), or after `limit`.
async fn wait_for_leader(
    nodes: &mut [DemoNode],
    endpoints: &[String],
    ca: Option<&Path>,
    token: &str,
    limit: Duration,
) -> anyhow::Result<AdminClient<tonic::transport::Channel>> {
    // Watched beside the search, not between its attempts: an attempt can hang for its whole
    // timeout (something else may hold a node's port and never answer).
    let first_exit = async {
        loop {
            if let Some(died) = nodes.iter_mut().find_map(DemoNode::exited) {
                return died;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        died = first_exit => Err(died),
        found = find_leader(endpoints, ca, token, limit) => found,
    }
}

async fn find_leader(
    endpoints: &[String],
    ca: Option<&Path>,
    token: &str,
    limit: Duration,
) -> anyhow::Result<AdminClient<tonic::transport::Channel>> {
    let started = Instant::now();
    let attempt = Duration::from_secs(3);
    loop {
        for ep in endpoints {
            let asked = tokio::time::timeout(attempt, async {
                let mut c = admin_client(ep, ca, attempt).await.ok()?;
                let req = authed(pb::ClusterStatusRequest {}, token, None).ok()?;
                let s = c.cluster_status(req).await.ok()?;
                s.get_ref().leader_id.is_some().then_some(c)
            })
            .await;
            if let Ok(Some(c)) = asked {
                return Ok(c);
            }
        }
        if started.elapsed() > limit {
            bail!("no leader was elected within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Seeds the page once: fixed idempotency keys make a repeated or interrupted seed harmless,
/// and an existing page (any component) is left alone.
async fn seed_if_empty(
    c: &mut AdminClient<tonic::transport::Channel>,
    token: &str,
    page_url: &str,
) -> anyhow::Result<()> {
    let req = authed(
        pb::ReadRequest {
            consistency: pb::Consistency::Linearizable as i32,
        },
        token,
        None,
    )
    .map_err(anyhow::Error::msg)?;
    if !c
        .list_components(req)
        .await?
        .into_inner()
        .components
        .is_empty()
    {
        return Ok(());
    }
    let mut n = 0;
    let mut key = || {
        n += 1;
        format!("demo-seed-{n}")
    };
    c.set_page(w(
        token,
        pb::SetPageRequest {
            name: Some("Acme Cloud".into()),
            url: Some(page_url.into()),
            time_zone: Some("Europe/Paris".into()),
            emit_maintenance_status: None,
        },
        key(),
    )?)
    .await?;
    let mut ids = std::collections::HashMap::new();
    for (name, group, desc) in [
        ("Platform", None, "Core services"),
        ("API", Some("Platform"), "Public REST API"),
        ("Dashboard", Some("Platform"), "Web console"),
        ("Database", Some("Platform"), "Managed PostgreSQL"),
        ("Regions", None, "Data centers"),
        ("Europe (Paris)", Some("Regions"), "eu-west"),
        ("North America (Montreal)", Some("Regions"), "ca-east"),
        ("Asia (Singapore)", Some("Regions"), "ap-southeast"),
        ("Email delivery", None, "Transactional email"),
    ] {
        let reply = c
            .create_component(w(
                token,
                pb::CreateComponentRequest {
                    name: name.into(),
                    description: Some(desc.into()),
                    group: group.is_none() && name != "Email delivery",
                    group_id: group.and_then(|g| ids.get(g).cloned()),
                    showcase: true,
                    ..Default::default()
                },
                key(),
            )?)
            .await?
            .into_inner();
        if let Some(Entity::Component(comp)) = reply.entity {
            ids.insert(name, comp.id);
        }
    }
    let id = |n: &str| ids.get(n).cloned().unwrap_or_default();
    c.create_incident(w(token, pb::CreateIncidentRequest {
        name: "Elevated API error rates in Europe".into(),
        status: Some("identified".into()),
        impact: Some("major".into()),
        body: "Some API requests served from Paris fail with 503. We have identified a faulty load balancer and are replacing it.".into(),
        started_at: None,
        component_changes: vec![
            pb::ComponentChange { component_id: id("API"), status: "partial_outage".into() },
            pb::ComponentChange { component_id: id("Europe (Paris)"), status: "degraded_performance".into() },
        ],
    }, key())?).await?;
    let start = chrono::Utc::now() + chrono::Duration::days(2);
    let end = start + chrono::Duration::hours(2);
    c.schedule_maintenance(w(
        token,
        pb::ScheduleMaintenanceRequest {
            name: "Database engine upgrade".into(),
            body: "We will upgrade the managed PostgreSQL fleet. Connections may drop briefly."
                .into(),
            scheduled_for: start.to_rfc3339(),
            scheduled_until: end.to_rfc3339(),
            component_ids: vec![id("Database")],
            manual_transitions: false,
        },
        key(),
    )?)
    .await?;
    Ok(())
}

fn w<T>(token: &str, message: T, key: String) -> anyhow::Result<tonic::Request<T>> {
    authed(message, token, Some(&key)).map_err(anyhow::Error::msg)
}

fn print_welcome(configs: &[Config], endpoints: &[String], nodes: &[DemoNode], env_file: &Path) {
    println!("\nstatusmesh demo: three regions running on this machine\n");
    for ((c, n), admin) in configs.iter().zip(nodes).zip(endpoints) {
        println!(
            "  {:<10} node {}  public http://{}  admin {}  (pid {})",
            c.region,
            c.node_id,
            c.listen.public,
            admin,
            n.child.id().unwrap_or(0)
        );
    }
    if configs[0].tls.is_some() {
        println!("\nAdmin and peer traffic use TLS with the demo's own CA; the env file points statusctl at it.");
    }
    println!("\nTry it (in another terminal):");
    println!("  . {}", env_file.display());
    println!("  statusctl cluster status");
    println!("  statusctl --endpoint {} incident create --name \"Login failures\" --body \"Investigating\" --impact minor", endpoints[2]);
    println!("  statusctl incident list");
    println!("  curl http://{}/api/cluster", configs[0].listen.public);
    println!(
        "\nKill one node (e.g. `kill {}`) and the other two keep serving; bring it back with:",
        nodes[0].child.id().unwrap_or(0)
    );
    println!(
        "  statusmesh serve --config {}",
        nodes[0].config_path.display()
    );
    println!("\nPress Ctrl-C to stop all nodes.");
}

/// Waits for Ctrl-C. A child that exits is reported, not restarted: the demo shows what the
/// remaining regions do without it.
async fn supervise(nodes: &mut [DemoNode], shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut reported = vec![false; nodes.len()];
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        for (i, n) in nodes.iter_mut().enumerate() {
            if !reported[i] {
                if let Ok(Some(status)) = n.child.try_wait() {
                    reported[i] = true;
                    println!("node {} exited ({status}); the others keep serving. Restart it with: statusmesh serve --config {}", n.region, n.config_path.display());
                }
            }
        }
    }
}

async fn stop_all(nodes: &mut [DemoNode]) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for n in nodes.iter() {
        if let Some(pid) = n.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
    for n in nodes.iter_mut() {
        match tokio::time::timeout(Duration::from_secs(10), n.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                let _ = n.child.kill().await;
            }
        }
    }
    println!("all demo nodes stopped");
}

#[cfg(test)]
mod tests {
    use super::start_up_error;

    #[test]
    fn a_start_up_error_is_the_report_without_its_backtrace() {
        let out = "2026-12-01T22:00:00Z INFO starting\nError: invalid configuration\n\nCaused by:\n    unknown field `x`\n\nStack backtrace:\n   0: main\n";
        assert_eq!(
            start_up_error(out),
            "Error: invalid configuration\nCaused by:\n    unknown field `x`"
        );
        assert_eq!(start_up_error("a\n\nb\n"), "a\nb");
        assert_eq!(start_up_error(""), "(it wrote nothing)");
    }
}
