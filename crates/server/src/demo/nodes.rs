//! The demo's child processes: their configurations and certificates, start-up (with the
//! child's own error when it dies), supervision and an orderly stop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use statusmesh_proto::admin::admin_client::AdminClient;
use tokio::process::{Child, Command};

use super::{DemoOptions, REGIONS};
use crate::config::{Config, ListenConfig, MemberConfig, TokenConfig, WebhooksConfig};

/// How much of a child's own output the demo repeats when the child dies during start-up.
const MESSAGE_LINES: usize = 12;

/// Creates the demo CA and node certificates once; later runs reuse them.
pub(super) fn ensure_demo_certs(opts: &DemoOptions) -> anyhow::Result<()> {
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
        .map_err(anyhow::Error::from)
}

pub(super) struct DemoNode {
    pub(super) region: &'static str,
    pub(super) config_path: PathBuf,
    pub(super) log_path: PathBuf,
    /// Where this run of the child starts in its (appended) log.
    log_start: u64,
    exe: PathBuf,
    pub(super) child: Child,
}

impl DemoNode {
    pub(super) fn spawn(
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
    pub(super) fn exited(&mut self) -> Option<anyhow::Error> {
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
            email: None,
        })
        .collect()
}

/// Waits for Ctrl-C. A child that exits is reported, not restarted: the demo shows what the
/// remaining regions do without it.
pub(super) async fn supervise(
    nodes: &mut [DemoNode],
    shutdown: impl std::future::Future<Output = ()>,
) {
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

pub(super) async fn stop_all(nodes: &mut [DemoNode]) {
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
