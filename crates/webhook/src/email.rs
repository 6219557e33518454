//! Email notifications: what a message says (rendered once per event from the same incident
//! data as the page, in the page's time zone), the headers that make it one thread per
//! incident with a one-click unsubscribe, and the SMTP relay it goes through.
//!
//! Invariants:
//! - A message's `Message-ID` is a function of the event and the subscriber only, so every
//!   attempt of one delivery — retries, re-sends after a failover — carries the same one and
//!   a mail client or the relay can tell the repeat.
//! - The messages of one incident (or maintenance) to one subscriber form a thread: the first
//!   event's `Message-ID` is the thread's root, and every later message names it in
//!   `In-Reply-To` and `References`.
//! - Every message carries `List-Id`, `List-Unsubscribe` (the signed one-click link) and
//!   `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 2919, RFC 8058).
//! - The recipient's address goes into the envelope and the `To` header only: errors and
//!   relay answers kept in the attempt log have it replaced by `<recipient>`.

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;
use statusmesh_model::links::{self, Purpose};
use statusmesh_model::outbox::EventSubject;
use statusmesh_model::{Event, EventKind, State, Subscriber, Timestamp};

use crate::relay::{Protection, Relay};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain, then `STARTTLS` before anything else; refused if the relay does not offer it.
    StartTls,
    /// No TLS: only for a relay on loopback or a private network (tests, a local MTA).
    None,
}

/// `[email]` in the node's configuration.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// PEM of a CA to trust for the relay beside the public roots (a private relay).
    pub ca_pem: Option<Vec<u8>>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// Connections to the relay kept open and used at once.
    pub connections: u32,
    pub timeout: Duration,
}

/// The domain of the sender's address: the right-hand side of every `Message-ID`.
fn id_domain(cfg: &MailConfig) -> &str {
    cfg.from.email.domain()
}

/// The part of a message every recipient of one event shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailContent {
    pub kind: EventKind,
    pub subject: String,
    /// The text of the message before the per-recipient links.
    pub text: String,
    /// The same as HTML (a fragment: the body's content).
    pub html: String,
    /// The incident or maintenance the message belongs to, for threading.
    pub thread: Option<String>,
    /// This message starts its thread (an incident created, a maintenance scheduled).
    pub starts_thread: bool,
    pub page_id: String,
    pub page_name: String,
}

/// The per-recipient part: the address and the signed links, built where the subscriber is
/// known (the ready queue, from the replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub subscriber: String,
    pub manage: String,
    pub unsubscribe: String,
    /// For a confirmation mail: the link that activates the subscription.
    pub confirm: Option<String>,
}

