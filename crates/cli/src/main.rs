//! `statusctl`: the operator CLI over the statusmesh admin gRPC API.

mod args;
mod client;
mod commands;
mod csv;
mod output;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::commands::Ctx;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = client::Client::new(
        &cli.endpoint,
        cli.token,
        cli.ca_cert.as_deref(),
        cli.cert.as_deref().zip(cli.key.as_deref()),
        cli.timeout,
        cli.idempotency_key,
        cli.request_id,
    )?;
    let ctx = Ctx {
        client,
        out: cli.output,
        linearizable: cli.linearizable,
    };
    match cli.command {
        Command::Page(c) => commands::page(&ctx, c).await,
        Command::Component(c) => commands::component(&ctx, c).await,
        Command::Incident(c) => commands::incident(&ctx, c).await,
        Command::Maintenance(c) => commands::maintenance(&ctx, c).await,
        Command::Subscriber(c) => commands::subscriber(&ctx, c).await,
        Command::Event(c) => commands::event(&ctx, c).await,
        Command::Delivery(c) => commands::delivery(&ctx, c).await,
        Command::Cluster(c) => commands::cluster(&ctx, c).await,
        Command::Token(c) => commands::token(&ctx, c).await,
        Command::Audit(c) => commands::audit(&ctx, c).await,
        Command::Whoami => commands::whoami(&ctx).await,
        Command::Backup { out } => commands::backup(&ctx, &out).await,
    }
}
