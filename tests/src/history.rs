//! Client workload and invariant checks for the fault scenarios.
//!
//! The workload adds components named `w<n>` (each write with its own idempotency key,
//! retried on other nodes with the same key until it is acknowledged or its deadline passes),
//! reads the set of names back with linearizable reads, and polls every surviving node's public
//! page. Every operation's invocation and completion are recorded.
//!
//! The model is a grow-only set with unique adds, for which linearizability reduces to checks
//! on the recorded history (`check_linearizable`):
//! - a read contains every add acknowledged before the read was invoked;
//! - a read contains no add invoked after the read completed;
//! - all reads are totally ordered by inclusion, consistently with real time (a read that
//!   completed before another began saw a subset of it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use statusmesh_proto::admin::{self as pb};
use tokio::task::JoinHandle;

use crate::{component_request, key, read, write, TestCluster};

#[derive(Debug, Clone)]
pub enum OpKind {
    /// Add `name`; `acked` when the cluster acknowledged it.
    Add { name: String, acked: bool },
    /// A linearizable read's result.
    Read { names: BTreeSet<String> },
}

#[derive(Debug, Clone)]
pub struct Op {
    pub kind: OpKind,
    pub invoke: Instant,
    pub complete: Instant,
}

/// Which nodes clients may talk to, by index in the cluster (the scenario keeps it current).
pub type Reachable = Arc<Mutex<BTreeSet<usize>>>;

#[derive(Debug, Default)]
pub struct Recorded {
    pub ops: Vec<Op>,
    /// Public reads that failed, per node index, with the error.
    pub public_failures: Vec<(usize, String)>,
    pub public_reads: u64,
    /// `x-statusmesh-applied-index` went backwards on a node (index, from, to).
    pub index_regressions: Vec<(usize, u64, u64)>,
    pub write_errors: Vec<String>,
    /// Linearizable reads that failed (a node without a leader refuses them; not a violation).
    pub read_errors: Vec<String>,
}

/// A running workload; [`Workload::finish`] stops it and returns the history.
pub struct Workload {
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    recorded: Arc<Mutex<Recorded>>,
    /// Reset a node's monotonicity tracking (it restarted).
    epochs: Arc<Mutex<BTreeMap<usize, u64>>>,
    endpoints: Endpoints,
}

/// A node's admin endpoint and the CA its certificate chains to (when it speaks TLS).
#[derive(Debug, Clone)]
struct AdminEndpoint {
    url: String,
    ca: Option<std::path::PathBuf>,
}

/// The nodes' admin and public addresses, by index; grows when nodes are added.
#[derive(Default, Clone)]
struct Endpoints {
    admins: Arc<Mutex<Vec<AdminEndpoint>>>,
    publics: Arc<Mutex<Vec<String>>>,
}

impl Endpoints {
    fn refresh(&self, cluster: &TestCluster) {
        *self.admins.lock().unwrap() = cluster
            .nodes
            .iter()
            .map(|n| AdminEndpoint {
                url: n.admin_endpoint(),
                ca: n.ca_cert(),
            })
            .collect();
        *self.publics.lock().unwrap() = cluster
            .nodes
            .iter()
            .map(|n| n.public_url("/api/v2/status.json"))
            .collect();
    }
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload").finish_non_exhaustive()
    }
}

fn pick(reachable: &Reachable, n: u64) -> Option<usize> {
    let set = reachable.lock().unwrap();
    if set.is_empty() {
        return None;
    }
    set.iter().copied().nth((n as usize) % set.len())
}

