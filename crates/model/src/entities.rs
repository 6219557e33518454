//! The replicated entities of a status page. Plain data: the rules that change them live in
//! `apply`, the enumerations and their transitions in `status`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::{Id, Timestamp};
use crate::status::{ComponentStatus, Impact, IncidentStatus, MaintenanceStatus};

/// Page-wide settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageSettings {
    /// Chosen by the leader on the first `SetPage`; pending (empty) until then.
    #[serde(default = "Id::pending")]
    pub id: Id,
    /// Shown in the page title and in every API response.
    pub name: String,
    /// The public address customers use (used in links, feeds and webhook payloads).
    pub url: String,
    /// IANA time zone the page shows times in.
    pub time_zone: String,
    /// Whether public output uses `under_maintenance` / `maintenance`. Some strict Statuspage
    /// clients accept only the four outage levels; turning this off reports a component under
    /// maintenance as `operational` and a maintenance-only page as `none`.
    #[serde(default = "default_true")]
    pub emit_maintenance_status: bool,
    /// Whether customers may subscribe themselves by email on the public page (double opt-in).
    /// Off until an operator turns it on; absent from states written before it existed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub email_subscriptions: bool,
    /// Whether customers may subscribe a webhook endpoint on the public page, confirmed by a
    /// mail to the contact address they give. Off until an operator turns it on.
    #[serde(default, skip_serializing_if = "is_false")]
    pub webhook_subscriptions: bool,
    /// Plain text at the top of every subscriber mail (empty: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mail_header: String,
    /// Plain text at the end of every subscriber mail's message, above the subscription links.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mail_footer: String,
    pub updated_at: Timestamp,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_true() -> bool {
    true
}

impl Default for PageSettings {
    fn default() -> Self {
        PageSettings {
            id: Id::pending(),
            name: "Status".into(),
            url: "http://localhost/".into(),
            time_zone: "UTC".into(),
            emit_maintenance_status: true,
            email_subscriptions: false,
            webhook_subscriptions: false,
            mail_header: String::new(),
            mail_footer: String::new(),
            updated_at: Timestamp(0),
        }
    }
}

/// A component, or a group of components (two levels: groups hold components, never groups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    pub id: Id,
    pub name: String,
    pub description: Option<String>,
    /// Order among its siblings (lower first).
    pub position: u32,
    /// For a group, the stored value is unused: its status is the worst of its children's,
    /// see `State::component_status`.
    pub status: ComponentStatus,
    pub group_id: Option<Id>,
    pub is_group: bool,
    /// Shown with an uptime bar on the public page.
    pub showcase: bool,
    pub only_show_if_degraded: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Every status change, oldest first, kept for [`STATUS_LOG_WINDOW_MS`] of command time
    /// plus the last change before that (the status the window starts in). Feeds uptime.
    #[serde(default)]
    pub status_log: Vec<StatusChange>,
}

/// How far back a component's status log reaches (90 days, the uptime window, plus a day).
pub const STATUS_LOG_WINDOW_MS: i64 = 91 * 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub at: Timestamp,
    pub status: ComponentStatus,
}

impl Component {
    /// The one way a component's status changes: recorded in its log, old entries pruned.
    pub fn set_status(&mut self, at: Timestamp, status: ComponentStatus) {
        if self.status != status || self.status_log.is_empty() {
            self.status_log.push(StatusChange { at, status });
        }
        self.status = status;
        self.updated_at = at;
        let cutoff = Timestamp(at.0 - STATUS_LOG_WINDOW_MS);
        // Keep the last change before the cutoff: it is the status the window starts in.
        let first_inside = self
            .status_log
            .iter()
            .position(|c| c.at >= cutoff)
            .unwrap_or(self.status_log.len());
        if first_inside > 1 {
            self.status_log.drain(..first_inside - 1);
        }
    }
}

