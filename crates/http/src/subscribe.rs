//! Self-service email subscriptions on the public page, with no JavaScript: the form, the
//! confirmation (double opt-in), the manage page and the one-click unsubscribe (RFC 8058).
//!
//! The writes go through Raft from whichever node the customer reached (a follower forwards
//! them); everything else is read from the local replica. The rules:
//! - The form's answer is the same whether or not the address is already subscribed (the
//!   state machine mails the address instead: a confirmation, or its manage link), so the form
//!   tells nobody who subscribes. A link that is not valid — unknown subscriber, wrong token,
//!   expired confirmation — gets one answer too.
//! - A link's authority is its token (an HMAC keyed by the subscriber's replicated secret,
//!   `statusmesh_model::links`); the form's is a double-submit CSRF cookie, a honeypot field
//!   (filled in: answered as a success, nothing written) and a per-address rate limit
//!   ([`Limiter`], which counts the link POSTs too: each is a log entry); the per-recipient
//!   limit is the state machine's.
//! - Confirming, managing and unsubscribing are POSTs: a GET shows a button, so a mail
//!   scanner that follows links changes nothing. The unsubscribe URL takes the RFC 8058
//!   one-click POST (`List-Unsubscribe=One-Click`) with no cookie and no further question.
//! - Without a quorum, the forms answer 503 saying subscriptions are paused while the cluster
//!   recovers; the status pages are unaffected.
//! - No address is logged; the audit log names the subscriber by its id.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use statusmesh_cluster::{ClusterNode, ProposeError};
use statusmesh_model::command::NewSubscriber;
use statusmesh_model::links::{self, Purpose};
use statusmesh_model::{
    email_subscriber_id, limits, webhook_subscriber_id, Command, Id, PayloadFormat, Proposal,
    State, Subscriber, MAILTO,
};

use crate::html::esc;

pub use crate::client::ClientAddr;

/// How long a subscription write may take before the form says the cluster is recovering.
const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// Form submissions per client address (IPv4, or IPv6 /64) per [`LIMIT_WINDOW`].
const PER_ADDRESS: u32 = 10;
const LIMIT_WINDOW: Duration = Duration::from_secs(3600);
/// Sources the limiter remembers; past this, new sources share one entry.
const MAX_SOURCES: usize = 10_000;
/// The largest form body read.
pub const MAX_FORM_BYTES: usize = 16 * 1024;
const CSRF_COOKIE: &str = "sm_csrf";

/// Form submissions counted per source over a fixed window.
#[derive(Debug, Default)]
pub struct Limiter {
    sources: Mutex<HashMap<[u8; 16], (Instant, u32)>>,
}

/// The source a client is counted under: its IPv4 address, or its IPv6 /64.
fn source(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            o
        }
    }
}

impl Limiter {
    /// Counts one submission from `ip`; false once it is over the limit.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if sources.len() >= MAX_SOURCES {
            sources.retain(|_, (start, _)| now.duration_since(*start) < LIMIT_WINDOW);
        }
        let key = if sources.len() >= MAX_SOURCES && !sources.contains_key(&source(ip)) {
            [0xff; 16]
        } else {
            source(ip)
        };
        let entry = sources.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= LIMIT_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= PER_ADDRESS
    }
}

/// One decoded form (or query string): every value of every field, in order.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(s: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(s)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(name)?.strip_prefix('='))
}

