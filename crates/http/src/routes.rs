//! The public router. Every response names the node and region that served it and how fresh
//! its replica is; nothing here asks the leader, so a partitioned node keeps answering.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use statusmesh_cluster::ClusterNode;
use tokio::sync::watch;

use crate::diagnostics::Diagnostics;
use crate::html::{stale_notice, STALE_MARKER};
use crate::view::{Representation, View};

/// How the public port behaves.
#[derive(Debug, Clone, Copy)]
pub struct PublicOptions {
    /// Past this long without hearing from a leader, responses say the node is stale.
    pub stale_after: Duration,
    /// The longest a `?min_index=N` request waits for the replica to reach N.
    pub min_index_wait: Duration,
    /// The port serves HTTPS: responses carry `Strict-Transport-Security`.
    pub hsts: bool,
}

/// The page needs nothing but its own inline styles (a `<style>` element and `style`
/// attributes: no scripts, no frames, no forms, no external resources), so everything else is
/// refused, and no other site may frame it. Badges (SVG, `img-src 'self'`) may be embedded by
/// other sites as images, which CSP does not restrict.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
pub const REFERRER_POLICY: &str = "strict-origin-when-cross-origin";
/// Two years, subdomains included (the HSTS preload list's minimum is one year).
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000; includeSubDomains";

/// The security headers every public response carries.
fn secure(h: &mut HeaderMap, hsts: bool) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(REFERRER_POLICY),
    );
    if hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
}

#[derive(Clone)]
struct App(Arc<AppInner>);

struct AppInner {
    node: Arc<ClusterNode>,
    view: watch::Receiver<Arc<View>>,
    diagnostics: Arc<Diagnostics>,
    options: PublicOptions,
    /// Header values that never change, built once.
    node_header: HeaderValue,
    region_header: HeaderValue,
}

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

pub const CACHE_CONTROL: &str =
    "public, max-age=5, stale-while-revalidate=30, stale-if-error=86400";

