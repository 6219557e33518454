//! A webhook receiver on loopback for tests and the benchmark: records every request (headers
//! and body) and answers per path as a test programs it (fail N times, 429 with Retry-After,
//! redirect, hang, 410).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio::sync::{oneshot, Notify};

/// How the receiver answers on one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// 204 at once.
    Ok,
    /// 500 for the first `n` requests, then 204.
    FailTimes(u32),
    /// 500 always.
    AlwaysFail,
    /// 429 with `Retry-After: secs` for the first request, then 204.
    Throttle { secs: u32 },
    /// 302 to another path of this receiver (which would answer 204 if followed).
    Redirect,
    /// Never answers within any reasonable timeout.
    Hang,
    /// 410 Gone.
    Gone,
    /// 204 after a delay.
    Slow(Duration),
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub webhook_id: Option<String>,
    pub timestamp: Option<String>,
    pub signature: Option<String>,
    pub content_type: Option<String>,
    /// Every header as received.
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Received>,
    behavior: HashMap<String, Behavior>,
    default: Option<Behavior>,
    hits: HashMap<String, u32>,
    /// When false, requests are answered but not kept (load-generator runs).
    not_recording: bool,
    /// Keep only each request's path, `webhook-id` and arrival (and the first body): what a
    /// benchmark counts, at a cost that does not weigh on the sender being measured.
    compact: bool,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    arrived: Arc<Notify>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish()
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn handle(
    State(s): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (behavior, hit, compact) = {
        let mut inner = s.inner.lock().unwrap();
        if inner.not_recording {
            return StatusCode::NO_CONTENT.into_response();
        }
        let path = format!("/{path}");
        // A compact receiver keeps the path, the webhook-id, the arrival and the first body.
        let full = !inner.compact;
        let keep_body = full || inner.requests.is_empty();
        let received = Received {
            path: path.clone(),
            webhook_id: header(&headers, "webhook-id"),
            timestamp: full
                .then(|| header(&headers, "webhook-timestamp"))
                .flatten(),
            signature: full
                .then(|| header(&headers, "webhook-signature"))
                .flatten(),
            content_type: full.then(|| header(&headers, "content-type")).flatten(),
            headers: if full { headers } else { HeaderMap::new() },
            body: if keep_body { body } else { Bytes::new() },
            at: Instant::now(),
        };
        inner.requests.push(received);
        let hit = {
            let h = inner.hits.entry(path.clone()).or_default();
            *h += 1;
            *h
        };
        let b = inner
            .behavior
            .get(&path)
            .cloned()
            .or_else(|| inner.default.clone())
            .unwrap_or(Behavior::Ok);
        (b, hit, inner.compact)
    };
    if !compact {
        s.arrived.notify_waiters();
    }
    match behavior {
        Behavior::Ok => StatusCode::NO_CONTENT.into_response(),
        Behavior::FailTimes(n) if hit <= n => {
            (StatusCode::INTERNAL_SERVER_ERROR, "temporarily broken").into_response()
        }
        Behavior::FailTimes(_) => StatusCode::NO_CONTENT.into_response(),
        Behavior::AlwaysFail => (StatusCode::INTERNAL_SERVER_ERROR, "broken").into_response(),
        Behavior::Throttle { secs } if hit == 1 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            "slow down",
        )
            .into_response(),
        Behavior::Throttle { .. } => StatusCode::NO_CONTENT.into_response(),
        Behavior::Redirect => (
            StatusCode::FOUND,
            [("location", "/redirect-target")],
            "moved",
        )
            .into_response(),
        Behavior::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Behavior::Gone => (StatusCode::GONE, "unsubscribed").into_response(),
        Behavior::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1 (a free port).
    pub async fn start() -> Receiver {
        Self::start_with(Inner::default()).await
    }

    /// Starts a receiver that keeps only what a benchmark counts (see `Inner::compact`):
    /// each request's path, `webhook-id` and arrival, and the first body; waiting for requests
    /// polls instead of being woken by each one.
    pub async fn start_compact() -> Receiver {
        Self::start_with(Inner {
            compact: true,
            ..Inner::default()
        })
        .await
    }

    async fn start_with(inner: Inner) -> Receiver {
        let shared = Shared {
            inner: Arc::new(Mutex::new(inner)),
            arrived: Arc::new(Notify::new()),
        };
        let app = Router::new()
            .route("/{*path}", post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Receiver {
            addr,
            shared,
            stop: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, b: Behavior) {
        self.shared
            .inner
            .lock()
            .unwrap()
            .behavior
            .insert(path.into(), b);
    }

    /// Stops (false) or resumes (true) keeping requests; while stopped every request gets 204.
    pub fn set_recording(&self, on: bool) {
        self.shared.inner.lock().unwrap().not_recording = !on;
    }

    /// The behaviour of every path without its own.
    pub fn set_default(&self, b: Behavior) {
        self.shared.inner.lock().unwrap().default = Some(b);
    }

    pub fn requests(&self) -> Vec<Received> {
        self.shared.inner.lock().unwrap().requests.clone()
    }

    pub fn on(&self, path: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    pub fn count(&self) -> usize {
        self.shared.inner.lock().unwrap().requests.len()
    }

    /// Waits until `check` holds over the recorded requests, or `limit` passes.
    pub async fn wait_for(&self, limit: Duration, check: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if check(&self.shared.inner.lock().unwrap().requests) {
                return true;
            }
            // A compact receiver wakes nobody: look again every few milliseconds.
            let wake = deadline.min(tokio::time::Instant::now() + Duration::from_millis(5));
            let woken = tokio::time::timeout_at(wake, notified).await.is_ok();
            if !woken && tokio::time::Instant::now() >= deadline {
                return check(&self.shared.inner.lock().unwrap().requests);
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