fn random_hex() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A page of the subscription flow.
fn page(status: StatusCode, state: &State, title: &str, body: &str) -> Response {
    let name = esc(&state.page.name);
    let home = esc(state.page.url.trim_end_matches('/'));
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · {name}</title><style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#222}}\
         fieldset{{border:1px solid #ccc;margin:1rem 0}}.hp{{position:absolute;left:-10000px}}button{{font-size:1rem;padding:.4rem 1rem}}\
         .err{{color:#b00020}}</style></head><body><p><a href=\"{home}/\">{name}</a></p><h1>{title}</h1>{body}</body></html>",
        title = esc(title),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

fn closed(state: &State) -> Response {
    page(
        StatusCode::NOT_FOUND,
        state,
        "Subscriptions",
        "<p>This page does not take subscriptions.</p>",
    )
}

fn invalid_link(state: &State) -> Response {
    page(
        StatusCode::NOT_FOUND,
        state,
        "Link not valid",
        "<p>This link is not valid: it may have expired, or the subscription it belongs to has ended.</p>",
    )
}

fn paused(state: &State) -> Response {
    let mut resp = page(
        StatusCode::SERVICE_UNAVAILABLE,
        state,
        "Subscriptions paused",
        "<p>Subscriptions are paused while the cluster recovers. Reading the status is not \
         affected; please try again in a few minutes.</p>",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
    resp
}

/// The checkboxes of the components a subscriber can choose (groups and their children).
fn component_choices(state: &State, chosen: &BTreeSet<Id>) -> String {
    let mut out = String::new();
    let mut comps: Vec<_> = state.components.values().collect();
    comps.sort_by_key(|c| {
        (
            c.group_id.clone().unwrap_or_else(|| c.id.clone()),
            c.group_id.is_some(),
            c.position,
        )
    });
    for c in comps {
        let checked = if chosen.contains(&c.id) {
            " checked"
        } else {
            ""
        };
        let indent = if c.group_id.is_some() {
            "&nbsp;&nbsp;&nbsp;&nbsp;"
        } else {
            ""
        };
        out.push_str(&format!(
            "<label>{indent}<input type=\"checkbox\" name=\"component\" value=\"{id}\"{checked}> {name}</label><br>",
            id = esc(c.id.as_str()),
            name = esc(&c.name),
        ));
    }
    out
}

/// The components a form chose: empty for "all" (or none ticked).
fn chosen_components(state: &State, form: &Form) -> Result<Vec<Id>, String> {
    if form.get("scope") != Some("some") {
        return Ok(Vec::new());
    }
    form.all("component")
        .map(|c| {
            Id::parse("component", c)
                .ok()
                .filter(|id| state.components.contains_key(id))
                .ok_or_else(|| {
                    "a chosen component does not exist (any more); reload the page".to_owned()
                })
        })
        .collect()
}

/// The page's subscription forms: email, and webhook when the page takes them; each with
/// the CSRF field, the honeypot and the component choice.
fn subscribe_form(state: &State, csrf: &str, error: Option<&str>) -> String {
    let mut out = error.map_or(String::new(), |e| {
        format!("<p class=\"err\">{}</p>", esc(e))
    });
    let common = |kind: &str, button: &str| {
        format!(
            "<fieldset><legend>About</legend>\
             <label><input type=\"radio\" name=\"scope\" value=\"all\" checked> every component</label><br>\
             <label><input type=\"radio\" name=\"scope\" value=\"some\"> only these:</label><br>{choices}</fieldset>\
             <div class=\"hp\" aria-hidden=\"true\"><label>Leave this empty <input type=\"text\" name=\"website\" tabindex=\"-1\" autocomplete=\"off\"></label></div>\
             <input type=\"hidden\" name=\"kind\" value=\"{kind}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\">{button}</button></form>",
            choices = component_choices(state, &BTreeSet::new()),
        )
    };
    if state.page.email_subscriptions {
        out.push_str(&format!(
            "<p>Get an email when something is wrong and when it is fixed. You will receive \
             a message to confirm the address first.</p>\
             <form method=\"post\" action=\"subscribe\">\
             <label>Email address <input type=\"email\" name=\"email\" required autocomplete=\"email\"></label>{}",
            common("email", "Subscribe")
        ));
    }
    if state.page.webhook_subscriptions {
        out.push_str(&format!(
            "<h2>Webhook</h2><p>Have every incident and component change posted to your endpoint \
             (Statuspage's webhook format, signed per Standard Webhooks). A message to the \
             contact address confirms it and shows the signing secret.</p>\
             <form method=\"post\" action=\"subscribe\">\
             <label>Endpoint URL <input type=\"url\" name=\"url\" required></label><br>\
             <label>Contact email <input type=\"email\" name=\"contact\" required autocomplete=\"email\"></label>{}",
            common("webhook", "Subscribe the webhook")
        ));
    }
    out
}

/// Whether the page offers any self-service subscription.
fn takes_subscriptions(state: &State) -> bool {
    state.page.email_subscriptions || state.page.webhook_subscriptions
}

/// The request an email form makes: the address checked, its id derived.
fn email_request(form: &Form, component_ids: Vec<Id>) -> Result<(Id, Command), String> {
    let address = limits::email_address("email", form.get("email").unwrap_or(""))
        .map_err(|e| e.to_string())?;
    let id = email_subscriber_id(&address);
    let command = Command::RequestSubscription {
        id: id.clone(),
        spec: NewSubscriber {
            url: format!("{MAILTO}{address}"),
            component_ids,
            description: None,
            secret: String::new(),
            format: PayloadFormat::Email,
            owner: None,
        },
    };
    Ok((id, command))
}

/// The self-service flow, answered from `node`'s replica and proposed through it.
pub(crate) struct Desk<'a> {
    pub node: &'a ClusterNode,
    pub limiter: &'a Limiter,
    /// The node has not heard from a leader lately: writes would only time out.
    pub stale: bool,
    /// The webhook endpoints a customer may subscribe (the dispatcher's policy).
    pub targets: &'a statusmesh_egress::TargetPolicy,
}

impl Desk<'_> {
    fn state(&self) -> State {
        // Only the page settings, components and one subscriber are read; a clone of the
        // whole state would cost O(subscribers) per request.
        let data = self.node.replica().read();
        State {
            page: data.state.page.clone(),
            components: data.state.components.clone(),
            ..State::default()
        }
    }

    fn subscriber(&self, id: &str) -> Option<Subscriber> {
        let id = Id::parse("s", id).ok()?;
        self.node
            .replica()
            .read()
            .state
            .subscribers
            .get(&id)
            .cloned()
    }

    /// The subscriber a link names, if its token is right for `purpose`.
    fn linked(&self, query: &Form, purpose: Purpose) -> Option<Subscriber> {
        let sub = self.subscriber(query.get("s")?)?;
        links::verify(purpose, &sub, query.get("t")?).then_some(sub)
    }

    /// Proposes `command` under `key`; `Ok(true)` when the key had been used before and the
    /// answer is the remembered one (a link already followed).
    async fn propose(&self, key: String, command: Command) -> Result<bool, Response> {
        if self.stale {
            return Err(paused(&self.state()));
        }
        let proposal = Proposal {
            fingerprint: key.clone(),
            idempotency_key: key,
            at: statusmesh_model::Timestamp::default(),
            actor: "public".into(),
            via_node: self.node.id,
            request_id: String::new(),
            command,
        };
        match self.node.propose(proposal, WRITE_DEADLINE).await {
            Ok(outcome) => match outcome.result {
                Ok(_) => Ok(outcome.replayed),
                Err(e) => {
                    tracing::info!(error = %e, "a public subscription write was refused");
                    Err(page(
                        StatusCode::BAD_REQUEST,
                        &self.state(),
                        "Not done",
                        &format!("<p class=\"err\">{}</p>", esc(&e.to_string())),
                    ))
                }
            },
            Err(ProposeError::TooLarge { .. }) => Err(page(
                StatusCode::PAYLOAD_TOO_LARGE,
                &self.state(),
                "Not done",
                "<p class=\"err\">The request is too large.</p>",
            )),
            Err(e) => {
                tracing::warn!(error = %e, "a public subscription write was not committed");
                Err(paused(&self.state()))
            }
        }
    }

    /// The answer for a client over its limit of writes, if it is.
    fn over_limit(&self, client: Option<ClientAddr>, state: &State) -> Option<Response> {
        let ClientAddr(ip) = client?;
        if self.limiter.allow(ip, Instant::now()) {
            return None;
        }
        let mut resp = page(
            StatusCode::TOO_MANY_REQUESTS,
            state,
            "Too many requests",
            "<p class=\"err\">Too many subscription requests came from your network. Please try again later.</p>",
        );
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static("3600"),
        );
        Some(resp)
    }

    /// `GET /subscribe`: the form, with a fresh CSRF cookie.
    pub fn form(&self) -> Response {
        let state = self.state();
        if !takes_subscriptions(&state) {
            return closed(&state);
        }
        let csrf = random_hex();
        let mut resp = page(
            StatusCode::OK,
            &state,
            "Subscribe to updates",
            &subscribe_form(&state, &csrf, None),
        );
        if let Ok(v) = header::HeaderValue::from_str(&format!(
            "{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600"
        )) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        resp
    }

    /// The request a webhook form makes: the endpoint checked against the dispatcher's
    /// policy (scheme, and an address given literally; a name is resolved at every delivery)
    /// and the contact address that confirms it; its id derived from the URL.
    fn webhook_request(
        &self,
        form: &Form,
        component_ids: Vec<Id>,
    ) -> Result<(Id, Command), String> {
        let url = limits::http_url("url", form.get("url").unwrap_or("").trim())
            .map_err(|e| e.to_string())?;
        statusmesh_egress::check_url(url.as_str(), self.targets)
            .map_err(|e| format!("url: {e}"))?;
        let contact = limits::email_address("contact", form.get("contact").unwrap_or(""))
            .map_err(|e| e.to_string())?;
        let id = webhook_subscriber_id(url.as_str());
        let command = Command::RequestSubscription {
            id: id.clone(),
            spec: NewSubscriber {
                url: url.to_string(),
                component_ids,
                description: Some("subscribed on the public page".into()),
                secret: String::new(),
                format: PayloadFormat::Statuspage,
                owner: Some(contact),
            },
        };
        Ok((id, command))
    }

    /// `POST /subscribe`.
    pub async fn subscribe(
        &self,
        client: Option<ClientAddr>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response {
        let state = self.state();
        if !takes_subscriptions(&state) {
            return closed(&state);
        }
        let form = Form::parse(body);
        let csrf = form.get("csrf").unwrap_or("");
        if csrf.is_empty() || cookie(headers, CSRF_COOKIE) != Some(csrf) {
            return page(
                StatusCode::FORBIDDEN,
                &state,
                "Form expired",
                "<p class=\"err\">This form has expired or was not sent from this page. Please <a href=\"subscribe\">reload it</a> and try again.</p>",
            );
        }
        if let Some(over) = self.over_limit(client, &state) {
            return over;
        }
        let sent = || {
            page(
                StatusCode::OK,
                &state,
                "Check your inbox",
                "<p>If the address can receive mail, a message is on its way. Follow the link in it to confirm (or to manage an existing subscription).</p>",
            )
        };
        // A bot filled in the field people do not see: answered alike, nothing written.
        if form.get("website").is_some_and(|v| !v.is_empty()) {
            return sent();
        }
        let refused = |e: String| {
            let body = subscribe_form(&state, csrf, Some(&e));
            page(
                StatusCode::BAD_REQUEST,
                &state,
                "Subscribe to updates",
                &body,
            )
        };
        let component_ids = match chosen_components(&state, &form) {
            Ok(c) => c,
            Err(e) => return refused(e),
        };
        let requested = match form.get("kind").unwrap_or("email") {
            "webhook" if state.page.webhook_subscriptions => {
                self.webhook_request(&form, component_ids)
            }
            "email" if state.page.email_subscriptions => email_request(&form, component_ids),
            _ => return closed(&state),
        };
        let (id, command) = match requested {
            Ok(r) => r,
            Err(e) => return refused(e),
        };
        match self
            .propose(format!("public:subscribe:{id}:{csrf}"), command)
            .await
        {
            Ok(_) => sent(),
            Err(resp) => resp,
        }
    }

    /// `GET /subscriptions/{confirm,manage,unsubscribe}`: what the link leads to, with a
    /// button (the change itself is a POST).
    pub fn show(&self, purpose: Purpose, query: &str) -> Response {
        let state = self.state();
        let q = Form::parse(query.as_bytes());
        let Some(sub) = self.linked(&q, purpose) else {
            return invalid_link(&state);
        };
        let action = format!(
            "{}?s={}&t={}",
            purpose.as_str(),
            esc(sub.id.as_str()),
            esc(q.get("t").unwrap_or(""))
        );
        let (title, body) = match purpose {
            Purpose::Confirm => (
                "Confirm your subscription",
                format!(
                    "<form method=\"post\" action=\"{action}\"><p>Confirm that you want {} from this page.</p><button type=\"submit\">Confirm</button></form>",
                    if sub.format.is_email() { "email updates".to_owned() } else { format!("updates posted to <code>{}</code>", esc(&sub.url)) }
                ),
            ),
            Purpose::Unsubscribe => (
                "Unsubscribe",
                format!("<form method=\"post\" action=\"{action}\"><p>Stop all email from this page.</p><button type=\"submit\">Unsubscribe</button></form>"),
            ),
            Purpose::Manage => {
                let unsubscribe = links::token(Purpose::Unsubscribe, &sub).unwrap_or_default();
                let all = if sub.component_ids.is_empty() { " checked" } else { "" };
                let some = if sub.component_ids.is_empty() { "" } else { " checked" };
                (
                    "Your subscription",
                    format!(
                        "<form method=\"post\" action=\"{action}\"><fieldset><legend>Email me about</legend>\
                         <label><input type=\"radio\" name=\"scope\" value=\"all\"{all}> every component</label><br>\
                         <label><input type=\"radio\" name=\"scope\" value=\"some\"{some}> only these:</label><br>{choices}</fieldset>\
                         <button type=\"submit\">Save</button></form>\
                         <form method=\"post\" action=\"unsubscribe?s={id}&amp;t={unsubscribe}\"><button type=\"submit\">Unsubscribe</button></form>",
                        choices = component_choices(&state, &sub.component_ids),
                        id = esc(sub.id.as_str()),
                    ),
                )
            }
        };
        page(StatusCode::OK, &state, title, &body)
    }

    /// `POST /subscriptions/{confirm,manage,unsubscribe}?s=&t=`: the change the link allows.
    pub async fn act(
        &self,
        client: Option<ClientAddr>,
        purpose: Purpose,
        query: &str,
        body: &[u8],
    ) -> Response {
        let state = self.state();
        let q = Form::parse(query.as_bytes());
        let Some(sub) = self.linked(&q, purpose) else {
            return invalid_link(&state);
        };
        // Each of these is a log entry too: the same limit as the form's.
        if let Some(over) = self.over_limit(client, &state) {
            return over;
        }
        let token = q.get("t").unwrap_or("");
        let (key, command, title, text) = match purpose {
            Purpose::Confirm => (
                format!("public:confirm:{}:{token}", sub.id),
                Command::ConfirmSubscription { id: sub.id.clone() },
                "Subscribed",
                if sub.format.is_email() {
                    "<p>You will receive an email when an incident or maintenance is posted.</p>"
                        .to_owned()
                } else {
                    // The one who holds the link is the one who verifies the deliveries.
                    format!(
                        "<p>Every incident, maintenance and component change will be POSTed to \
                         <code>{}</code>, signed per Standard Webhooks with this secret (keep it; \
                         it is not shown in mails):</p><p><code id=\"secret\">{}</code></p>",
                        esc(&sub.url),
                        esc(&sub.secret)
                    )
                },
            ),
            Purpose::Unsubscribe => (
                format!("public:unsubscribe:{}:{token}", sub.id),
                Command::RemoveSubscriber { id: sub.id.clone() },
                "Unsubscribed",
                if sub.format.is_email() {
                    "<p>You will receive no more email from this page, and your address has been deleted.</p>"
                } else {
                    "<p>The webhook subscription is removed: nothing more will be posted to it.</p>"
                }
                .to_owned(),
            ),
            Purpose::Manage => {
                let form = Form::parse(body);
                let component_ids = match chosen_components(&state, &form) {
                    Ok(c) => c,
                    Err(e) => {
                        return page(
                            StatusCode::BAD_REQUEST,
                            &state,
                            "Not saved",
                            &format!("<p class=\"err\">{}</p>", esc(&e)),
                        )
                    }
                };
                (
                    format!("public:manage:{}:{}", sub.id, random_hex()),
                    Command::SetSubscriberComponents {
                        id: sub.id.clone(),
                        component_ids,
                    },
                    "Saved",
                    "<p>Your choice of components is saved.</p>".to_owned(),
                )
            }
        };
        match self.propose(key, command).await {
            // An unsubscribe link works once: followed again (on a replica that has not yet
            // applied the removal, say), it is as spent as on one that has.
            Ok(true) if purpose == Purpose::Unsubscribe => invalid_link(&state),
            Ok(_) => page(StatusCode::OK, &state, title, &text),
            Err(resp) => resp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_counts_per_address_and_per_ipv6_64() {
        let l = Limiter::default();
        let now = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..PER_ADDRESS {
            assert!(l.allow(a, now));
        }
        assert!(!l.allow(a, now));
        assert!(l.allow("192.0.2.2".parse().unwrap(), now));
        assert!(l.allow(a, now + LIMIT_WINDOW), "a new window");
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..PER_ADDRESS {
            assert!(l.allow(v6, now));
        }
        assert!(!l.allow("2001:db8::ffff".parse().unwrap(), now), "same /64");
    }

    #[test]
    fn forms_and_cookies_decode() {
        let f = Form::parse(b"email=a%40b.example&scope=some&component=x1&component=y2&website=");
        assert_eq!(f.get("email"), Some("a@b.example"));
        assert_eq!(f.all("component").collect::<Vec<_>>(), ["x1", "y2"]);
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; sm_csrf=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("abc"));
    }
}