impl Recipient {
    /// `None` for a subscriber that is not an email subscriber.
    pub fn of(state: &State, sub: &Subscriber) -> Option<Recipient> {
        let address = sub.mail_to()?.to_owned();
        let page = &state.page.url;
        Some(Recipient {
            address,
            subscriber: sub.id.to_string(),
            manage: links::url(page, Purpose::Manage, sub)?,
            unsubscribe: links::url(page, Purpose::Unsubscribe, sub)?,
            confirm: links::url(page, Purpose::Confirm, sub),
        })
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Paragraphs of plain text as HTML.
fn paragraphs(text: &str) -> String {
    text.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", html_escape(p).replace('\n', "<br>")))
        .collect()
}

fn local_time(tz: Tz, at: Timestamp) -> String {
    at.to_datetime()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// Renders what every recipient of `event` reads.
pub fn render(state: &State, event: &Event) -> MailContent {
    let tz: Tz = state.page.time_zone.parse().unwrap_or(Tz::UTC);
    let page_name = if state.page.name.is_empty() {
        "Status".to_owned()
    } else {
        state.page.name.clone()
    };
    let url = state.page.url.trim_end_matches('/').to_owned();
    let when = local_time(tz, event.at);
    let (subject, text, thread, starts_thread) = match &event.subject {
        EventSubject::Incident { incident, .. } => {
            let recorded = event.incident_as_recorded(state);
            let latest = recorded.as_ref().and_then(|i| i.updates.last());
            let mut text = format!(
                "{} — {}\nImpact: {}\n{when}\n\n",
                incident.name,
                incident.status.as_str(),
                incident.impact.as_str()
            );
            if let Some(u) = latest {
                text.push_str(&u.body);
                text.push_str("\n\n");
                if !u.affected_components.is_empty() {
                    let list: Vec<String> = u
                        .affected_components
                        .iter()
                        .map(|c| format!("{}: {}", c.name, c.new_status.as_str()))
                        .collect();
                    text.push_str(&format!("Affected: {}\n\n", list.join(", ")));
                }
            }
            text.push_str(&format!("Follow it at {url}/incidents/{}\n", incident.id));
            (
                format!(
                    "[{page_name}] {} ({})",
                    incident.name,
                    incident.status.as_str()
                ),
                text,
                Some(incident.id.to_string()),
                event.kind == EventKind::IncidentCreated,
            )
        }
        EventSubject::Maintenance { maintenance } => {
            let mut text = format!(
                "{} — {}\nFrom {} to {}\n\n",
                maintenance.name,
                maintenance.status.as_str(),
                local_time(tz, maintenance.scheduled_for),
                local_time(tz, maintenance.scheduled_until)
            );
            if let Some(u) = maintenance.updates.last() {
                text.push_str(&u.body);
                text.push_str("\n\n");
            }
            text.push_str(&format!("Details at {url}/incidents/{}\n", maintenance.id));
            (
                format!(
                    "[{page_name}] Maintenance: {} ({})",
                    maintenance.name,
                    maintenance.status.as_str()
                ),
                text,
                Some(maintenance.id.to_string()),
                event.kind == EventKind::MaintenanceScheduled,
            )
        }
        EventSubject::Component {
            component,
            old_status,
            new_status,
        } => (
            format!(
                "[{page_name}] {} is {}",
                component.name,
                new_status.as_str().replace('_', " ")
            ),
            format!(
                "{} changed from {} to {} at {when}.\n\nCurrent status: {url}/\n",
                component.name,
                old_status.as_str(),
                new_status.as_str()
            ),
            None,
            false,
        ),
        EventSubject::Subscriber {
            reason,
            subscriber_id,
        } => {
            // A webhook asked for on the page: the mail names its endpoint's host (the
            // whole URL may carry a token).
            let endpoint = state
                .subscribers
                .get(subscriber_id)
                .filter(|s| !s.format.is_email())
                .and_then(|s| url::Url::parse(&s.url).ok())
                .map(|u| u.host_str().unwrap_or("").to_owned());
            let (subject, text) = match (event.kind, endpoint) {
                (EventKind::SubscriptionConfirm, None) => (
                    format!("[{page_name}] Confirm your subscription"),
                    format!(
                        "Someone, hopefully you, asked to be told by email about incidents on \
                         {page_name} ({url}/).\n\nFollow the link below within 24 hours to \
                         confirm. If you did not ask, ignore this message: nothing will be sent.\n"
                    ),
                ),
                (EventKind::SubscriptionConfirm, Some(host)) => (
                    format!("[{page_name}] Confirm your webhook subscription"),
                    format!(
                        "Someone, hopefully you, asked for incidents on {page_name} ({url}/) to be \
                         posted to a webhook at {host}, with this address as its contact.\n\n\
                         Follow the link below within 24 hours to confirm; the page it leads to \
                         shows the secret that signs every delivery. If you did not ask, ignore \
                         this message: nothing will be sent.\n"
                    ),
                ),
                (EventKind::SubscriptionManage, endpoint) => (
                    format!("[{page_name}] Your subscription"),
                    format!(
                        "{} already subscribed to {page_name} ({url}/).\n\nUse the link below \
                         to choose components or to unsubscribe.\n",
                        match endpoint {
                            Some(host) => format!("The webhook at {host} is"),
                            None => "This address is".to_owned(),
                        }
                    ),
                ),
                _ => (
                    format!("[{page_name}] Test notification"),
                    format!("{reason}.\n"),
                ),
            };
            (subject, text, None, false)
        }
    };
    // The page's own words around the message (an operator's header and footer).
    let text = [
        state.page.mail_header.as_str(),
        text.trim_end(),
        state.page.mail_footer.as_str(),
    ]
    .into_iter()
    .filter(|part| !part.is_empty())
    .collect::<Vec<_>>()
    .join("\n\n")
        + "\n";
    MailContent {
        kind: event.kind,
        html: paragraphs(&text),
        subject,
        text,
        thread,
        starts_thread,
        page_id: state.page.id.to_string(),
        page_name,
    }
}

/// The ids a message carries: its own, and the thread root it answers (if any).
pub fn message_ids(
    content: &MailContent,
    webhook_id: &str,
    subscriber: &str,
    domain: &str,
) -> (String, Option<String>) {
    let root = content
        .thread
        .as_ref()
        .map(|t| format!("<{t}.{subscriber}@{domain}>"));
    match root {
        Some(root) if content.starts_thread => (root, None),
        root => (format!("<{webhook_id}.{subscriber}@{domain}>"), root),
    }
}

/// The whole message to one recipient.
pub fn message(
    cfg: &MailConfig,
    content: &MailContent,
    to: &Recipient,
    webhook_id: &str,
) -> Result<Message, String> {
    let mailbox: Mailbox = to
        .address
        .parse()
        .map_err(|e| format!("the address does not parse: {e}"))?;
    let (action_text, action_html) = match (content.kind, &to.confirm) {
        (EventKind::SubscriptionConfirm, Some(link)) => (
            format!("Confirm: {link}\n"),
            format!(
                "<p><a href=\"{0}\">Confirm my subscription</a></p>",
                html_escape(link)
            ),
        ),
        (EventKind::SubscriptionManage, _) => (
            format!("Manage: {}\n", to.manage),
            format!(
                "<p><a href=\"{0}\">Manage my subscription</a></p>",
                html_escape(&to.manage)
            ),
        ),
        _ => (String::new(), String::new()),
    };
    let footer_text = format!(
        "\n--\nYou receive this because you subscribed to {} updates.\nManage: {}\nUnsubscribe: {}\n",
        content.page_name, to.manage, to.unsubscribe
    );
    let footer_html = format!(
        "<hr><p style=\"color:#666;font-size:small\">You receive this because you subscribed to \
         {} updates. <a href=\"{}\">Manage</a> · <a href=\"{}\">Unsubscribe</a></p>",
        html_escape(&content.page_name),
        html_escape(&to.manage),
        html_escape(&to.unsubscribe)
    );
    let text = format!("{}\n{action_text}{footer_text}", content.text);
    let html = format!(
        "<!doctype html><html><body>{}{action_html}{footer_html}</body></html>",
        content.html
    );
    let domain = id_domain(cfg);
    let (id, root) = message_ids(content, webhook_id, &to.subscriber, domain);
    let mut b = Message::builder()
        .from(cfg.from.clone())
        .to(mailbox)
        .subject(content.subject.clone())
        .message_id(Some(id));
    if let Some(reply_to) = &cfg.reply_to {
        b = b.reply_to(reply_to.clone());
    }
    if let Some(root) = root {
        b = b.in_reply_to(root.clone()).references(root);
    }
    let label = if content.page_id.is_empty() {
        "status".to_owned()
    } else {
        content.page_id.clone()
    };
    for (name, value) in [
        (
            "List-Id",
            format!(
                "{} <{label}.status.{domain}>",
                content.page_name.replace(['<', '>', '"'], "")
            ),
        ),
        ("List-Unsubscribe", format!("<{}>", to.unsubscribe)),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
        ("Auto-Submitted", "auto-generated".into()),
    ] {
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(name),
            value,
        ));
    }
    b.multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| format!("the message cannot be built: {e}"))
}

