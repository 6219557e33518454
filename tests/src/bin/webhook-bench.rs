//! Webhook fan-out benchmark: one incident update delivered to N subscribers (default 10,000)
//! served by one receiver on loopback, from a real 3-node cluster. Prints the time from commit
//! to the last 2xx, deliveries per second, the Raft entries spent on attempt records, and the
//! same receiver's raw HTTP POST ceiling measured with wrk in the same run.
//!
//! Usage: webhook-bench [SUBSCRIBERS] [--kill-leader]   (default 100000, at most 1000000)
//! With `--kill-leader`, the leader is SIGKILLed once a third of the deliveries arrived: every
//! subscriber must still get the event, duplicates only under its one `webhook-id`, counted.
//! Needs `wrk` on PATH (scripts/bench-webhooks.sh installs it). Everything it starts is
//! stopped when it ends.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use statusmesh_server::config::WebhooksConfig;
use statusmesh_tests::notify::{bench_incident, bench_update, import_webhooks};
use statusmesh_tests::procstat::{cpu_all, mib_list, nodes_kib};
use statusmesh_tests::receiver::Receiver;
use statusmesh_tests::*;

const LIMIT: Duration = Duration::from_secs(300);

fn wrk_post(url: &str, body_file: &std::path::Path, secs: u64) -> anyhow::Result<f64> {
    let dir = tempfile::TempDir::new()?;
    let script = dir.path().join("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
             local f = io.open(\"{}\", \"rb\")\nwrk.body = f:read(\"*a\")\nf:close()\n",
            body_file.display()
        ),
    )?;
    let out = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{secs}s"), "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .context("cannot run wrk (install it: apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx or 3xx responses") {
        bail!("wrk saw error responses:\n{text}");
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("wrk printed no figures:\n{text}"))
}

/// CPU time (user + system) of a process so far, in ms.
async fn leader_index(cluster: &mut TestCluster) -> anyhow::Result<u64> {
    let l = cluster.wait_leader(LIMIT).await;
    Ok(cluster.status(l).await?.last_log_index)
}

fn main() -> anyhow::Result<()> {
    let kill = std::env::args().any(|a| a == "--kill-leader");
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000)
        .clamp(1, statusmesh_model::limits::MAX_SUBSCRIBERS);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(n, kill))
}

