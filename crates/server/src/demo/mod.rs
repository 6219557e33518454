//! `statusmesh demo`: a three-region cluster on this machine, as three child processes of
//! `statusmesh serve`, seeded with a realistic page on first start.
//!
//! [`nodes`] starts, watches and stops the children; [`seed`] writes the first page; [`drill`]
//! is `statusmesh demo --drill`, the fire drill run against the started cluster. Dependencies
//! point from here down to those three; `drill` and `seed` use `nodes` only.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use statusmesh_proto::admin as pb;
use statusmesh_proto::admin::admin_client::AdminClient;
use statusmesh_proto::authed;

use crate::config::Config;

mod drill;
mod nodes;
mod seed;

pub use nodes::{admin_client, demo_configs};
use nodes::{ensure_demo_certs, stop_all, supervise, DemoNode};
use seed::seed_if_empty;

pub const REGIONS: [&str; 3] = ["paris", "montreal", "singapore"];

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
        let drilled = drill::run(&configs, &endpoints, ca.as_deref(), &mut nodes, &token).await;
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
