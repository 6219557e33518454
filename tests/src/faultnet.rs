//! A fault-injecting TCP proxy for peer traffic, owned by the test (no root needed).
//!
//! Every node's advertised peer address is a proxy in front of its real peer port, and node
//! `i` connects from its own loopback address, so the proxy knows the direction of every
//! connection: bytes from the connecting side belong to link `i -> j`, bytes back to `j -> i`.
//! Each direction of each link can pass, be delayed (one-way latency), be dropped (blackhole:
//! bytes vanish) or be reset (connections closed with RST, new ones refused). Changing a rule
//! takes effect on live connections at once.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What happens to bytes on one direction of one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// One-way latency.
    Delay(Duration),
    /// Bytes vanish (a blackholed route); connections stay open.
    Drop,
    /// Connections are reset and new ones refused.
    Reset,
}

type Link = (u64, u64);

#[derive(Default)]
struct Shared {
    rules: HashMap<Link, Fault>,
    /// Bumped when a link is set to `Reset`, so its live connections close.
    generation: HashMap<Link, u64>,
}

/// The proxies of one test cluster; they stop when this is dropped.
pub struct FaultNet {
    shared: Arc<Mutex<Shared>>,
    resets: watch::Sender<u64>,
    tasks: Vec<JoinHandle<()>>,
    ids: Vec<u64>,
}

impl std::fmt::Debug for FaultNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultNet").field("ids", &self.ids).finish()
    }
}

impl FaultNet {
    /// One proxy per node: `(id, listen, target)`; `sources` maps a connecting address to the
    /// node id it belongs to.
    pub async fn start(
        routes: Vec<(u64, SocketAddr, SocketAddr)>,
        sources: HashMap<IpAddr, u64>,
    ) -> FaultNet {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (resets, _) = watch::channel(0u64);
        let sources = Arc::new(sources);
        let mut tasks = Vec::new();
        let ids = routes.iter().map(|r| r.0).collect();
        for (to, listen, target) in routes {
            let listener = TcpListener::bind(listen).await.expect("bind proxy");
            let shared = shared.clone();
            let sources = sources.clone();
            let resets = resets.subscribe();
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((conn, peer)) = listener.accept().await else {
                        return;
                    };
                    let Some(&from) = sources.get(&peer.ip()) else {
                        // Not a node (a stray client): refuse.
                        drop(conn);
                        continue;
                    };
                    tokio::spawn(relay(
                        conn,
                        target,
                        (from, to),
                        shared.clone(),
                        resets.clone(),
                    ));
                }
            }));
        }
        FaultNet {
            shared,
            resets,
            tasks,
            ids,
        }
    }

    /// Sets the rule for bytes going from `from` to `to`.
    pub fn set(&self, from: u64, to: u64, fault: Fault) {
        let mut s = self.shared.lock().unwrap();
        s.rules.insert((from, to), fault);
        if fault == Fault::Reset {
            *s.generation.entry((from, to)).or_default() += 1;
            drop(s);
            self.resets.send_modify(|g| *g += 1);
        }
    }

    /// Both directions between every node of `a` and every node of `b`.
    pub fn partition(&self, a: &[u64], b: &[u64], fault: Fault) {
        for &x in a {
            for &y in b {
                self.set(x, y, fault);
                self.set(y, x, fault);
            }
        }
    }

    /// Cuts `id` off from every other node, both ways.
    pub fn isolate(&self, id: u64, fault: Fault) {
        let others: Vec<u64> = self.ids.iter().copied().filter(|&x| x != id).collect();
        self.partition(&[id], &others, fault);
    }

    /// A one-way delay on every link, drawn per link from `min..=max` (a WAN between regions).
    pub fn delay_all(&self, min: Duration, max: Duration) {
        use rand::Rng;
        let mut rng = rand::rng();
        for &a in &self.ids {
            for &b in &self.ids {
                if a != b {
                    let ms = rng.random_range(min.as_millis() as u64..=max.as_millis() as u64);
                    self.set(a, b, Fault::Delay(Duration::from_millis(ms)));
                }
            }
        }
    }

    /// Every link passes again.
    pub fn heal(&self) {
        self.shared.lock().unwrap().rules.clear();
    }

    fn rule(shared: &Mutex<Shared>, link: Link) -> (Fault, u64) {
        let s = shared.lock().unwrap();
        (
            s.rules.get(&link).copied().unwrap_or(Fault::Pass),
            s.generation.get(&link).copied().unwrap_or(0),
        )
    }
}

impl Drop for FaultNet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Live relays close too.
        self.shared.lock().unwrap().rules.clear();
        self.resets.send_modify(|g| *g = u64::MAX);
    }
}

/// Closes with RST rather than FIN. With a zero linger the close never blocks.
#[allow(deprecated)]
fn reset(conn: TcpStream) {
    let _ = conn.set_linger(Some(Duration::ZERO));
    drop(conn);
}

async fn relay(
    client: TcpStream,
    target: SocketAddr,
    link: Link,
    shared: Arc<Mutex<Shared>>,
    mut resets: watch::Receiver<u64>,
) {
    let (fault, generation) = FaultNet::rule(&shared, link);
    let (back, _) = FaultNet::rule(&shared, (link.1, link.0));
    if fault == Fault::Reset || back == Fault::Reset {
        reset(client);
        return;
    }
    let Ok(server) = TcpStream::connect(target).await else {
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = tokio::spawn(pump(cr, sw, link, shared.clone()));
    let down = tokio::spawn(pump(sr, cw, (link.1, link.0), shared.clone()));
    let back_generation = FaultNet::rule(&shared, (link.1, link.0)).1;
    loop {
        if up.is_finished() || down.is_finished() {
            break;
        }
        tokio::select! {
            changed = resets.changed() => {
                if changed.is_err() || *resets.borrow() == u64::MAX {
                    break;
                }
                let now = FaultNet::rule(&shared, link).1;
                let now_back = FaultNet::rule(&shared, (link.1, link.0)).1;
                if now != generation || now_back != back_generation {
                    break;
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    up.abort();
    down.abort();
    // Dropping the halves (inside the aborted tasks) closes both sockets.
}

/// Copies one direction, applying the link's current rule to each chunk.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: Link,
    shared: Arc<Mutex<Shared>>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = tokio::time::Instant::now();
        match FaultNet::rule(&shared, link).0 {
            Fault::Pass => {
                let _ = tx.send((now, buf[..n].to_vec()));
            }
            Fault::Delay(d) => {
                let _ = tx.send((now + d, buf[..n].to_vec()));
            }
            Fault::Drop => {}
            Fault::Reset => break,
        }
    }
    drop(tx);
    let _ = writer.await;
}
