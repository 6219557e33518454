//! The public router. Every response names the node and region that served it and how fresh
//! its replica is; nothing here asks the leader, so a partitioned node keeps answering.
//!
//! Routes come from the one table in [`crate::table`]; every request goes through
//! [`dispatch`], which picks the handler and adds the headers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use statusmesh_cluster::ClusterNode;
use tokio::sync::watch;

use crate::diagnostics::Diagnostics;
use crate::headers::{respond, secure};
use crate::html::{stale_notice, STALE_MARKER};
use crate::subscribe::{ClientAddr, Desk, Limiter, MAX_FORM_BYTES};
use crate::table::{Handler, ROUTES};
use crate::view::View;
use statusmesh_model::links::Purpose;

/// How the public port behaves.
#[derive(Debug, Clone, Copy)]
pub struct PublicOptions {
    /// Past this long without hearing from a leader, responses say the node is stale.
    pub stale_after: Duration,
    /// The longest a `?min_index=N` request waits for the replica to reach N.
    pub min_index_wait: Duration,
    /// The port serves HTTPS: responses carry `Strict-Transport-Security`.
    pub hsts: bool,
    /// The webhook targets a customer may subscribe on the page (the dispatcher's policy).
    pub targets: statusmesh_egress::TargetPolicy,
}

/// Renders the `/metrics` exposition (the server's: it knows every instrument).
pub type MetricsRenderer =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

#[derive(Clone)]
struct App(Arc<AppInner>);

struct AppInner {
    node: Arc<ClusterNode>,
    view: watch::Receiver<Arc<View>>,
    diagnostics: Arc<Diagnostics>,
    options: PublicOptions,
    metrics: Option<MetricsRenderer>,
    /// Subscription form submissions per client address.
    limiter: Limiter,
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

/// The public router, built from [`ROUTES`]. `/metrics` answers 404 without a `metrics`
/// renderer.
pub fn router(
    node: Arc<ClusterNode>,
    view: watch::Receiver<Arc<View>>,
    diagnostics: Arc<Diagnostics>,
    options: PublicOptions,
    metrics: Option<MetricsRenderer>,
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
        metrics,
        limiter: Limiter::default(),
        node_header,
        region_header,
    }));
    let mut router = Router::new();
    for spec in ROUTES {
        router = router.route(spec.pattern, methods(spec.handler));
    }
    router
        .fallback(|State(app): State<App>, req: Request| dispatch(app, Answer::NotFound, req))
        .with_state(app)
}

/// What answers a request: a route's handler, a CORS preflight, or nothing matched.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Route(Handler),
    Preflight,
    NotFound,
}

/// GET (and HEAD) for every route; the JSON API also answers CORS preflights.
fn methods(handler: Handler) -> MethodRouter<App> {
    let answer = |a: Answer| move |State(app): State<App>, req: Request| dispatch(app, a, req);
    let route = get(answer(Answer::Route(handler)));
    if handler == Handler::ApiV2 {
        route.options(answer(Answer::Preflight))
    } else if handler.takes_post() {
        route.merge(post(answer(Answer::Route(handler))))
    } else {
        route
    }
}

/// Runs the answer and stamps it: the one place every public response gets its headers.
async fn dispatch(app: App, answer: Answer, req: Request) -> Response {
    let resp = match answer {
        Answer::Route(Handler::ApiV2) => {
            // The body is not needed (and not `Sync`): keep only the head across the wait.
            let (head, _) = req.into_parts();
            api_v2_response(&app, &head).await
        }
        Answer::Route(Handler::Page) => serve_cached(&app, req.uri().path(), req.headers()),
        Answer::Route(Handler::History) => history(&app, &req),
        Answer::Route(Handler::Healthz) => "ok\n".into_response(),
        Answer::Route(Handler::Readyz) => readiness(&app).into_response(),
        Answer::Route(Handler::Cluster) => {
            let figures = app.diagnostics.figures().await;
            cluster_view(&app, &figures).into_response()
        }
        Answer::Route(Handler::Metrics) => match &app.metrics {
            Some(render) => (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                render().await,
            )
                .into_response(),
            None => no_such_page(req.uri()),
        },
        Answer::Route(Handler::Subscribe | Handler::SubscriptionLink) => {
            subscription(&app, req).await
        }
        Answer::Preflight => preflight(),
        Answer::NotFound => no_such_page(req.uri()),
    };
    stamp(&app, resp)
}

/// The self-service subscription pages (see [`crate::subscribe`]).
async fn subscription(app: &App, req: Request) -> Response {
    let desk = Desk {
        node: &app.node,
        limiter: &app.limiter,
        stale: is_stale(app).0,
        targets: &app.options.targets,
    };
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let is_post = req.method() == Method::POST;
    let client = req.extensions().get::<ClientAddr>().copied();
    let purpose = match path.strip_prefix("/subscriptions/") {
        None => None,
        Some("confirm") => Some(Purpose::Confirm),
        Some("manage") => Some(Purpose::Manage),
        Some("unsubscribe") => Some(Purpose::Unsubscribe),
        Some(_) => return no_such_page(req.uri()),
    };
    if !is_post {
        return match purpose {
            None => desk.form(),
            Some(p) => desk.show(p, &query),
        };
    }
    let (head, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large\n").into_response();
    };
    match purpose {
        None => desk.subscribe(client, &head.headers, &body).await,
        Some(p) => desk.act(client, p, &query, &body).await,
    }
}

fn no_such_page(uri: &axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("no such page: {}\n", uri.path()),
    )
        .into_response()
}

/// Adds the security and freshness headers. Every response goes through it, once, in
/// [`dispatch`] (not a middleware layer: it is on every request).
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

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    page: Option<String>,
}

fn history(app: &App, req: &Request) -> Response {
    let page = axum::extract::Query::<HistoryQuery>::try_from_uri(req.uri())
        .ok()
        .map(|q| q.0.page);
    let n = match page.map(|p| p.as_deref().map(str::parse::<usize>)) {
        Some(None) => 1,
        Some(Some(Ok(n))) if n >= 1 => n,
        _ => return (StatusCode::BAD_REQUEST, "page must be a positive integer\n").into_response(),
    };
    serve_cached(app, &format!("/history/{n}"), req.headers())
}

fn preflight() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            format!("{}, {}", Method::GET, Method::OPTIONS),
        )
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS, "*")
        .header(header::ACCESS_CONTROL_MAX_AGE, "86400")
        .body(Body::empty())
        .unwrap_or_default()
}

/// Ready once this node holds a replica: it is a member of an initialised cluster.
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
