//! Failover benchmark (not a test). Over repeated runs, the time from SIGKILL of the leader to
//! the first acknowledged write through a surviving node, for statusmesh with the `lan` and
//! `wan` profiles, and for a 3-member etcd cluster on loopback with the same heartbeat and
//! election timeout window (etcd draws its election timeout from [t, 2t], as statusmesh's
//! profiles do: 400-800 ms for lan, 2000-4000 ms for wan). etcd insists on a timeout of at least
//! five heartbeats, so its heartbeat is 80 ms (lan) and 400 ms (wan) against statusmesh's 100 and
//! 500 ms. For statusmesh it also counts public
//! reads to the survivors that failed during the failover (the goal is zero).
//!
//! Usage: failover-bench [RUNS] [lan|wan|both]   (defaults 5 and both)
//! Needs `etcd` on PATH (scripts/bench-failover.sh installs Debian's etcd-server). Every run is
//! bounded (30 s) and every process it starts is killed when the run ends.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use statusmesh_cluster::TimingProfile;
use statusmesh_proto::admin as pb;
use statusmesh_tests::*;

const RUN_LIMIT: Duration = Duration::from_secs(30);

struct Figures {
    samples: Vec<u128>,
    failed_reads: u64,
    reads: u64,
}

impl Figures {
    fn line(&mut self, name: &str) -> String {
        self.samples.sort_unstable();
        let s = &self.samples;
        let pct = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
        format!(
            "{name:<22} runs {:>2}  min {:>5} ms  median {:>5} ms  p90 {:>5} ms  max {:>5} ms",
            s.len(),
            s[0],
            pct(0.5),
            pct(0.9),
            s[s.len() - 1]
        )
    }

    fn median(&self) -> u128 {
        let mut s = self.samples.clone();
        s.sort_unstable();
        s[(s.len() - 1) / 2]
    }
}

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5)
        .clamp(1, 50);
    let which = std::env::args().nth(2).unwrap_or_else(|| "both".into());
    let profiles: Vec<TimingProfile> = match which.as_str() {
        "lan" => vec![TimingProfile::Lan],
        "wan" => vec![TimingProfile::Wan],
        "both" => vec![TimingProfile::Lan, TimingProfile::Wan],
        other => bail!("unknown profile {other:?} (lan, wan or both)"),
    };
    let rt = tokio::runtime::Runtime::new()?;
    let mut report = Vec::new();
    for profile in profiles {
        let mut ours = Figures {
            samples: vec![],
            failed_reads: 0,
            reads: 0,
        };
        let mut etcd = Figures {
            samples: vec![],
            failed_reads: 0,
            reads: 0,
        };
        for run in 1..=runs {
            let (ms, reads, failed) = rt.block_on(statusmesh_run(profile))?;
            println!(
                "{profile} run {run:>2}: statusmesh {ms:>5} ms to the first acknowledged write; {reads} public reads, {failed} failed"
            );
            ours.samples.push(ms);
            ours.reads += reads;
            ours.failed_reads += failed;
            let ms = rt.block_on(etcd_run(profile))?;
            println!("{profile} run {run:>2}: etcd       {ms:>5} ms to the first acknowledged put");
            etcd.samples.push(ms);
        }
        let ratio = ours.median() as f64 / etcd.median().max(1) as f64;
        report.push(format!(
            "{}\n{}\n  statusmesh public reads during failover: {} sent, {} failed\n  ratio of medians statusmesh / etcd: {ratio:.2} (goal: <= 1.0)",
            ours.line(&format!("statusmesh {profile}")),
            etcd.line(&format!("etcd {profile}")),
            ours.reads,
            ours.failed_reads,
        ));
    }
    println!("\nwrite unavailability after SIGKILL of the leader (3 nodes, loopback):");
    for r in report {
        println!("{r}");
    }
    Ok(())
}