/// One component's change recorded on an incident update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedComponent {
    pub component_id: Id,
    /// The component's name when the update was posted (it survives a later rename or delete).
    pub name: String,
    pub old_status: ComponentStatus,
    pub new_status: ComponentStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentUpdate {
    pub id: Id,
    pub status: IncidentStatus,
    pub body: String,
    pub created_at: Timestamp,
    pub affected_components: Vec<AffectedComponent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Postmortem {
    pub body: String,
    pub published_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: Id,
    pub name: String,
    pub status: IncidentStatus,
    pub impact: Impact,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub started_at: Timestamp,
    pub monitoring_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    /// Every component any update touched.
    pub components: BTreeSet<Id>,
    /// Oldest first, as committed (the public API shows them newest first).
    pub updates: Vec<IncidentUpdate>,
    pub postmortem: Option<Postmortem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceUpdate {
    pub id: Id,
    pub status: MaintenanceStatus,
    pub body: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    pub id: Id,
    pub name: String,
    pub status: MaintenanceStatus,
    pub scheduled_for: Timestamp,
    pub scheduled_until: Timestamp,
    pub components: BTreeSet<Id>,
    /// When true the leader starts and completes the maintenance at the window's edges.
    pub auto_transitions: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    /// Oldest first.
    pub updates: Vec<MaintenanceUpdate>,
}

/// How a subscriber wants its webhook bodies shaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// The Statuspage envelope (`meta`, `page`, `incident` or `component` + `component_update`).
    #[default]
    Statuspage,
    /// A Slack incoming-webhook message with blocks.
    Slack,
    /// A Discord webhook message: content and one embed.
    Discord,
    /// An email through the configured SMTP relay; the subscriber's `url` is
    /// `mailto:<address>` and its id is derived from the address ([`email_subscriber_id`]).
    Email,
}

impl PayloadFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::Statuspage => "statuspage",
            PayloadFormat::Slack => "slack",
            PayloadFormat::Discord => "discord",
            PayloadFormat::Email => "email",
        }
    }

    /// Whether deliveries go through the SMTP relay rather than an HTTP POST.
    pub fn is_email(self) -> bool {
        self == PayloadFormat::Email
    }

    /// Whether a subscriber URL of this format is itself a credential (whoever knows a Slack
    /// or Discord incoming-webhook URL can post to the channel).
    pub fn url_is_credential(self) -> bool {
        matches!(self, PayloadFormat::Slack | PayloadFormat::Discord)
    }

    pub fn parse(field: &str, s: &str) -> Result<Self, crate::CommandError> {
        match s {
            "" | "statuspage" => Ok(PayloadFormat::Statuspage),
            "slack" => Ok(PayloadFormat::Slack),
            "discord" => Ok(PayloadFormat::Discord),
            "email" => Ok(PayloadFormat::Email),
            other => Err(crate::CommandError::invalid(
                field,
                format!("{other:?} is not a payload format (statuspage, slack, discord, email)"),
            )),
        }
    }
}

/// Whether deliveries are made to a subscriber.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum SubscriberState {
    #[default]
    Active,
    /// Turned off by an operator, or by the endpoint answering `410 Gone`.
    Disabled { at: Timestamp, reason: String },
    /// Turned off because deliveries kept failing; `statusctl subscriber enable` brings it back.
    Quarantined { at: Timestamp, reason: String },
    /// An email subscription asked for on the public page and not yet confirmed: it receives
    /// only its confirmation mail until the link in it is followed (before `expires`).
    Unconfirmed { expires: Timestamp },
    /// The relay refused the address permanently (a 5xx for the recipient): no more mail.
    Bounced { at: Timestamp, reason: String },
}

impl SubscriberState {
    pub fn as_str(&self) -> &'static str {
        match self {
            SubscriberState::Active => "active",
            SubscriberState::Disabled { .. } => "disabled",
            SubscriberState::Quarantined { .. } => "quarantined",
            SubscriberState::Unconfirmed { .. } => "unconfirmed",
            SubscriberState::Bounced { .. } => "bounced",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            SubscriberState::Active | SubscriberState::Unconfirmed { .. } => None,
            SubscriberState::Disabled { reason, .. }
            | SubscriberState::Quarantined { reason, .. }
            | SubscriberState::Bounced { reason, .. } => Some(reason),
        }
    }
}

/// A secret replaced by a rotation, still signing (beside the new one) until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiringSecret {
    pub secret: String,
    pub until: Timestamp,
}

/// A webhook subscriber. Its deliveries live in the [`crate::outbox::Outbox`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscriber {
    pub id: Id,
    pub url: String,
    /// Empty: every event. Otherwise only events touching these components (a group matches
    /// its children too).
    pub component_ids: BTreeSet<Id>,
    /// `whsec_` + base64 of 24 random bytes, chosen by the leader. Shown once at creation (and
    /// at rotation); every other read path must use [`Subscriber::redacted`].
    pub secret: String,
    pub previous_secret: Option<RetiringSecret>,
    pub format: PayloadFormat,
    /// Who to tell when the endpoint is quarantined (an email address or a name).
    pub owner: Option<String>,
    pub description: Option<String>,
    pub state: SubscriberState,
    /// Times of the failed attempts since the last success, within the quarantine window.
    pub recent_failures: Vec<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The log index of the command that added it: it receives the events recorded after
    /// (a higher index), never those before (see [`crate::outbox`]). 0 for subscribers of
    /// state formats before 3, which all events kept then were already queued for.
    #[serde(default)]
    pub since: u64,
    /// When its last confirmation or manage-link mail was queued (self-service requests are
    /// limited per recipient). Absent for subscribers that never asked on the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_at: Option<Timestamp>,
}

