//! What every port records about the requests it answers: counts by route (HTTP) or method
//! (gRPC) and result code, latency histograms, and on the admin port the request id — taken
//! from `x-request-id` or made here — that names the request's tracing span, travels with it
//! to the leader, and is echoed on the answer.
//!
//! gRPC result codes arrive in the response headers (an error answered at once) or in the
//! trailers after the body; the response body is wrapped so the request is recorded exactly
//! once, when the answer ends (or is dropped: a client that went away counts as CANCELLED).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};
use statusmesh_admin::{BadRequestId, RequestId};
use statusmesh_metrics::{RequestMetrics, Route};
use statusmesh_proto::request_id::{self, grpc_code_name, REQUEST_ID_HEADER};

/// Distinct routes or methods per port before the rest are counted as `other`.
const MAX_ROUTES: usize = 128;

/// The request figures of the node's three ports.
#[derive(Debug)]
pub struct PortMetrics {
    pub http: RequestMetrics,
    pub admin: RequestMetrics,
    pub peer: RequestMetrics,
}

impl Default for PortMetrics {
    fn default() -> Self {
        PortMetrics {
            http: RequestMetrics::new(MAX_ROUTES),
            admin: RequestMetrics::new(MAX_ROUTES),
            peer: RequestMetrics::new(MAX_ROUTES),
        }
    }
}

/// A tower layer around the whole public router: counts each answer under its route pattern
/// (`/incidents/{id}`, never the raw path; `statusmesh_http::route_index`) or `unmatched`.
/// Outside the router, so it adds no per-route service; recorded when the response head is
/// ready (the bodies are prebuilt bytes).
#[derive(Debug, Clone)]
pub struct HttpObserveLayer {
    /// One handle per `statusmesh_http::route_labels` entry.
    routes: Arc<[Route]>,
}

impl HttpObserveLayer {
    pub fn new(metrics: &PortMetrics) -> Self {
        HttpObserveLayer {
            routes: statusmesh_http::route_labels()
                .map(|l| metrics.http.route(l))
                .collect(),
        }
    }
}

impl<S> tower_layer::Layer<S> for HttpObserveLayer {
    type Service = HttpObserve<S>;
    fn layer(&self, inner: S) -> HttpObserve<S> {
        HttpObserve {
            inner,
            routes: self.routes.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpObserve<S> {
    inner: S,
    routes: Arc<[Route]>,
}

impl<S, B, RB> tower_service::Service<axum::http::Request<B>> for HttpObserve<S>
where
    S: tower_service::Service<axum::http::Request<B>, Response = axum::http::Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = HttpObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let route = self.routes[statusmesh_http::route_index(req.uri().path())];
        HttpObserveFuture {
            inner: self.inner.call(req),
            route,
            started,
        }
    }
}

pin_project_lite::pin_project! {
    #[derive(Debug)]
    pub struct HttpObserveFuture<F> {
        #[pin]
        inner: F,
        route: Route,
        started: Instant,
    }
}

impl<F, RB, E> Future for HttpObserveFuture<F>
where
    F: Future<Output = Result<axum::http::Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Ok(resp) = &out {
            this.route
                .record(resp.status().as_u16(), this.started.elapsed());
        }
        Poll::Ready(out)
    }
}

/// Which gRPC port a layer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcPort {
    /// Request ids, a span per request, and one log line per answer.
    Admin,
    /// Counts only (Raft heartbeats would flood the log).
    Peer,
}

/// A tower layer for a tonic server.
#[derive(Debug, Clone)]
pub struct GrpcObserveLayer {
    metrics: Arc<PortMetrics>,
    port: GrpcPort,
}

impl GrpcObserveLayer {
    pub fn new(metrics: Arc<PortMetrics>, port: GrpcPort) -> Self {
        GrpcObserveLayer { metrics, port }
    }
}