async fn run(n: usize, kill: bool) -> anyhow::Result<()> {
    // The receiver keeps what the benchmark counts, and does the same work for wrk's ceiling
    // as for the deliveries: the ratio compares senders, not two receivers.
    let recv = Receiver::start_compact().await;
    // WEBHOOK_BENCH_IN_FLIGHT overrides the leader's max_in_flight (default 256).
    let max_in_flight = std::env::var("WEBHOOK_BENCH_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WebhooksConfig::default().max_in_flight);
    let cfg = WebhooksConfig {
        allow_loopback: true,
        max_in_flight,
        ..WebhooksConfig::default()
    };
    println!("leader max_in_flight {max_in_flight}");
    let mut cluster = TestCluster::start_configured(3, 1000, cfg);
    let leader = cluster.wait_leader(LIMIT).await;
    let follower = (leader + 1) % 3;
    let c = cluster.admin(follower).await?;

    // The incident exists before the subscribers, so the measured update is the only fan-out.
    let incident = bench_incident(&mut c.clone()).await?;
    println!("importing {n} subscribers...");
    let started = Instant::now();
    let url = recv.url("");
    let imported = import_webhooks(&mut c.clone(), (0..n).map(|i| format!("{url}/s/{i}"))).await?;
    println!(
        "  {} subscribers in {:.1} s",
        imported,
        started.elapsed().as_secs_f64()
    );
    let rss_imported = nodes_kib(&cluster, "VmRSS:");

    let index_before = leader_index(&mut cluster).await?;
    let leader = cluster.wait_leader(LIMIT).await;
    // For profiling: WEBHOOK_BENCH_PAUSE=SECS prints the leader's pid and waits before the update.
    if let Some(secs) = std::env::var("WEBHOOK_BENCH_PAUSE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        println!(
            "leader pid {:?}; fan-out in {secs} s",
            cluster.nodes[leader].pid()
        );
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
    let cpu_before = cpu_all(&cluster);
    let t0 = Instant::now();
    bench_update(&mut c.clone(), &incident).await?;
    let committed = t0.elapsed();
    let mut killed = None;
    if kill {
        recv.wait_for(LIMIT, |r| r.len() >= n / 3).await;
        cluster.kill(leader);
        killed = Some((recv.count(), t0.elapsed()));
    }
    let done = recv
        .wait_for(LIMIT, |r| {
            r.len() >= n && r.iter().map(|x| &x.path).collect::<BTreeSet<_>>().len() >= n
        })
        .await;
    let cpu_after = cpu_all(&cluster);
    let requests = recv.requests();
    if !done {
        bail!("only {} of {n} deliveries arrived", requests.len());
    }
    let unique = requests
        .iter()
        .map(|x| &x.path)
        .collect::<BTreeSet<_>>()
        .len();
    let ids: BTreeSet<Option<&String>> = requests.iter().map(|r| r.webhook_id.as_ref()).collect();
    let last = requests.iter().map(|r| r.at).max().unwrap();
    let fanout = last.duration_since(t0) - committed.min(last.duration_since(t0));
    let total = last.duration_since(t0);
    // Wait for the outbox to drain, then count the Raft entries the fan-out cost.
    let now_leader = cluster.wait_leader(LIMIT).await;
    let status = wait_outbox_drained(&cluster.admin(now_leader).await?, LIMIT).await;
    let index_after = leader_index(&mut cluster).await?;
    let record_writes = index_after - index_before - 1;
    let rate = n as f64 / total.as_secs_f64();

    // The same receiver's raw POST ceiling, with one of the delivered bodies.
    let dir = tempfile::TempDir::new()?;
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, &requests[0].body)?;
    let ceiling = wrk_post(&recv.url("/raw"), &body_file, 5)?;
    let rss_after = nodes_kib(&cluster, "VmRSS:");
    let peak = nodes_kib(&cluster, "VmHWM:");
    drop(cluster);

    println!("\nwebhook fan-out: 1 incident update -> {n} subscribers, 3-node cluster on loopback");
    println!(
        "  write acknowledged after          {:>8.1} ms",
        committed.as_secs_f64() * 1000.0
    );
    println!(
        "  commit -> last 2xx                {:>8.1} ms",
        total.as_secs_f64() * 1000.0
    );
    println!(
        "  (after the acknowledgement)       {:>8.1} ms",
        fanout.as_secs_f64() * 1000.0
    );
    println!("  deliveries/s                      {rate:>8.0}");
    println!(
        "  body                              {:>8} bytes",
        requests[0].body.len()
    );
    if let Some((at, when)) = killed {
        println!(
            "  leader SIGKILLed after {at} deliveries ({:.0} ms after the commit); every subscriber got the event: {}; duplicates {} , webhook-ids seen {}",
            when.as_secs_f64() * 1000.0,
            if unique >= n { "yes" } else { "NO" },
            requests.len() - unique,
            ids.len()
        );
    }
    println!("  requests received                 {:>8}", requests.len());
    println!(
        "  Raft entries for progress records {record_writes:>8}  ({:.0} deliveries per entry; leader counted {} entries, {:.1} KiB)",
        n as f64 / record_writes.max(1) as f64,
        status.record_writes,
        status.record_bytes as f64 / 1024.0
    );
    println!(
        "  node RSS after the import         {:>8}  MiB",
        mib_list(&rss_imported)
    );
    println!(
        "  node RSS after the fan-out        {:>8}  MiB (peak {} MiB)",
        mib_list(&rss_after),
        mib_list(&peak)
    );
    println!(
        "  delivered total (outbox)          {:>8}",
        status.delivered_total
    );
    println!("  receiver raw POST ceiling (wrk)   {ceiling:>8.0} req/s  (2 threads, 64 connections, 5 s, same body)");
    println!(
        "  ratio deliveries/s : ceiling      {:>8.2}",
        rate / ceiling
    );
    let used: Vec<u64> = cpu_after
        .iter()
        .zip(&cpu_before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let followers: u64 = (0..3).filter(|i| *i != leader).map(|i| used[i]).sum();
    println!(
        "  CPU until the last 2xx            leader {} ms, followers {} ms, receiver+bench {} ms",
        used[leader], followers, used[3]
    );
    println!(
        "  target: {n} in <= 5 s: {}; ratio >= 0.5: {}",
        if total <= Duration::from_secs(5) {
            "met"
        } else {
            "NOT met"
        },
        if rate / ceiling >= 0.5 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