impl Subscriber {
    /// A copy safe to show: the secret is replaced by its prefix and a mask.
    pub fn redacted(&self) -> Subscriber {
        Subscriber {
            secret: redact_secret(&self.secret),
            previous_secret: self.previous_secret.as_ref().map(|p| RetiringSecret {
                secret: redact_secret(&p.secret),
                until: p.until,
            }),
            ..self.clone()
        }
    }

    /// The subscriber as shown to a caller: secrets masked, and the URL too when it is a
    /// credential ([`PayloadFormat::url_is_credential`]) and the caller may not see those.
    pub fn shown(&self, reveal_urls: bool) -> Subscriber {
        let mut s = self.redacted();
        if !reveal_urls && s.format.url_is_credential() {
            s.url = redact_url(&s.url);
        }
        if !reveal_urls && s.format.is_email() {
            s.url = redact_email_url(&s.url);
        }
        s
    }

    /// The address of an email subscriber.
    pub fn email(&self) -> Option<&str> {
        self.format
            .is_email()
            .then(|| self.url.strip_prefix(MAILTO))
            .flatten()
    }

    /// Where the subscription's own mails (confirmation, manage link) go: an email
    /// subscriber's address, or the contact address a webhook subscriber gave as its owner.
    pub fn mail_to(&self) -> Option<&str> {
        self.email()
            .or_else(|| self.owner.as_deref().filter(|o| o.contains('@')))
    }

    pub fn is_active(&self) -> bool {
        self.state == SubscriberState::Active
    }

    /// Whether its address is kept no longer at `at`: a subscription never confirmed whose
    /// link has expired, or an address bounced [`crate::limits::BOUNCED_RETENTION_MS`] ago.
    pub fn expired(&self, at: Timestamp) -> bool {
        match &self.state {
            SubscriberState::Unconfirmed { expires } => *expires <= at,
            SubscriberState::Bounced { at: bounced, .. } => {
                bounced.saturating_add_millis(crate::limits::BOUNCED_RETENTION_MS) <= at
            }
            _ => false,
        }
    }

    /// The secrets that sign a delivery at `now`: the current one, and the previous one while
    /// its overlap window lasts.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&str> {
        let mut out = vec![self.secret.as_str()];
        if let Some(p) = &self.previous_secret {
            if p.until > now {
                out.push(p.secret.as_str());
            }
        }
        out
    }
}

/// `whsec_abcd…` -> `whsec_****`: enough to tell that a secret exists, nothing to sign with.
/// A URL as shown to callers who may not see credentials: scheme, host and port, then `…`
/// (`https://hooks.slack.com/…`). Whatever cannot be parsed as `scheme://authority` becomes
/// `…` alone.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "…".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Credentials in the authority (`user:pass@host`) go too.
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        return "…".into();
    }
    format!("{scheme}://{host}/…")
}

/// The scheme of an email subscriber's `url`.
pub const MAILTO: &str = "mailto:";

/// `mailto:jane.doe@example.com` -> `mailto:j…@example.com`: enough for an operator to tell
/// subscribers apart, not an address to write to.
pub fn redact_email_url(url: &str) -> String {
    let address = url.strip_prefix(MAILTO).unwrap_or(url);
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{MAILTO}{first}…@{domain}")
        }
        None => format!("{MAILTO}…"),
    }
}

/// The id of the email subscriber for `address` (already normalised by
/// [`crate::limits::email_address`]): `e` + 24 hex digits of the SHA-256 of the lower-cased
/// address. One subscription per address, found without a scan, whoever adds it.
pub fn email_subscriber_id(address: &str) -> Id {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("statusmesh-email:{}", address.to_lowercase()));
    Id::parse("id", &format!("e{}", &hex::encode(digest)[..24])).expect("e + hex digits is an id")
}

/// The id of the webhook subscription a customer asks for on the public page for `url`
/// (already checked by [`crate::limits::http_url`]): `w` + 24 hex digits of its SHA-256. One
/// self-service subscription per endpoint, found without a scan.
pub fn webhook_subscriber_id(url: &str) -> Id {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("statusmesh-webhook:{url}"));
    Id::parse("id", &format!("w{}", &hex::encode(digest)[..24])).expect("w + hex digits is an id")
}

pub fn redact_secret(secret: &str) -> String {
    match secret.split_once('_') {
        Some((prefix, _)) => format!("{prefix}_****"),
        None => "****".into(),
    }
}
