//! Failover benchmark (not a test): over repeated runs, the time from SIGKILL of the leader to
//! the first acknowledged write through a surviving node, with the `lan` profile on loopback.
//! Every run is bounded (a write gives up after its 8 s write timeout) and every process is
//! killed when the run ends.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use statusmesh_tests::*;

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10)
        .clamp(1, 100);
    let rt = tokio::runtime::Runtime::new()?;
    let mut samples = Vec::new();
    let mut failed_attempts = 0;
    for run in 1..=runs {
        let (ms, failures) = rt.block_on(one_run())?;
        println!("run {run:>2}: first acknowledged write {ms:>5} ms after SIGKILL ({failures} failed attempts)");
        samples.push(ms);
        failed_attempts += failures;
    }
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "\nfailover (lan profile, 3 nodes, {} runs): min {} ms, median {} ms, p90 {} ms, max {} ms; failed write attempts {}",
        samples.len(),
        samples[0],
        pct(0.5),
        pct(0.9),
        samples[samples.len() - 1],
        failed_attempts
    );
    Ok(())
}

async fn one_run() -> anyhow::Result<(u128, u32)> {
    let mut cluster = TestCluster::start(3);
    let leader = cluster.wait_leader(Duration::from_secs(30)).await;
    let mut c = cluster.admin(leader).await?;
    c.create_component(write(component_request("warm-up"), &key("w")))
        .await?;
    let survivor = (leader + 1) % 3;
    let mut s = cluster.admin(survivor).await?;
    let killed = Instant::now();
    cluster.kill(leader);
    let mut failures = 0;
    // One idempotency key for all attempts: a retry can never create two components.
    let k = key("f");
    loop {
        match s
            .create_component(write(component_request("after"), &k))
            .await
        {
            Ok(_) => return Ok((killed.elapsed().as_millis(), failures)),
            Err(_) if killed.elapsed() < Duration::from_secs(30) => failures += 1,
            Err(e) => anyhow::bail!("no write acknowledged within 30 s: {e}"),
        }
    }
}
