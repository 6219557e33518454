//! Email fan-out benchmark: one incident update mailed to N email subscribers (default
//! 100,000, imported) through a local SMTP relay (the test suite's aiosmtpd sink on loopback),
//! from a real 3-node cluster. Prints the time from the commit to the last accepted message,
//! messages per second, and — the anchor, in the same run — the same relay's ceiling with a bare
//! lettre client sending the very same message bytes over as many connections.
//!
//! Usage: email-bench [SUBSCRIBERS]   (default 100000, at most 1000000)
//! EMAIL_BENCH_CONNECTIONS sets the pool size of both (default 8, the `[email]` default).
//! Everything it starts is stopped when it ends.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use statusmesh_proto::admin as pb;
use statusmesh_server::config::EmailConfig;
use statusmesh_tests::notify::{bench_incident, bench_update, import_webhooks};
use statusmesh_tests::procstat::{cpu_all, cpu_ms, mib_list, nodes_kib};
use statusmesh_tests::smtp::SmtpSink;
use statusmesh_tests::*;

const LIMIT: Duration = Duration::from_secs(900);
/// Messages the anchor sends (enough for a steady rate, few enough to be quick).
const ANCHOR_MESSAGES: usize = 20_000;

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000)
        .clamp(1, statusmesh_model::limits::MAX_SUBSCRIBERS);
    let connections: u32 = std::env::var("EMAIL_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(n, connections))
}

/// Waits until the relay has accepted `target` messages; the instant it saw the last.
async fn wait_count(sink: &SmtpSink, target: usize) -> anyhow::Result<Instant> {
    let start = Instant::now();
    loop {
        if sink.count() >= target {
            return Ok(Instant::now());
        }
        if start.elapsed() > LIMIT {
            bail!("only {} of {target} messages arrived", sink.count());
        }
        // (Counting lists the relay's directory: often enough for a figure in tenths of a
        // second, rarely enough not to compete with the relay for the CPU.)
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The relay's ceiling: `count` copies of `raw` to distinct recipients over `connections`
/// bare lettre connections (TCP_NODELAY, as the node's), each sending back to back.
/// Messages per second.
async fn anchor(
    sink: &SmtpSink,
    raw: Vec<u8>,
    count: usize,
    connections: u32,
) -> anyhow::Result<f64> {
    let raw = Arc::new(raw);
    let before = sink.count();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let port = sink.port;
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (raw, next) = (raw.clone(), next.clone());
        tasks.spawn(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            tcp.set_nodelay(true)?;
            let mut conn =
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &ClientId::default())
                    .await?;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(());
                }
                let envelope = Envelope::new(
                    Some("status@acme.test".parse()?),
                    vec![format!("anchor{i}@example.com").parse()?],
                )?;
                conn.send(&envelope, &raw).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let elapsed = t0.elapsed();
    wait_count(sink, before + count).await?;
    Ok(count as f64 / elapsed.as_secs_f64())
}

async fn run(n: usize, connections: u32) -> anyhow::Result<()> {
    let sink = SmtpSink::start();
    let email = EmailConfig {
        connections,
        ..sink.email_config()
    };
    let mut cluster = TestCluster::start_options(
        3,
        ClusterOptions {
            email: Some(email),
            ..ClusterOptions::default()
        },
    );
    let leader = cluster.wait_leader(LIMIT).await;
    let c = cluster.admin((leader + 1) % 3).await?;
    c.clone()
        .set_page(write(
            pb::SetPageRequest {
                name: Some("Acme".into()),
                url: Some(cluster.nodes[leader].public_url("/")),
                ..Default::default()
            },
            &key("page"),
        ))
        .await?;
    // The incident exists before the subscribers, so the measured update is the only fan-out.
    let incident = bench_incident(&mut c.clone()).await?;
    println!("importing {n} email subscribers...");
    let started = Instant::now();
    let imported = import_webhooks(
        &mut c.clone(),
        (0..n).map(|i| format!("mailto:customer{i}@example.com")),
    )
    .await?;
    println!(
        "  {imported} subscribers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rss_imported = nodes_kib(&cluster, "VmRSS:");
    let leader = cluster.wait_leader(LIMIT).await;
    let cpu_before = cpu_all(&cluster);
    let relay_before = cpu_ms(&sink.pid().to_string());
    let t0 = Instant::now();
    bench_update(&mut c.clone(), &incident).await?;
    let committed = t0.elapsed();
    let last = wait_count(&sink, n).await?;
    let cpu_after = cpu_all(&cluster);
    let relay_used = cpu_ms(&sink.pid().to_string()) - relay_before;
    let total = last.duration_since(t0);
    let rate = n as f64 / total.as_secs_f64();
    let recipients = sink.recipients();
    let unique: BTreeSet<&String> = recipients.iter().collect();
    let now_leader = cluster.wait_leader(LIMIT).await;
    let status = wait_outbox_drained(&cluster.admin(now_leader).await?, LIMIT).await;
    let rss_after = nodes_kib(&cluster, "VmRSS:");
    let peak = nodes_kib(&cluster, "VmHWM:");
    let raw = sink.raw(1).expect("a message");
    let ceiling = anchor(
        &sink,
        raw.clone(),
        ANCHOR_MESSAGES.min(n.max(1_000)),
        connections,
    )
    .await?;
    drop(cluster);

    println!("\nemail fan-out: 1 incident update -> {n} email subscribers, 3-node cluster, aiosmtpd relay on loopback");
    println!(
        "  write acknowledged after              {:>8.1} ms",
        committed.as_secs_f64() * 1000.0
    );
    println!(
        "  commit -> last accepted message       {:>8.1} ms",
        total.as_secs_f64() * 1000.0
    );
    println!("  messages/s                            {rate:>8.0}");
    println!(
        "  message size                          {:>8} bytes",
        raw.len()
    );
    println!(
        "  accepted {} for {} recipients: every subscriber mailed: {}; repeats {}",
        recipients.len(),
        unique.len(),
        if unique.len() >= n { "yes" } else { "NO" },
        recipients.len() - unique.len()
    );
    println!(
        "  delivered total (outbox)              {:>8}",
        status.delivered_total
    );
    println!(
        "  node RSS after the import             {:>8}  MiB",
        mib_list(&rss_imported)
    );
    println!(
        "  node RSS after the fan-out            {:>8}  MiB (peak {} MiB)",
        mib_list(&rss_after),
        mib_list(&peak)
    );
    let used: Vec<u64> = cpu_after
        .iter()
        .zip(&cpu_before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let followers: u64 = (0..3).filter(|i| *i != leader).map(|i| used[i]).sum();
    println!(
        "  CPU until the last message            leader {} ms, followers {} ms, relay {} ms",
        used[leader], followers, relay_used
    );
    println!(
        "  relay ceiling (bare lettre, {connections} connections, same bytes) {ceiling:>8.0} messages/s"
    );
    println!(
        "  ratio messages/s : ceiling            {:>8.2}",
        rate / ceiling
    );
    Ok(())
}
