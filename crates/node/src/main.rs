//! `statusmesh`: the node binary. Thin: parse, set up logging and a crash-fast panic hook,
//! call the library.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use statusmesh_server::demo::{run_demo, DemoOptions};
use statusmesh_server::{serve, shutdown_signal, Config};

#[derive(Parser)]
#[command(
    name = "statusmesh",
    version,
    about = "A replicated status page node that keeps talking when a region burns"
)]
struct Cli {
    /// Log lines on stderr: `human` (default) or `json` (one object per line, with the span
    /// fields such as `request_id`, for log shippers). The level filter is `STATUSMESH_LOG`
    /// (default `info,openraft=warn`).
    #[arg(long, value_enum, env = "STATUSMESH_LOG_FORMAT", default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node from a TOML config (every key overridable by STATUSMESH_* variables).
    Serve {
        #[arg(long, env = "STATUSMESH_CONFIG")]
        config: PathBuf,
    },
    /// Run a three-region demo cluster (paris, montreal, singapore) on this machine.
    Demo {
        /// Where the three nodes keep their data, configs and logs.
        #[arg(long, default_value = "./statusmesh-demo")]
        data_dir: PathBuf,
        /// First public HTTP port (one per region: this, +1, +2).
        #[arg(long, default_value_t = 8081)]
        public_port: u16,
        /// First admin gRPC port.
        #[arg(long, default_value_t = 7001)]
        admin_port: u16,
        /// First peer (Raft) port.
        #[arg(long, default_value_t = 9001)]
        peer_port: u16,
        /// Fire drill: once the cluster is up, take the leader's region down (SIGKILL), post an
        /// incident through a surviving region, report what customers and subscribers saw,
        /// bring the region back, then stop. Exit status 0 when the cluster rode it out.
        #[arg(long)]
        drill: bool,
        /// Run the demo without TLS (plaintext on loopback) — for debugging only.
        #[arg(long)]
        insecure_plaintext: bool,
    },
    /// Check a config file (with STATUSMESH_* overrides applied) and exit: 0 when valid,
    /// else an error naming the key.
    Check {
        #[arg(long, env = "STATUSMESH_CONFIG")]
        config: PathBuf,
    },
    /// Seed a new cluster from a backup (`statusctl backup`): checks the file and that this
    /// node's data_dir is empty, then stages it; the next `serve` restores it through the log
    /// once the new cluster has a leader, so every member gets the backup's state and digest.
    Restore {
        #[arg(long)]
        from: PathBuf,
        #[arg(long, env = "STATUSMESH_CONFIG")]
        config: PathBuf,
    },
    /// Quorum lost for good (e.g. two of three regions destroyed): turn this stopped survivor
    /// into a one-node cluster with its data, like etcd's --force-new-cluster. Refuses while a
    /// quorum of the old members answers, unless --force is given twice. Then start it with
    /// `serve` and add new nodes with `statusctl cluster add-node` / `promote`.
    Recover {
        /// Required: says you mean it.
        #[arg(long, required = true)]
        force_new_cluster: bool,
        /// Given twice, proceeds even though a quorum of the old cluster answers (split brain!).
        #[arg(long, action = clap::ArgAction::Count)]
        force: u8,
        #[arg(long, env = "STATUSMESH_CONFIG")]
        config: PathBuf,
    },
    /// Make certificates: a cluster CA, node certificates, operator client certificates.
    #[command(subcommand)]
    Certs(CertsCmd),
}

#[derive(Subcommand)]
enum CertsCmd {
    /// Create the cluster CA (ca.pem, ca.key) in DIR. Keep ca.key offline when you can.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "statusmesh cluster CA")]
        name: String,
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issue node-ID.pem / node-ID.key for a node, signed by DIR's CA. The certificate names
    /// node-ID.statusmesh (peers check it) and every --host (for the admin port's clients).
    Node {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        id: u64,
        /// A DNS name or IP address clients use to reach this node (repeatable).
        #[arg(long = "host")]
        hosts: Vec<String>,
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Issue operator-NAME.pem / .key: a client certificate for statusctl (--cert/--key) with a
    /// role (read-only, operator, admin), accepted where tls.operator_ca is DIR's CA.
    Operator {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
}

fn run_certs(cmd: CertsCmd) -> anyhow::Result<()> {
    use statusmesh_tls::pki;
    match cmd {
        CertsCmd::Init { dir, name, days } => {
            let path = pki::create_ca(&dir, &name, days)?;
            println!(
                "created CA {} (key {})",
                path.display(),
                dir.join(pki::CA_KEY).display()
            );
        }
        CertsCmd::Node {
            dir,
            id,
            hosts,
            days,
        } => {
            let (cert, key) = pki::issue_node(&dir, id, &hosts, days)?;
            println!(
                "issued {} and {} for node {id}",
                cert.display(),
                key.display()
            );
        }
        CertsCmd::Operator {
            dir,
            name,
            role,
            days,
        } => {
            let (cert, key) = pki::issue_operator(&dir, &name, &role, days)?;
            println!(
                "issued {} and {} for operator {name} ({role})",
                cert.display(),
                key.display()
            );
        }
    }
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STATUSMESH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => logs.with_target(false).init(),
        // The event's fields under "fields", the innermost span's (request_id, method) under
        // "span", the enclosing ones under "spans".
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    // A panic anywhere means this node's state can no longer be trusted: log it and exit, and
    // let the supervisor restart a clean process (Raft recovers from the durable log).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        tracing::error!(%info, "panic: exiting");
        std::process::exit(101);
    }));
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        match cli.command {
            Cmd::Certs(cmd) => run_certs(cmd),
            Cmd::Check { config } => {
                let c = Config::load(&config, std::env::vars())?;
                println!("{}: valid (node {} in {})", config.display(), c.node_id, c.region);
                Ok(())
            }
            Cmd::Recover { force_new_cluster: _, force, config } => {
                let config = Config::load(&config, std::env::vars())?;
                eprintln!("WARNING: forcing a new cluster from node {}'s local data. Every other member of the old cluster must be gone for good and must never be restarted with its old data.", config.node_id);
                let r = statusmesh_server::recover::force_new_cluster(&config, force).await?;
                eprintln!("WARNING: the old Raft data was moved to {} (delete it once the new cluster is healthy).", r.moved_to.display());
                println!(
                    "recovered the state up to log index {} (digest {}); start this node with `statusmesh serve`, then add new nodes with `statusctl cluster add-node` and `promote`",
                    r.last_index, r.digest
                );
                Ok(())
            }
            Cmd::Restore { from, config } => {
                let config = Config::load(&config, std::env::vars())?;
                let b = statusmesh_server::restore::prepare(&config, &from)?;
                println!(
                    "staged the backup of node {} at index {} (state digest {}); start this node with `statusmesh serve` and it restores once the new cluster has a leader",
                    b.node_id, b.applied_index, b.digest
                );
                Ok(())
            }
            Cmd::Serve { config } => {
                let config = Config::load(&config, std::env::vars())?;
                serve(config, shutdown_signal()).await
            }
            Cmd::Demo {
                data_dir,
                public_port,
                admin_port,
                peer_port,
                drill,
                insecure_plaintext,
            } => {
                let exe = std::env::current_exe().context("cannot find the statusmesh binary")?;
                run_demo(
                    DemoOptions {
                        data_dir,
                        public_port,
                        admin_port,
                        peer_port,
                        exe,
                        drill,
                        tls: !insecure_plaintext,
                    },
                    shutdown_signal(),
                )
                .await
            }
        }
    })
}