impl<S> tower_layer::Layer<S> for GrpcObserveLayer {
    type Service = GrpcObserve<S>;
    fn layer(&self, inner: S) -> GrpcObserve<S> {
        GrpcObserve {
            inner,
            metrics: self.metrics.clone(),
            port: self.port,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcObserve<S> {
    inner: S,
    metrics: Arc<PortMetrics>,
    port: GrpcPort,
}

/// Reads the client's id: `Ok(None)` when absent, `Err` naming the problem when malformed.
fn client_request_id(headers: &HeaderMap) -> Result<Option<String>, request_id::RequestIdError> {
    match headers.get(REQUEST_ID_HEADER) {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| request_id::RequestIdError::NotPrintable)?;
            request_id::validate(s)?;
            Ok(Some(s.to_owned()))
        }
    }
}

/// A fresh id for a request that came without one.
pub fn new_request_id() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower_service::Service<axum::http::Request<B>> for GrpcObserve<S>
where
    S: tower_service::Service<axum::http::Request<B>, Response = axum::http::Response<RB>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = axum::http::Response<ObservedBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = req.uri().path().trim_start_matches('/').to_owned();
        let (span, id) = match self.port {
            GrpcPort::Admin => {
                let id = match client_request_id(req.headers()) {
                    Ok(Some(id)) => id,
                    Ok(None) => new_request_id(),
                    Err(problem) => {
                        // The service refuses the call naming the problem; the log and the
                        // answer still get an id.
                        req.extensions_mut().insert(BadRequestId(problem));
                        new_request_id()
                    }
                };
                req.extensions_mut().insert(RequestId(id.clone()));
                let span = tracing::info_span!("admin", request_id = %id, method = %method);
                (span, Some(id))
            }
            GrpcPort::Peer => (tracing::Span::none(), None),
        };
        let fut = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        let metrics = self.metrics.clone();
        let port = self.port;
        Box::pin(async move {
            let result = tracing::Instrument::instrument(fut, span.clone()).await;
            result.map(|resp| {
                let (mut parts, body) = resp.into_parts();
                if let Some(v) = id.as_deref().and_then(|id| HeaderValue::from_str(id).ok()) {
                    parts.headers.insert(REQUEST_ID_HEADER, v);
                }
                let code = grpc_status(&parts.headers);
                let record = Record {
                    metrics,
                    port,
                    method,
                    started,
                    code,
                    span,
                    done: false,
                };
                axum::http::Response::from_parts(
                    parts,
                    ObservedBody {
                        inner: body,
                        record,
                    },
                )
            })
        })
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<u16> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// Records the request once, when its answer ends.
#[derive(Debug)]
struct Record {
    metrics: Arc<PortMetrics>,
    port: GrpcPort,
    method: String,
    started: Instant,
    code: Option<u16>,
    span: tracing::Span,
    done: bool,
}

impl Record {
    fn finish(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        // No status at all: the answer was cut short (the client went away).
        let code = self.code.unwrap_or(tonic::Code::Cancelled as u16);
        let tcode = tonic::Code::from(i32::from(code));
        // An unknown method is the client's invention: count it without its name.
        let method = if tcode == tonic::Code::Unimplemented {
            "unknown"
        } else {
            &self.method
        };
        let elapsed = self.started.elapsed();
        let table = match self.port {
            GrpcPort::Admin => &self.metrics.admin,
            GrpcPort::Peer => &self.metrics.peer,
        };
        table.record(method, code, elapsed);
        if self.port == GrpcPort::Admin {
            log_answer(&self.span, tcode, elapsed);
        }
    }
}

fn log_answer(span: &tracing::Span, code: tonic::Code, elapsed: Duration) {
    let ms = elapsed.as_secs_f64() * 1000.0;
    let code = grpc_code_name(code);
    match code {
        "OK" => tracing::info!(parent: span, code, ms, "answered"),
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => tracing::error!(parent: span, code, ms, "answered"),
        _ => tracing::warn!(parent: span, code, ms, "answered"),
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        self.finish();
    }
}

pin_project_lite::pin_project! {
    /// The answer's body, watched for the trailers that carry the gRPC status.
    #[derive(Debug)]
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        record: Record,
    }
}

impl<B: http_body::Body> http_body::Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    this.record.code = Some(code);
                    this.record.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.record.code.get_or_insert(tonic::Code::Internal as u16);
                this.record.finish();
            }
            Poll::Ready(None) => this.record.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_header() {
        let mut h = HeaderMap::new();
        assert_eq!(client_request_id(&h), Ok(None));
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-1"));
        assert_eq!(client_request_id(&h), Ok(Some("abc-1".into())));
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("a b"));
        assert!(client_request_id(&h)
            .unwrap_err()
            .to_string()
            .contains("only letters"));
        assert_eq!(new_request_id().len(), 16);
    }
}
