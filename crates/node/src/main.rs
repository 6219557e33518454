//! `statusmesh`: the node binary. Thin: parse, set up logging and a crash-fast panic hook,
//! call the library.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use statusmesh_server::demo::{run_demo, DemoOptions};
use statusmesh_server::{serve, shutdown_signal, Config};

#[derive(Parser)]
#[command(
    name = "statusmesh",
    version,
    about = "A replicated status page node that keeps talking when a region burns"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
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
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STATUSMESH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
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
                    },
                    shutdown_signal(),
                )
                .await
            }
        }
    })
}