/// What the relay made of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relayed {
    Accepted,
    /// Refused for good for this recipient (550, 551, 553, 556): the subscriber bounces.
    Bounced {
        reply: String,
    },
    /// A temporary refusal or any other failure (relay down, TLS, authentication, a 4xx):
    /// retried on the schedule.
    Failed {
        code: Option<u16>,
        error: String,
    },
}

/// The SMTP replies that mean "this mailbox does not take mail", as opposed to a relay that
/// refuses everything (authentication, policy) — those must not bounce every subscriber.
const BOUNCE_CODES: &[u16] = &[550, 551, 553, 556];

/// The relay, through a bounded set of reused connections ([`crate::relay`]).
#[derive(Clone)]
pub struct Mailer {
    relay: Arc<Relay>,
    cfg: Arc<MailConfig>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer({}:{})", self.cfg.host, self.cfg.port)
    }
}

/// The relay's TLS settings could not be built (a CA that does not parse).
#[derive(Debug, thiserror::Error)]
#[error("email relay TLS: {0}")]
pub struct MailerError(String);

impl Mailer {
    pub fn new(cfg: MailConfig) -> Result<Self, MailerError> {
        let protection = Protection::of(&cfg).map_err(MailerError)?;
        let cfg = Arc::new(cfg);
        Ok(Mailer {
            relay: Arc::new(Relay::new(cfg.clone(), protection)),
            cfg,
        })
    }

    pub fn config(&self) -> &MailConfig {
        &self.cfg
    }