pub fn router(
    node: Arc<ClusterNode>,
    view: watch::Receiver<Arc<View>>,
    diagnostics: Arc<Diagnostics>,
    options: PublicOptions,
) -> Router {
    let node_header =
        HeaderValue::from_str(&node.id.to_string()).unwrap_or(HeaderValue::from_static("?"));
    let region_header =
        HeaderValue::from_str(&node.info.region).unwrap_or(HeaderValue::from_static("?"));
    let app = App(Arc::new(AppInner {
        node,
        view,
        diagnostics,
        options,
        node_header,
        region_header,
    }));
    Router::new()
        .route("/api/v2/{*path}", get(api_v2).options(preflight))
        .route("/", get(page))
        .route("/incidents/{id}", get(page))
        .route("/history", get(history))
        .route("/history.atom", get(page))
        .route("/history.rss", get(page))
        .route("/badge.svg", get(page))
        .route("/components/{id}/badge.svg", get(page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/cluster", get(cluster))
        .fallback(not_found)
        .with_state(app)
}

/// The route patterns of the public port, as metrics label them: the router's paths (keep in
/// step with [`router`]), the server's `/metrics`, and `unmatched` last.
pub const ROUTE_LABELS: &[&str] = &[
    "/api/v2/{*path}",
    "/",
    "/incidents/{id}",
    "/history",
    "/history.atom",
    "/history.rss",
    "/badge.svg",
    "/components/{id}/badge.svg",
    "/healthz",
    "/readyz",
    "/api/cluster",
    "/metrics",
    "unmatched",
];

/// The index in [`ROUTE_LABELS`] of the route a request path takes, without routing it (a
/// few string comparisons: the metrics layer runs outside the router, so that counting adds
/// no per-route service to the hot path).
pub fn route_index(path: &str) -> usize {
    let single = |rest: Option<&str>| rest.is_some_and(|id| !id.is_empty() && !id.contains('/'));
    let label = match path {
        p if p.starts_with("/api/v2/") => "/api/v2/{*path}",
        "/" | "/history" | "/history.atom" | "/history.rss" | "/badge.svg" | "/healthz"
        | "/readyz" | "/api/cluster" | "/metrics" => path,
        p if single(p.strip_prefix("/incidents/")) => "/incidents/{id}",
        p if single(
            p.strip_prefix("/components/")
                .and_then(|r| r.strip_suffix("/badge.svg")),
        ) =>
        {
            "/components/{id}/badge.svg"
        }
        _ => "unmatched",
    };
    ROUTE_LABELS
        .iter()
        .position(|l| *l == label)
        .unwrap_or(ROUTE_LABELS.len() - 1)
}

/// Adds the freshness headers. Every handler's response goes through it (the hot handlers
/// call it directly rather than through a middleware layer: it is on every request).
fn stamp(app: &App, mut resp: Response) -> Response {
    let (stale, contact) = is_stale(app);
    let h = resp.headers_mut();
    secure(h, app.options.hsts);
    h.insert("x-statusmesh-node", app.node_header.clone());
    h.insert("x-statusmesh-region", app.region_header.clone());
    h.insert(
        "x-statusmesh-applied-index",
        HeaderValue::from(app.node.replica().applied_index()),
    );
    if let Some(ms) = contact {
        h.insert("x-statusmesh-leader-contact-ms", HeaderValue::from(ms));
    }
    h.insert(
        "x-statusmesh-stale",
        HeaderValue::from_static(if stale { "true" } else { "false" }),
    );
    resp
}

async fn not_found(State(app): State<App>, uri: axum::http::Uri) -> Response {
    stamp(
        &app,
        (
            StatusCode::NOT_FOUND,
            format!("no such page: {}\n", uri.path()),
        )
            .into_response(),
    )
}

async fn healthz(State(app): State<App>) -> Response {
    stamp(&app, "ok\n".into_response())
}

fn json_error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The value of `name` in a query string (`a=1&b=2`), percent-decoding not needed for the
/// integers read here.
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

async fn api_v2(State(app): State<App>, req: Request) -> Response {
    // The body is not needed (and not `Sync`): keep only the head across the wait.
    let (head, _) = req.into_parts();
    let resp = api_v2_response(&app, &head).await;
    stamp(&app, resp)
}

async fn api_v2_response(app: &App, req: &axum::http::request::Parts) -> Response {
    let mut view = app.view.borrow().clone();
    if let Some(raw) = query_param(req.uri.query(), "min_index") {
        let Ok(wanted) = raw.parse::<u64>() else {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("min_index must be a non-negative integer, got {raw:?}"),
            );
        };
        if view.index < wanted {
            let mut rx = app.view.clone();
            let wait = app.options.min_index_wait;
            let reached = tokio::time::timeout(wait, rx.wait_for(|v| v.index >= wanted))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|v| v.clone());
            match reached {
                Some(v) => view = v,
                None => {
                    let have = app.view.borrow().index;
                    return json_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("this replica has applied index {have}; index {wanted} was not reached within {} ms", wait.as_millis()),
                    );
                }
            }
        }
    }
    let key = req.uri.path();
    match view.bodies.get(key) {
        Some(repr) => respond(repr, &req.headers),
        None => json_error(StatusCode::NOT_FOUND, format!("no such endpoint: {key}")),
    }
}

/// The encodings the client accepts, by preference: brotli, gzip, identity.
fn pick_encoding(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT_ENCODING)?.to_str().ok()?;
    let accepts = |name: &str| {
        accept.split(',').any(|part| {
            let mut it = part.split(';');
            let token = it.next().unwrap_or("").trim();
            let q = it
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
                })
                .unwrap_or(1.0);
            (token.eq_ignore_ascii_case(name) || token == "*") && q > 0.0
        })
    };
    if accepts("br") {
        Some("br")
    } else if accepts("gzip") {
        Some("gzip")
    } else {
        None
    }
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// A cached representation: 304 when the client's validator matches, else the best encoding.
/// Every header value is prebuilt: nothing is parsed or formatted here.
pub fn respond(repr: &Representation, headers: &HeaderMap) -> Response {
    let not_modified = if_none_match(headers, &repr.etag);
    let (body, encoding) = if not_modified {
        (Body::empty(), None)
    } else {
        match pick_encoding(headers) {
            Some("br") => (Body::from(repr.brotli.clone()), Some("br")),
            Some(_) => (Body::from(repr.gzip.clone()), Some("gzip")),
            None => (Body::from(repr.identity.clone()), None),
        }
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.reserve(17);
    h.insert(header::ETAG, repr.etag_header.clone());
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if not_modified {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return resp;
    }
    h.insert(header::CONTENT_TYPE, repr.content_type_header.clone());
    if let Some(e) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
    }
    resp
}

fn is_stale(app: &App) -> (bool, Option<u64>) {
    let contact = app.node.millis_since_leader_contact();
    (
        contact.is_none_or(|ms| ms > app.options.stale_after.as_millis() as u64),
        contact,
    )
}

