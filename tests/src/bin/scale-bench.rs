//! The outbox at scale on a real cluster: N subscribers (default 1,000,000, the limit) imported
//! into a 3-node cluster that snapshots every 1,000 entries (the default), then
//! - every node's RSS, and its peak (which covers building the snapshots of the full state);
//! - a follower SIGKILLed and restarted: the time until its public port answers again, and
//!   until it serves the leader's applied index (it loads its snapshot and replays its log);
//! - a new node added after the log was purged: the time until it serves the leader's index
//!   (it installs a snapshot sent by the leader).
//!
//! Usage: scale-bench [SUBSCRIBERS]   (scripts/bench-scale.sh). Everything it starts is stopped
//! when it ends.

// Benchmark tool: a failed unwrap is a failed run with its message.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use statusmesh_proto::admin as pb;
use statusmesh_server::config::WebhooksConfig;
use statusmesh_tests::notify::import_webhooks;
use statusmesh_tests::procstat::{mib_list, nodes_kib, proc_kib};
use statusmesh_tests::*;

const LIMIT: Duration = Duration::from_secs(600);
/// The nodes' default interval.
const SNAPSHOT_EVERY: u64 = 1000;

/// Node `i`'s applied index as its public port reports it (None while it does not answer).
async fn public_index(http: &reqwest::Client, cluster: &TestCluster, i: usize) -> Option<u64> {
    let resp = http
        .get(cluster.nodes[i].public_url("/api/v2/status.json"))
        .send()
        .await
        .ok()
        .filter(|r| r.status().is_success())?;
    resp.headers()
        .get("x-statusmesh-applied-index")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Polls node `i`'s public port from now: (when it first answered, when it reached `index`).
async fn time_to_serve(
    http: &reqwest::Client,
    cluster: &TestCluster,
    i: usize,
    index: u64,
) -> anyhow::Result<(Duration, Duration)> {
    let t0 = Instant::now();
    let mut answered = None;
    while t0.elapsed() < LIMIT {
        if let Some(at) = public_index(http, cluster, i).await {
            let first = *answered.get_or_insert(t0.elapsed());
            if at >= index {
                return Ok((first, t0.elapsed()));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("node index {i} did not reach applied index {index} within {LIMIT:?}")
}

fn snapshots(node: &TestNode, what: &str) -> usize {
    node.log().matches(what).count()
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

async fn run(n: usize) {
    let cfg = WebhooksConfig {
        allow_loopback: true,
        ..WebhooksConfig::default()
    };
    let mut cluster = TestCluster::start_configured(3, SNAPSHOT_EVERY, cfg);
    // A panic while the cluster is alive: its Drop prints the nodes' logs.
    if let Err(e) = measure(&mut cluster, n).await {
        panic!("scale-bench failed: {e:#}");
    }
}

async fn measure(cluster: &mut TestCluster, n: usize) -> anyhow::Result<()> {
    let leader = cluster.wait_leader(LIMIT).await;
    let follower = (leader + 1) % 3;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;

    println!("importing {n} subscribers...");
    let started = Instant::now();
    // No event is recorded, so nothing is ever sent to these addresses. Imports of 100,000
    // rows each: one call stays within the admin client's request timeout.
    let mut admin = cluster.admin(follower).await?;
    let mut imported = 0;
    for start in (0..n).step_by(100_000) {
        let urls = (start..n.min(start + 100_000)).map(|i| format!("http://127.0.0.1:9/hooks/{i}"));
        imported += import_webhooks(&mut admin, urls)
            .await
            .with_context(|| format!("the import of rows {start}.. failed"))?;
    }
    let import_secs = started.elapsed().as_secs_f64();

    // Writes after the import, until every node has built a snapshot holding all of it.
    let mut c = cluster.admin(leader).await?;
    let component = create_component(&mut c, "API").await;
    let built: Vec<usize> = cluster
        .nodes
        .iter()
        .map(|node| snapshots(node, "snapshot built"))
        .collect();
    let mut writes = 0;
    while cluster
        .nodes
        .iter()
        .zip(&built)
        .any(|(node, b)| snapshots(node, "snapshot built") <= *b)
    {
        writes += 1;
        if writes > 2 * SNAPSHOT_EVERY {
            bail!("no snapshot on every node after {writes} writes");
        }
        c.update_component(write(
            pb::UpdateComponentRequest {
                id: component.clone(),
                description: Some(format!("write {writes}")),
                ..Default::default()
            },
            &key("w"),
        ))
        .await?;
    }
    let rss = nodes_kib(cluster, "VmRSS:");
    let peak = nodes_kib(cluster, "VmHWM:");

    // A follower dies and comes back.
    let index = public_index(&http, cluster, leader).await.unwrap_or(0);
    cluster.kill(follower);
    cluster.spawn(follower);
    let (restart_answer, restart_caught_up) =
        time_to_serve(&http, cluster, follower, index).await?;
    let restarted_rss = cluster.nodes[follower]
        .pid()
        .map_or(0, |p| proc_kib(p, "VmHWM:"));

    // A new member joins after the log was purged.
    let new = cluster.start_extra_node(9);
    let index = public_index(&http, cluster, leader).await.unwrap_or(0);
    let t0 = Instant::now();
    c.add_node(read(cluster.nodes[new].add_node_request()))
        .await
        .context("AddNode failed")?;
    let (_, joined) = time_to_serve(&http, cluster, new, index).await?;
    let join = t0.elapsed().max(joined);
    let installed = snapshots(&cluster.nodes[new], "snapshot installed");
    let new_peak = cluster.nodes[new]
        .pid()
        .map_or(0, |p| proc_kib(p, "VmHWM:"));
    let max_peak = peak.iter().copied().chain([restarted_rss, new_peak]).max();

    println!("\noutbox at scale: {n} webhook subscribers, 3-node cluster on loopback, a snapshot every {SNAPSHOT_EVERY} entries");
    println!(
        "  imported                          {:>8} in {import_secs:.1} s ({:.0} rows/s)",
        imported,
        imported as f64 / import_secs
    );
    println!("  writes until every node snapshotted {writes:>6}");
    println!(
        "  node RSS after the import         {} MiB (peak, snapshots included: {} MiB)",
        mib_list(&rss),
        mib_list(&peak)
    );
    println!(
        "  restarted follower                answers after {:.1} s, serves index {index} after {:.1} s (peak RSS {:.0} MiB)",
        restart_answer.as_secs_f64(),
        restart_caught_up.as_secs_f64(),
        restarted_rss as f64 / 1024.0
    );
    println!(
        "  new member after the purge        serves index {index} {:.1} s after AddNode ({installed} snapshot installed, peak RSS {:.0} MiB)",
        join.as_secs_f64(),
        new_peak as f64 / 1024.0
    );
    let gib = max_peak.unwrap_or(0) as f64 / (1024.0 * 1024.0);
    println!(
        "  targets: RSS <= 1 GiB per node: {} (highest peak {gib:.2} GiB); restart <= 30 s: {}; catch-up <= 60 s: {}",
        verdict(gib <= 1.0),
        verdict(restart_caught_up <= Duration::from_secs(30)),
        verdict(join <= Duration::from_secs(60) && installed > 0)
    );
    Ok(())
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("SUBSCRIBERS must be a number"))
        .unwrap_or(statusmesh_model::limits::MAX_SUBSCRIBERS)
        .clamp(1, statusmesh_model::limits::MAX_SUBSCRIBERS);
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    rt.block_on(run(n));
}