    /// Sends one message to `to`; the address never appears in what comes back.
    pub async fn send(&self, content: &MailContent, to: &Recipient, webhook_id: &str) -> Relayed {
        let msg = match message(&self.cfg, content, to, webhook_id) {
            Ok(m) => m,
            Err(error) => return Relayed::Failed { code: None, error },
        };
        let hide = |s: String| s.replace(&to.address, "<recipient>");
        match self.relay.send(msg.envelope(), &msg.formatted()).await {
            Ok(_) => Relayed::Accepted,
            Err(e) => {
                let code = e.code();
                let error = hide(e.to_string());
                match code {
                    Some(c) if e.is_permanent() && BOUNCE_CODES.contains(&c) => {
                        Relayed::Bounced { reply: error }
                    }
                    _ => Relayed::Failed { code, error },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statusmesh_model::testkit;

    fn cfg() -> MailConfig {
        MailConfig {
            host: "127.0.0.1".into(),
            port: 2525,
            security: Security::None,
            ca_pem: None,
            username: None,
            password: None,
            from: "Acme Status <status@acme.example>".parse().unwrap(),
            reply_to: Some("support@acme.example".parse().unwrap()),
            connections: 2,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn one_incident_is_one_thread_with_stable_ids_and_one_click_unsubscribe() {
        let s = testkit::rich();
        let state = &s.state;
        let bob = &state.subscribers[&statusmesh_model::email_subscriber_id("bob@example.com")];
        let to = Recipient::of(state, bob).unwrap();
        assert!(to.confirm.is_none(), "bob is confirmed");
        let events: Vec<&Event> = state
            .outbox
            .events
            .values()
            .filter(|e| matches!(e.subject, EventSubject::Incident { .. }))
            .collect();
        let created = events
            .iter()
            .find(|e| e.kind == EventKind::IncidentCreated)
            .unwrap();
        let updated = events
            .iter()
            .find(|e| e.kind == EventKind::IncidentUpdated)
            .unwrap();
        let first = render(state, created);
        let second = render(state, updated);
        assert!(
            first.subject.starts_with("[Acme Cloud] "),
            "{}",
            first.subject
        );
        // Times are the page's (Europe/Paris).
        assert!(
            first.text.contains("CET") || first.text.contains("CEST"),
            "{}",
            first.text
        );
        // The page's header and footer frame the message, in both parts.
        assert!(
            first.text.starts_with("Acme status updates: "),
            "{}",
            first.text
        );
        assert!(
            first.text.ends_with("Acme Ltd, 1 Example Street, Paris\n"),
            "{}",
            first.text
        );
        assert!(
            first.html.starts_with("<p>Acme status updates: "),
            "{}",
            first.html
        );
        assert!(first.html.contains("<p>Acme Ltd, 1 Example Street, Paris"));
        let m1 = message(&cfg(), &first, &to, &created.webhook_id).unwrap();
        let m2 = message(&cfg(), &second, &to, &updated.webhook_id).unwrap();
        let raw1 = String::from_utf8(m1.formatted()).unwrap();
        let raw2 = String::from_utf8(m2.formatted()).unwrap();
        let header = |raw: &str, name: &str| -> Option<String> {
            raw.lines()
                .find(|l| {
                    l.to_ascii_lowercase()
                        .starts_with(&format!("{}:", name.to_ascii_lowercase()))
                })
                .map(|l| l[name.len() + 1..].trim().to_owned())
        };
        let root = header(&raw1, "Message-ID").unwrap();
        assert_eq!(root, format!("<inc1.{}@acme.example>", bob.id));
        assert_eq!(header(&raw1, "In-Reply-To"), None);
        assert_eq!(header(&raw2, "In-Reply-To"), Some(root.clone()));
        assert_eq!(header(&raw2, "References"), Some(root));
        assert_eq!(
            header(&raw2, "Message-ID").unwrap(),
            format!("<{}.{}@acme.example>", updated.webhook_id, bob.id)
        );
        // The same delivery built again (a retry, another leader) is the same message id.
        let again = message(&cfg(), &second, &to, &updated.webhook_id).unwrap();
        assert_eq!(
            header(&String::from_utf8(again.formatted()).unwrap(), "Message-ID"),
            header(&raw2, "Message-ID")
        );
        assert_eq!(
            header(&raw2, "List-Unsubscribe"),
            Some(format!("<{}>", to.unsubscribe))
        );
        assert_eq!(
            header(&raw2, "List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        assert!(header(&raw2, "List-Id")
            .unwrap()
            .contains("<page1.status.acme.example>"));
        assert!(raw2.contains("multipart/alternative"));
        assert!(raw2.contains("text/html"));
    }

    #[test]
    fn a_confirmation_carries_its_link_and_a_manage_mail_its_own() {
        let s = testkit::rich();
        let state = &s.state;
        let jane = &state.subscribers[&statusmesh_model::email_subscriber_id("jane@example.com")];
        let to = Recipient::of(state, jane).unwrap();
        let link = to.confirm.clone().expect("jane is unconfirmed");
        assert!(link.starts_with("https://status.example.com/subscriptions/confirm?s="));
        let confirm = state
            .outbox
            .events
            .values()
            .find(|e| e.kind == EventKind::SubscriptionConfirm)
            .unwrap();
        let content = render(state, confirm);
        let m = message(&cfg(), &content, &to, &confirm.webhook_id).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("Confirm your subscription"), "{raw}");
        // The link may be folded by quoted-printable: compare without soft breaks.
        let unfolded = raw.replace("=\r\n", "").replace("=3D", "=");
        assert!(unfolded.contains(&link), "{unfolded}");
    }
}