/// Serves a cached page by its request path. HTML on a stale node gets the stale notice
/// (uncached: it changes by the minute); everything else is the shared representation.
fn serve_cached(app: &App, key: &str, headers: &HeaderMap) -> Response {
    let view = app.view.borrow().clone();
    let Some(repr) = view.bodies.get(key) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let (stale, contact) = is_stale(app);
    if stale && repr.content_type.starts_with("text/html") {
        let html = String::from_utf8_lossy(&repr.identity).replacen(
            STALE_MARKER,
            &stale_notice(contact),
            1,
        );
        return Response::builder()
            .header(header::CONTENT_TYPE, repr.content_type)
            .header(header::CACHE_CONTROL, "no-store")
            .body(Body::from(html))
            .unwrap_or_default();
    }
    respond(repr, headers)
}

async fn page(State(app): State<App>, req: Request) -> Response {
    let resp = serve_cached(&app, req.uri().path(), req.headers());
    stamp(&app, resp)
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    page: Option<String>,
}

async fn history(
    State(app): State<App>,
    Query(q): Query<HistoryQuery>,
    headers: HeaderMap,
) -> Response {
    let n = match q.page.as_deref().map(str::parse::<usize>) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        _ => {
            return stamp(
                &app,
                (StatusCode::BAD_REQUEST, "page must be a positive integer\n").into_response(),
            )
        }
    };
    let resp = serve_cached(&app, &format!("/history/{n}"), &headers);
    stamp(&app, resp)
}

async fn preflight(State(app): State<App>) -> Response {
    let resp = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            format!("{}, {}", Method::GET, Method::OPTIONS),
        )
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS, "*")
        .header(header::ACCESS_CONTROL_MAX_AGE, "86400")
        .body(Body::empty())
        .unwrap_or_default();
    stamp(&app, resp)
}

/// Ready once this node holds a replica: it is a member of an initialised cluster.
async fn readyz(State(app): State<App>) -> Response {
    let resp = readiness(&app).into_response();
    stamp(&app, resp)
}

fn readiness(app: &App) -> impl IntoResponse {
    if app.node.is_member() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: this node is not a member of an initialised cluster yet\n",
        )
    }
}

async fn cluster(State(app): State<App>) -> Response {
    let figures = app.diagnostics.figures().await;
    let resp = cluster_view(&app, &figures).into_response();
    stamp(&app, resp)
}

/// The digest and outbox counts come from [`Diagnostics`] (counts at most once a second, the
/// digest at most every ten): `state_digest_index` says which index the digest describes.
fn cluster_view(app: &App, figures: &crate::diagnostics::Figures) -> Json<serde_json::Value> {
    let s = app.node.status();
    let (digest, digest_index, outbox) = (&figures.digest, figures.digest_index, figures.outbox);
    Json(json!({
        "node_id": s.id,
        "region": s.region,
        "role": s.state,
        "leader_id": s.leader,
        "term": s.term,
        "applied_index": s.applied_index,
        "last_log_index": s.last_log_index,
        "millis_since_leader_contact": s.millis_since_leader_contact,
        "stale": is_stale(app).0,
        "timing_profile": s.profile.as_str(),
        "state_digest": digest,
        "state_digest_index": digest_index,
        "outbox": outbox,
        "members": s.members.iter().map(|m| json!({
            "id": m.id,
            "region": m.info.region,
            "role": if m.voter { "voter" } else { "learner" },
            "public_addr": m.info.public_addr,
        })).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_route_pattern() {
        let label = |p: &str| ROUTE_LABELS[route_index(p)];
        assert_eq!(label("/api/v2/summary.json"), "/api/v2/{*path}");
        assert_eq!(
            label("/api/v2/incidents/unresolved.json"),
            "/api/v2/{*path}"
        );
        assert_eq!(label("/"), "/");
        assert_eq!(label("/incidents/abc123"), "/incidents/{id}");
        assert_eq!(label("/incidents/"), "unmatched");
        assert_eq!(label("/incidents/a/b"), "unmatched");
        assert_eq!(
            label("/components/x1/badge.svg"),
            "/components/{id}/badge.svg"
        );
        assert_eq!(label("/components//badge.svg"), "unmatched");
        assert_eq!(label("/history.atom"), "/history.atom");
        assert_eq!(label("/metrics"), "/metrics");
        assert_eq!(label("/wp-admin.php"), "unmatched");
        assert_eq!(label(""), "unmatched");
        assert_eq!(ROUTE_LABELS.last(), Some(&"unmatched"));
    }
}
