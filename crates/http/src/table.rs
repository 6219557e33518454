//! The public port's one route table. It drives the router ([`crate::router`]), the metric
//! labels ([`route_labels`]) and the label a request is counted under ([`route_index`]), so a
//! route added here is routed, labelled and counted alike.

/// What answers a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handler {
    /// The Statuspage v2 JSON documents (with CORS preflight and `?min_index=`).
    ApiV2,
    /// A prebuilt page, feed or badge, looked up by its request path.
    Page,
    /// The history pages (`?page=N`).
    History,
    Healthz,
    Readyz,
    /// This node's view of the cluster (`/api/cluster`).
    Cluster,
    /// The server's Prometheus exposition.
    Metrics,
    /// The self-service subscription form (GET shows it, POST sends it).
    Subscribe,
    /// What a subscription mail's link leads to: `confirm`, `manage`, `unsubscribe`.
    SubscriptionLink,
}

impl Handler {
    /// Whether the route takes POST as well as GET (the subscription forms).
    pub(crate) fn takes_post(self) -> bool {
        matches!(self, Handler::Subscribe | Handler::SubscriptionLink)
    }
}

/// How [`route_index`] recognises a route's paths without routing them (a few string
/// comparisons: the metrics layer runs outside the router).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    /// Exactly the pattern.
    Exact,
    /// Any path starting with this (a `{*path}` tail).
    Prefix(&'static str),
    /// `prefix{id}suffix` with a non-empty id holding no `/`.
    Param {
        prefix: &'static str,
        suffix: &'static str,
    },
}

#[derive(Debug)]
pub(crate) struct RouteSpec {
    /// The router's pattern, which is also the metric label.
    pub pattern: &'static str,
    pub shape: Shape,
    pub handler: Handler,
}

const fn route(pattern: &'static str, shape: Shape, handler: Handler) -> RouteSpec {
    RouteSpec {
        pattern,
        shape,
        handler,
    }
}

/// Every route of the public port.
pub(crate) const ROUTES: &[RouteSpec] = &[
    route("/api/v2/{*path}", Shape::Prefix("/api/v2/"), Handler::ApiV2),
    route("/", Shape::Exact, Handler::Page),
    route(
        "/incidents/{id}",
        Shape::Param {
            prefix: "/incidents/",
            suffix: "",
        },
        Handler::Page,
    ),
    route("/history", Shape::Exact, Handler::History),
    route("/history.atom", Shape::Exact, Handler::Page),
    route("/history.rss", Shape::Exact, Handler::Page),
    route("/badge.svg", Shape::Exact, Handler::Page),
    route(
        "/components/{id}/badge.svg",
        Shape::Param {
            prefix: "/components/",
            suffix: "/badge.svg",
        },
        Handler::Page,
    ),
    route("/healthz", Shape::Exact, Handler::Healthz),
    route("/readyz", Shape::Exact, Handler::Readyz),
    route("/api/cluster", Shape::Exact, Handler::Cluster),
    route("/metrics", Shape::Exact, Handler::Metrics),
    route("/subscribe", Shape::Exact, Handler::Subscribe),
    route(
        "/subscriptions/{id}",
        Shape::Param {
            prefix: "/subscriptions/",
            suffix: "",
        },
        Handler::SubscriptionLink,
    ),
];

/// The label of requests no route takes.
pub const UNMATCHED: &str = "unmatched";

/// The metric labels of the public port, in [`route_index`] order: every route's pattern,
/// then [`UNMATCHED`].
pub fn route_labels() -> impl Iterator<Item = &'static str> {
    ROUTES
        .iter()
        .map(|r| r.pattern)
        .chain(std::iter::once(UNMATCHED))
}

/// The index in [`route_labels`] of the route a request path takes.
pub fn route_index(path: &str) -> usize {
    ROUTES
        .iter()
        .position(|r| matches(r, path))
        .unwrap_or(ROUTES.len())
}

fn matches(r: &RouteSpec, path: &str) -> bool {
    match r.shape {
        Shape::Exact => path == r.pattern,
        Shape::Prefix(prefix) => path.starts_with(prefix),
        Shape::Param { prefix, suffix } => path
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(|id| !id.is_empty() && !id.contains('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(p: &str) -> &'static str {
        route_labels().nth(route_index(p)).unwrap_or("none")
    }

    #[test]
    fn paths_map_to_their_route_pattern() {
        assert_eq!(label("/api/v2/summary.json"), "/api/v2/{*path}");
        assert_eq!(
            label("/api/v2/incidents/unresolved.json"),
            "/api/v2/{*path}"
        );
        assert_eq!(label("/"), "/");
        assert_eq!(label("/incidents/abc123"), "/incidents/{id}");
        assert_eq!(label("/incidents/"), UNMATCHED);
        assert_eq!(label("/incidents/a/b"), UNMATCHED);
        assert_eq!(
            label("/components/x1/badge.svg"),
            "/components/{id}/badge.svg"
        );
        assert_eq!(label("/components//badge.svg"), UNMATCHED);
        assert_eq!(label("/components/x1"), UNMATCHED);
        assert_eq!(label("/history.atom"), "/history.atom");
        assert_eq!(label("/metrics"), "/metrics");
        assert_eq!(label("/wp-admin.php"), UNMATCHED);
        assert_eq!(label(""), UNMATCHED);
        assert_eq!(route_labels().last(), Some(UNMATCHED));
    }

    #[test]
    fn every_pattern_is_recognised_as_itself() {
        // A route whose shape does not match its own pattern (with a sample id) would be
        // routed but counted as unmatched.
        for (i, r) in ROUTES.iter().enumerate() {
            let sample = r.pattern.replace("{id}", "x1").replace("{*path}", "a.json");
            assert_eq!(route_index(&sample), i, "{}", r.pattern);
        }
    }
}
