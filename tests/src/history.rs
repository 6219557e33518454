//! Client workload and invariant checks for the fault scenarios.
//!
//! The workload adds components named `w<n>` and, once a writer holds more than
//! [`LIVE_PER_WRITER`] of them, deletes its oldest — so it can run for hours without reaching
//! the component limit. Each write has its own idempotency key and is retried on other nodes
//! with the same key until it is acknowledged or its deadline passes; only unavailability is
//! retried: a refusal (`INVALID_ARGUMENT`, `FAILED_PRECONDITION`…) is recorded and ends the
//! workload, and the scenario fails naming it ([`Workload::refusal`]). A reader reads the set
//! of names back with linearizable reads, and another polls every surviving node's public page.
//! Every operation's invocation and completion are recorded; `check` holds the model and the
//! checker.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use statusmesh_proto::admin::{self as pb};
use tokio::task::JoinHandle;

use crate::{component_request, key, read, write, TestCluster};

mod check;
pub use check::check_linearizable;

/// How many of its components a writer keeps before deleting the oldest.
pub const LIVE_PER_WRITER: usize = 20;

#[derive(Debug, Clone)]
pub enum OpKind {
    /// Add `name`; `acked` when the cluster acknowledged it.
    Add { name: String, acked: bool },
    /// Remove `name` (only ever after its add was acknowledged).
    Remove { name: String, acked: bool },
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
    /// A write the cluster refused (not an outage): the workload stopped at it.
    pub refusal: Option<String>,
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

/// What one writer needs to retry its writes and record them.
struct Writes {
    stop: Arc<std::sync::atomic::AtomicBool>,
    recorded: Arc<Mutex<Recorded>>,
    reachable: Reachable,
    admins: Arc<Mutex<Vec<AdminEndpoint>>>,
    deadline: Duration,
    writer: u64,
}

/// Why a write did not go through.
enum WriteError {
    /// No answer, or the cluster could not take it now: try again, maybe elsewhere.
    Unavailable(String),
    /// The cluster refused the write itself: retrying cannot help.
    Refused(String),
}

/// Codes that refuse the write itself; anything else (UNAVAILABLE, DEADLINE_EXCEEDED, a
/// transport error…) is an outage to retry through.
fn is_refusal(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        InvalidArgument
            | FailedPrecondition
            | AlreadyExists
            | NotFound
            | PermissionDenied
            | Unauthenticated
            | OutOfRange
            | Unimplemented
    )
}

impl Writes {
    fn stopped(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn push(&self, kind: OpKind, invoke: Instant) {
        self.recorded.lock().unwrap().ops.push(Op {
            kind,
            invoke,
            complete: Instant::now(),
        });
    }

    /// Sends one write (one idempotency key) to the reachable nodes in turn until it is
    /// acknowledged (its answer), refused (the workload stops) or its deadline passes (None).
    async fn retried<F, Fut>(&self, n: u64, op: F) -> Option<String>
    where
        F: Fn(AdminEndpoint, String) -> Fut,
        Fut: std::future::Future<Output = Result<String, WriteError>>,
    {
        let idem = key("w");
        let invoke = Instant::now();
        let mut attempt = 0u64;
        while invoke.elapsed() < self.deadline && !self.stopped() {
            attempt += 1;
            let Some(i) = pick(&self.reachable, n + attempt + self.writer) else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let ep = self.admins.lock().unwrap()[i].clone();
            match op(ep, idem.clone()).await {
                Ok(answer) => return Some(answer),
                Err(WriteError::Unavailable(e)) => {
                    self.recorded.lock().unwrap().write_errors.push(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(WriteError::Refused(e)) => {
                    self.recorded.lock().unwrap().refusal.get_or_insert(e);
                    self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    return None;
                }
            }
        }
        None
    }
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
            let writes = Writes {
                stop: stop.clone(),
                recorded: recorded.clone(),
                reachable: reachable.clone(),
                admins: admins.clone(),
                deadline: write_deadline,
                writer,
            };
            let prefix = prefix.clone();
            tasks.push(tokio::spawn(async move {
                let mut live = std::collections::VecDeque::new();
                let mut n = 0u64;
                while !writes.stopped() {
                    n += 1;
                    let name = format!("w{prefix}x{writer}x{n}");
                    let invoke = Instant::now();
                    let added = writes.retried(n, |ep, idem| add(ep, &name, idem)).await;
                    let acked = added.is_some();
                    writes.push(
                        OpKind::Add {
                            name: name.clone(),
                            acked,
                        },
                        invoke,
                    );
                    live.extend(added.map(|id| (name, id)));
                    if live.len() > LIVE_PER_WRITER && !writes.stopped() {
                        let (name, id) = live.pop_front().expect("more than one live");
                        let invoke = Instant::now();
                        let removed = writes.retried(n, |ep, idem| remove(ep, &id, idem)).await;
                        let acked = removed.is_some();
                        writes.push(OpKind::Remove { name, acked }, invoke);
                    }
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

    /// The write the cluster refused, if one was: the workload stopped there.
    pub fn refusal(&self) -> Option<String> {
        self.recorded.lock().unwrap().refusal.clone()
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

fn write_error(endpoint: &AdminEndpoint, what: &str, e: tonic::Status) -> WriteError {
    let msg = format!("{what} on {}: {} {}", endpoint.url, e.code(), e.message());
    if is_refusal(e.code()) {
        WriteError::Refused(msg)
    } else {
        WriteError::Unavailable(msg)
    }
}

/// Adds component `name`; answers its id.
async fn add(endpoint: AdminEndpoint, name: &str, idem: String) -> Result<String, WriteError> {
    let mut c = client(&endpoint).await.map_err(WriteError::Unavailable)?;
    let reply = c
        .create_component(write(component_request(name), &idem))
        .await
        .map_err(|e| write_error(&endpoint, &format!("CreateComponent {name}"), e))?
        .into_inner();
    match reply.entity {
        Some(pb::write_reply::Entity::Component(c)) => Ok(c.id),
        other => Err(WriteError::Refused(format!(
            "CreateComponent {name} answered {other:?} instead of the component"
        ))),
    }
}

/// Deletes the component with id `id`.
async fn remove(endpoint: AdminEndpoint, id: &str, idem: String) -> Result<String, WriteError> {
    let mut c = client(&endpoint).await.map_err(WriteError::Unavailable)?;
    c.delete_component(write(pb::IdRequest { id: id.into() }, &idem))
        .await
        .map_err(|e| write_error(&endpoint, &format!("DeleteComponent {id}"), e))?;
    Ok(id.to_string())
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