impl Workload {
    /// Starts writers, a linearizable reader and public readers against `cluster`.
    pub fn start(cluster: &TestCluster, reachable: Reachable, write_deadline: Duration) -> Self {
        let endpoints = Endpoints::default();
        let admins = endpoints.admins.clone();
        let publics = endpoints.publics.clone();
        endpoints.refresh(cluster);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let epochs: Arc<Mutex<BTreeMap<usize, u64>>> = Arc::default();
        let mut tasks = Vec::new();
        let prefix = key("w").replace('-', "");
        for writer in 0..2u64 {
            let (stop, recorded, reachable, admins) = (
                stop.clone(),
                recorded.clone(),
                reachable.clone(),
                admins.clone(),
            );
            let prefix = prefix.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let name = format!("w{prefix}x{writer}x{n}");
                    let idem = key("add");
                    let invoke = Instant::now();
                    let mut acked = false;
                    let mut attempt = 0u64;
                    while invoke.elapsed() < write_deadline {
                        attempt += 1;
                        let Some(i) = pick(&reachable, n + attempt + writer) else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        let ep = admins.lock().unwrap()[i].clone();
                        match add(&ep, &name, &idem).await {
                            Ok(()) => {
                                acked = true;
                                break;
                            }
                            Err(e) => {
                                recorded.lock().unwrap().write_errors.push(e);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                    recorded.lock().unwrap().ops.push(Op {
                        kind: OpKind::Add { name, acked },
                        invoke,
                        complete: Instant::now(),
                    });
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        {
            let (stop, recorded, reachable, admins) = (
                stop.clone(),
                recorded.clone(),
                reachable.clone(),
                admins.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let Some(i) = pick(&reachable, n) else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let invoke = Instant::now();
                    let ep = admins.lock().unwrap()[i].clone();
                    match linearizable_names(&ep).await {
                        Ok(names) => recorded.lock().unwrap().ops.push(Op {
                            kind: OpKind::Read { names },
                            invoke,
                            complete: Instant::now(),
                        }),
                        Err(e) => recorded.lock().unwrap().read_errors.push(e),
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }));
        }
        {
            let (stop, recorded, reachable, epochs, publics) = (
                stop.clone(),
                recorded.clone(),
                reachable.clone(),
                epochs.clone(),
                publics.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(2))
                    .build()
                    .unwrap();
                let mut last: BTreeMap<(usize, u64), u64> = BTreeMap::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let targets: Vec<usize> = reachable.lock().unwrap().iter().copied().collect();
                    for i in targets {
                        let epoch = epochs.lock().unwrap().get(&i).copied().unwrap_or(0);
                        let url = publics.lock().unwrap()[i].clone();
                        let res = client.get(&url).send().await;
                        let mut r = recorded.lock().unwrap();
                        // A node taken out of the reachable set while this read was in flight
                        // is not a surviving node.
                        let still = reachable.lock().unwrap().contains(&i)
                            && epochs.lock().unwrap().get(&i).copied().unwrap_or(0) == epoch;
                        r.public_reads += 1;
                        match res {
                            Ok(resp) if resp.status().is_success() => {
                                let idx = resp
                                    .headers()
                                    .get("x-statusmesh-applied-index")
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.parse::<u64>().ok())
                                    .unwrap_or(0);
                                let prev = last.insert((i, epoch), idx).unwrap_or(0);
                                if idx < prev {
                                    r.index_regressions.push((i, prev, idx));
                                }
                            }
                            Ok(resp) if still => r
                                .public_failures
                                .push((i, format!("HTTP {}", resp.status()))),
                            Err(e) if still => r.public_failures.push((i, e.to_string())),
                            _ => {}
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }));
        }
        Workload {
            stop,
            tasks,
            recorded,
            epochs,
            endpoints,
        }
    }

    /// Picks up nodes added to the cluster since the workload started.
    pub fn track(&self, cluster: &TestCluster) {
        self.endpoints.refresh(cluster);
    }

    /// Node `i` restarted: its applied index may start lower.
    pub fn restarted(&self, i: usize) {
        *self.epochs.lock().unwrap().entry(i).or_default() += 1;
    }

    /// Takes node `i` out of (or back into) the set clients use. A public read counts as
    /// failed only if its node stayed reachable for the whole request, so the epoch moves on
    /// every change.
    pub fn set_reachable(&self, reachable: &Reachable, i: usize, on: bool) {
        *self.epochs.lock().unwrap().entry(i).or_default() += 1;
        let mut set = reachable.lock().unwrap();
        if on {
            set.insert(i);
        } else {
            set.remove(&i);
        }
    }

    /// Linearizable reads recorded so far.
    pub fn reads(&self) -> usize {
        self.recorded
            .lock()
            .unwrap()
            .ops
            .iter()
            .filter(|o| matches!(o.kind, OpKind::Read { .. }))
            .count()
    }

    /// Acknowledged adds so far.
    pub fn acked(&self) -> usize {
        self.recorded
            .lock()
            .unwrap()
            .ops
            .iter()
            .filter(|o| matches!(o.kind, OpKind::Add { acked: true, .. }))
            .count()
    }

    /// Stops the workload and returns its history. Short scenarios may end before the reader
    /// has made a useful number of reads: it keeps going (bounded) until it has five.
    pub async fn finish(self) -> Recorded {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline && self.reads() < 5 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        std::mem::take(&mut *self.recorded.lock().unwrap())
    }
}

async fn client(
    endpoint: &AdminEndpoint,
) -> Result<pb::admin_client::AdminClient<tonic::transport::Channel>, String> {
    statusmesh_proto::connect_admin(
        &endpoint.url,
        endpoint.ca.as_deref(),
        Duration::from_millis(500),
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| e.to_string())
}

async fn add(endpoint: &AdminEndpoint, name: &str, idem: &str) -> Result<(), String> {
    let mut c = client(endpoint).await?;
    c.create_component(write(component_request(name), idem))
        .await
        .map(|_| ())
        .map_err(|e| format!("{}: {} {}", endpoint.url, e.code(), e.message()))
}

async fn linearizable_names(endpoint: &AdminEndpoint) -> Result<BTreeSet<String>, String> {
    let mut c = client(endpoint).await?;
    let list = c
        .list_components(read(pb::ReadRequest { consistency: 1 }))
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    Ok(list
        .components
        .into_iter()
        .map(|c| c.name)
        .filter(|n| n.starts_with('w'))
        .collect())
}

/// The component names on node `i`'s replica (local read), with their multiplicity.
pub async fn names_on(cluster: &TestCluster, i: usize) -> BTreeMap<String, usize> {
    let mut c = cluster.admin(i).await.unwrap();
    let list = c
        .list_components(read(pb::ReadRequest { consistency: 0 }))
        .await
        .unwrap()
        .into_inner();
    let mut out = BTreeMap::new();
    for comp in list.components {
        if comp.name.starts_with('w') {
            *out.entry(comp.name).or_insert(0) += 1;
        }
    }
    out
}

/// Checks the history against the grow-only-set model (see the module docs). Returns the
/// violations found, empty when the history is linearizable.
pub fn check_linearizable(ops: &[Op]) -> Vec<String> {
    let mut problems = Vec::new();
    let adds: BTreeMap<&str, &Op> = ops
        .iter()
        .filter_map(|o| match &o.kind {
            OpKind::Add { name, .. } => Some((name.as_str(), o)),
            _ => None,
        })
        .collect();
    let mut reads: Vec<(&Op, &BTreeSet<String>)> = ops
        .iter()
        .filter_map(|o| match &o.kind {
            OpKind::Read { names } => Some((o, names)),
            _ => None,
        })
        .collect();
    reads.sort_by_key(|(o, _)| o.invoke);
    for (r, names) in &reads {
        for (name, a) in &adds {
            let acked = matches!(a.kind, OpKind::Add { acked: true, .. });
            if acked && a.complete < r.invoke && !names.contains(*name) {
                problems.push(format!(
                    "lost or stale: {name} was acknowledged before a read began but the read lacks it"
                ));
            }
        }
        for name in names.iter() {
            match adds.get(name.as_str()) {
                None => problems.push(format!("read returned {name}, which nobody added")),
                Some(a) if a.invoke > r.complete => {
                    problems.push(format!("read returned {name} before it was added"))
                }
                _ => {}
            }
        }
    }
    // Reads of a linearizable set form a chain under inclusion: sorted by size, each must
    // contain the one before. Within a chain, inclusion is a size comparison, so real-time
    // order only needs sizes.
    let mut by_size: Vec<&BTreeSet<String>> = reads.iter().map(|(_, s)| *s).collect();
    by_size.sort_by_key(|s| s.len());
    for pair in by_size.windows(2) {
        if !pair[0].is_subset(pair[1]) {
            problems.push(format!(
                "two reads saw incomparable sets ({} vs {} names)",
                pair[0].len(),
                pair[1].len()
            ));
            break;
        }
    }
    for (i, (r1, s1)) in reads.iter().enumerate() {
        for (r2, s2) in reads.iter().skip(i + 1) {
            if r1.complete < r2.invoke && s1.len() > s2.len() {
                problems.push(format!(
                    "a later read saw less than an earlier one ({} then {} names)",
                    s1.len(),
                    s2.len()
                ));
            }
        }
    }
    problems.truncate(20);
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OpKind, invoke: u64, complete: u64, t0: Instant) -> Op {
        Op {
            kind,
            invoke: t0 + Duration::from_millis(invoke),
            complete: t0 + Duration::from_millis(complete),
        }
    }

