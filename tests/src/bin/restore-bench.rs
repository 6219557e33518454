//! How large a backup restores into a 3-node cluster, and how fast: builds a state of about
//! the given size in process (incidents with long bodies, through the real `apply`), writes it
//! as a `statusctl backup` file, stages it with `statusmesh restore` on one node of a fresh
//! cluster of real processes on the chosen timing profile, and times the restore until every
//! node holds the backup's digest.
//!
//! `scripts/bench-restore.sh [MiB] [lan|wan]` (default 256 MiB, wan).

// Benchmark tool: a failed unwrap is a failed run with its message.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use statusmesh_cluster::TimingProfile;
use statusmesh_model::backup::Backup;
use statusmesh_model::command::{NewIncident, Proposal};
use statusmesh_model::restore::RESTORE_CHUNK_BYTES;
use statusmesh_model::{codec, Command as Cmd, Id, Impact, IncidentStatus, State, Timestamp};
use statusmesh_tests::backups::emptied_cluster_with_restore;
use statusmesh_tests::ClusterOptions;

const T0: i64 = 1_800_000_000_000;

/// A state whose JSON is at least `bytes` long: incidents with 25,000-character bodies (the
/// body limit), quotes and newlines included so the text is escaped on every encoding.
fn big_state(bytes: usize) -> State {
    let para = "The \"primary\" storage array in region eu-west lost a controller; writes fail over to the standby.\n";
    let body: String = para.repeat(25_000 / para.len());
    let mut state = State::default();
    let mut n = 0u64;
    loop {
        for _ in 0..500 {
            n += 1;
            let p = Proposal::internal(
                format!("bench-{n}"),
                "bench",
                1,
                Cmd::CreateIncident {
                    id: Id::parse("id", &format!("inc{n}")).unwrap(),
                    update_id: Id::parse("id", &format!("upd{n}")).unwrap(),
                    spec: NewIncident {
                        name: format!("Incident {n}"),
                        status: IncidentStatus::Resolved,
                        impact: Impact::Minor,
                        body: body.clone(),
                        started_at: None,
                        component_changes: vec![],
                    },
                },
            );
            let p = Proposal {
                at: Timestamp(T0 + n as i64 * 1000),
                ..p
            };
            state.apply(n, &p).result.unwrap();
        }
        if state.canonical_json().len() >= bytes {
            return state;
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let profile: TimingProfile = args
        .get(2)
        .map(|p| p.parse().unwrap())
        .unwrap_or(TimingProfile::Wan);

    let started = Instant::now();
    let state = big_state(mib << 20);
    let backup = Backup::of(&state, 1, state.incidents.len() as u64, Timestamp(T0)).unwrap();
    let digest = state.digest();
    drop(state);
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("big.backup");
    std::fs::write(&file, codec::encode(&backup).unwrap()).unwrap();
    let state_bytes = backup.state.len();
    let chunks = state_bytes.div_ceil(RESTORE_CHUNK_BYTES);
    println!(
        "state: {:.1} MiB of JSON ({chunks} chunks of at most {} KiB), built in {:.1?}",
        state_bytes as f64 / (1 << 20) as f64,
        RESTORE_CHUNK_BYTES / 1024,
        started.elapsed()
    );
    drop(backup);

    let options = ClusterOptions {
        profile,
        write_timeout_ms: 60_000,
        ..ClusterOptions::default()
    };
    let mut cluster =
        emptied_cluster_with_restore(3, options, &file, Duration::from_secs(60)).await;
    let started = Instant::now();
    for i in 0..3 {
        cluster.spawn(i);
    }
    let limit = Duration::from_secs(1800);
    let mut done = [None; 3];
    while done.iter().any(Option::is_none) {
        assert!(
            started.elapsed() < limit,
            "not restored on every node within {limit:?}: {done:?}\n{}",
            cluster.nodes[0].log()
        );
        for (i, d) in done.iter_mut().enumerate() {
            if d.is_none()
                && cluster
                    .status(i)
                    .await
                    .is_ok_and(|s| s.state_digest == digest)
            {
                *d = Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let slowest = done.iter().flatten().max().copied().unwrap_or_default();
    let rss: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|n| n.pid().map_or(0, rss_kib) / 1024)
        .collect();
    println!(
        "restored on 3 nodes ({profile} profile) in {:.1?} (per node: {:?}), {:.1} MiB/s; peak RSS per node {rss:?} MiB",
        slowest,
        done.map(|d| d.unwrap_or_default()),
        state_bytes as f64 / (1 << 20) as f64 / slowest.as_secs_f64()
    );
    // The restored cluster takes writes.
    let mut c = cluster.admin(1).await.unwrap();
    statusmesh_tests::create_component(&mut c, "after restore").await;
    println!("the restored cluster accepts writes");
}