/// Polls the survivors' public pages until `stop`; returns (sent, failed).
fn public_reader(urls: Vec<String>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let (sent, failed) = (AtomicU64::new(0), AtomicU64::new(0));
        while !stop.load(Ordering::Relaxed) {
            for u in &urls {
                sent.fetch_add(1, Ordering::Relaxed);
                match client.get(u).send().await {
                    Ok(r) if r.status().is_success() => {}
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (sent.into_inner(), failed.into_inner())
    })
}

async fn statusmesh_run(profile: TimingProfile) -> anyhow::Result<(u128, u64, u64)> {
    let mut cluster = TestCluster::start_options(
        3,
        ClusterOptions {
            profile,
            write_timeout_ms: 30_000,
            stale_after_ms: 20_000,
            ..ClusterOptions::default()
        },
    );
    let leader = cluster.wait_leader(RUN_LIMIT).await;
    let mut c = cluster.admin(leader).await?;
    c.create_component(write(component_request("warm-up"), &key("w")))
        .await?;
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let mut s = cluster.admin(survivors[0]).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let reader = public_reader(
        survivors
            .iter()
            .map(|&i| cluster.nodes[i].public_url("/api/v2/summary.json"))
            .collect(),
        stop.clone(),
    );
    let old_leader = cluster.nodes[leader].id;
    let mut watcher = cluster.admin(survivors[1]).await?;
    let killed = Instant::now();
    cluster.kill(leader);
    // When does a survivor first name a new leader?
    let elected = tokio::spawn(async move {
        while killed.elapsed() < RUN_LIMIT {
            if let Ok(st) = watcher
                .cluster_status(read(pb::ClusterStatusRequest {}))
                .await
            {
                if st.get_ref().leader_id.is_some_and(|l| l != old_leader) {
                    return Some(killed.elapsed().as_millis());
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    });
    // One call: the node retries across the election with the same idempotency key until the
    // write commits or its deadline passes.
    let result = s
        .create_component(write(component_request("after"), &key("f")))
        .await;
    let ms = killed.elapsed().as_millis();
    if let Ok(Some(e)) = elected.await {
        println!("  (a survivor named the new leader {e} ms after the kill)");
    }
    stop.store(true, Ordering::Relaxed);
    let (reads, failed) = reader.await?;
    result.context("no write acknowledged after the failover")?;
    Ok((ms, reads, failed))
}

/// A 3-member etcd cluster on loopback; killed on drop.
struct Etcd {
    children: Vec<Option<Child>>,
    clients: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_etcd(profile: TimingProfile) -> anyhow::Result<Etcd> {
    let t = profile.timings();
    let dir = tempfile::TempDir::new()?;
    let ports: Vec<(u16, u16)> = (0..3)
        .map(|_| (free_port_block(1), free_port_block(1)))
        .collect();
    let initial = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("e{i}=http://127.0.0.1:{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut children = Vec::new();
    let mut clients = Vec::new();
    for (i, (client, peer)) in ports.iter().enumerate() {
        let log = std::fs::File::create(dir.path().join(format!("e{i}.log")))?;
        let child = Command::new("etcd")
            .args(["--name", &format!("e{i}")])
            .arg("--data-dir")
            .arg(dir.path().join(format!("e{i}")))
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{client}"),
            ])
            .args([
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{client}"),
            ])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-state", "new"])
            .args(["--heartbeat-interval", &etcd_heartbeat(profile).to_string()])
            .args([
                "--election-timeout",
                &t.election_min.as_millis().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start etcd (install it: apt-get install etcd-server)")?;
        children.push(Some(child));
        clients.push(format!("http://127.0.0.1:{client}"));
    }
    Ok(Etcd {
        children,
        clients,
        _dir: dir,
    })
}

/// etcd refuses an election timeout under 5 heartbeats: keep the election window equal to
/// statusmesh's (what decides failover time) and shorten the heartbeat if needed.
fn etcd_heartbeat(profile: TimingProfile) -> u128 {
    let t = profile.timings();
    t.heartbeat.as_millis().min(t.election_min.as_millis() / 5)
}

/// `(member_id, leader_id)` from one member's status.
async fn etcd_status(http: &reqwest::Client, url: &str) -> Option<(String, String)> {
    let v: serde_json::Value = http
        .post(format!("{url}/v3/maintenance/status"))
        .body("{}")
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some((
        v["header"]["member_id"].as_str()?.to_owned(),
        v["leader"].as_str()?.to_owned(),
    ))
}

async fn etcd_put(http: &reqwest::Client, url: &str, key: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = serde_json::json!({ "key": b64.encode(key), "value": b64.encode("v") });
    match http
        .post(format!("{url}/v3/kv/put"))
        .json(&body)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r
            .json::<serde_json::Value>()
            .await
            .is_ok_and(|v| v.get("error").is_none() && v.get("header").is_some()),
        _ => false,
    }
}

async fn etcd_run(profile: TimingProfile) -> anyhow::Result<u128> {
    let mut etcd = start_etcd(profile)?;
    // Like statusmesh's single write call, one put may wait for the election to finish (etcd
    // holds a proposal while it has no leader): a long timeout, so the figure is etcd's own.
    let http = reqwest::Client::builder().timeout(RUN_LIMIT).build()?;
    let started = Instant::now();
    // Wait until a put succeeds, then find the leader.
    while !etcd_put(&http, &etcd.clients[0], "warm-up").await {
        if started.elapsed() > RUN_LIMIT {
            bail!("etcd did not come up");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut leader = None;
    for (i, url) in etcd.clients.iter().enumerate() {
        if let Some((me, l)) = etcd_status(&http, url).await {
            if me == l {
                leader = Some(i);
            }
        }
    }
    let leader = leader.context("no etcd member says it leads")?;
    let survivor = etcd.clients[(leader + 1) % 3].clone();
    let killed = Instant::now();
    if let Some(mut c) = etcd.children[leader].take() {
        let _ = c.kill();
        let _ = c.wait();
    }
    // A put held by etcd while it has no leader may still fail at etcd's own request timeout
    // (about 5 s) even though a new leader exists sooner; so a new put starts every 20 ms and
    // the first acknowledgement counts (20 ms resolution).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u128>();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0u32;
    loop {
        tokio::select! {
            Some(ms) = rx.recv() => {
                tasks.abort_all();
                return Ok(ms);
            }
            _ = tick.tick() => {
                if killed.elapsed() > RUN_LIMIT {
                    bail!("no etcd put acknowledged within 30 s");
                }
                n += 1;
                let (http, url, tx) = (http.clone(), survivor.clone(), tx.clone());
                tasks.spawn(async move {
                    if etcd_put(&http, &url, &format!("after-{n}")).await {
                        let _ = tx.send(killed.elapsed().as_millis());
                    }
                });
            }
        }
    }
}