    fn add(name: &str, acked: bool) -> OpKind {
        OpKind::Add {
            name: name.into(),
            acked,
        }
    }

    fn rd(names: &[&str]) -> OpKind {
        OpKind::Read {
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_checker_accepts_linearizable_histories_and_catches_violations() {
        let t = Instant::now();
        let ok = vec![
            op(add("a", true), 0, 10, t),
            op(rd(&["a"]), 20, 30, t),
            op(add("b", false), 25, 40, t),
            // b was never acknowledged: it may show up (it did commit) or not.
            op(rd(&["a", "b"]), 50, 60, t),
        ];
        assert!(check_linearizable(&ok).is_empty());
        let lost = vec![op(add("a", true), 0, 10, t), op(rd(&[]), 20, 30, t)];
        assert!(check_linearizable(&lost)[0].contains("lost"));
        let future = vec![op(rd(&["a"]), 0, 10, t), op(add("a", true), 20, 30, t)];
        assert!(check_linearizable(&future)[0].contains("before it was added"));
        let backwards = vec![
            op(add("a", false), 0, 100, t),
            op(rd(&["a"]), 10, 20, t),
            op(rd(&[]), 30, 40, t),
        ];
        assert!(check_linearizable(&backwards)[0].contains("later read saw less"));
        let incomparable = vec![
            op(add("a", false), 0, 100, t),
            op(add("b", false), 0, 100, t),
            op(rd(&["a"]), 10, 50, t),
            op(rd(&["b"]), 10, 50, t),
        ];
        assert!(check_linearizable(&incomparable)[0].contains("incomparable"));
    }
}
