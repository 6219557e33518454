//! Command-line definitions. `statusctl --help` is generated from these doc comments.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "statusctl",
    version,
    about = "Operate a statusmesh cluster: components, incidents, maintenances, webhook subscribers and their deliveries, membership",
    after_help = "Every write carries an idempotency key (generated unless --idempotency-key is given), \
so retrying a command, or statusctl retrying it on the next endpoint, never applies it twice.\n\
Exit status: 0 success, 1 error (the message names the gRPC code), 2 usage error."
)]
pub struct Cli {
    /// Admin endpoint(s), comma-separated; the next is tried when one is unreachable.
    #[arg(
        long,
        env = "STATUSMESH_ENDPOINT",
        default_value = "http://127.0.0.1:7001",
        global = true
    )]
    pub endpoint: String,
    /// Bearer token for the admin API.
    #[arg(long, env = "STATUSMESH_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM file of the CA that signs the nodes' admin certificates (for https:// endpoints).
    #[arg(long, env = "STATUSMESH_CA_CERT", global = true)]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Client certificate (PEM) to authenticate with instead of a token, e.g. from
    /// `statusmesh certs operator`; needs --key.
    #[arg(long, env = "STATUSMESH_CLIENT_CERT", global = true, requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "STATUSMESH_CLIENT_KEY", global = true, requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// Reads: confirm with the leader's quorum first (default: this node's replica).
    #[arg(long, global = true)]
    pub linearizable: bool,
    /// Idempotency key for a write (default: a fresh random key per invocation). Keys starting
    /// `auto:`, `membership:`, `attempts:` or `restore-` are the nodes' own and are refused.
    #[arg(long, global = true)]
    pub idempotency_key: Option<String>,
    /// Request id sent with every call (default: a fresh `statusctl-…` id per invocation); the
    /// nodes log it, the leader too when the write is forwarded, and the audit record keeps it.
    /// Shown in error messages.
    #[arg(long, env = "STATUSMESH_REQUEST_ID", global = true)]
    pub request_id: Option<String>,
    /// Per-call deadline in seconds.
    #[arg(long, default_value_t = 30, global = true)]
    pub timeout: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Page settings (name, public URL, time zone).
    #[command(subcommand)]
    Page(PageCmd),
    /// Components and component groups.
    #[command(subcommand)]
    Component(ComponentCmd),
    /// Incidents and their updates.
    #[command(subcommand)]
    Incident(IncidentCmd),
    /// Scheduled maintenances.
    #[command(subcommand)]
    Maintenance(MaintenanceCmd),
    /// Webhook subscribers.
    #[command(subcommand)]
    Subscriber(SubscriberCmd),
    /// Notification events kept in the replicated outbox.
    #[command(subcommand)]
    Event(EventCmd),
    /// Webhook deliveries: replay an event, outbox status.
    #[command(subcommand)]
    Delivery(DeliveryCmd),
    /// Cluster status and membership.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Named API tokens with a role (read-only, operator, admin). Admin role needed.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The audit log: every applied operator command with who, when, via which node, what.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Who the given token or certificate authenticates as, and its role.
    Whoami,
    /// Save a consistent snapshot of the whole replicated state (admin role) to a new file;
    /// `statusmesh restore --from FILE` seeds a new cluster from it. The file holds secrets.
    Backup {
        /// Where to write it (refused if it exists).
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token; its secret is generated here (256 random bits), printed once, and only
    /// its SHA-256 is stored by the cluster.
    Create {
        /// 1 to 64 letters, digits and -_.@ (shown in the audit log).
        name: String,
        /// read-only, operator or admin.
        #[arg(long)]
        role: String,
    },
    /// Tokens: name, role, created, revoked (never secrets).
    List,
    /// Revoke a token: calls with it fail from the moment the revocation commits.
    Revoke { name: String },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Audit records, newest first.
    List {
        /// Most recent records to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only this actor (token name, cert:<name>, scheduler).
        #[arg(long)]
        actor: Option<String>,
        /// Only this action, e.g. create_incident.
        #[arg(long)]
        action: Option<String>,
        /// Only records at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PageCmd {
    /// Show the page settings and overall status.
    Get,
    /// Change page settings.
    Set {
        /// The page's name (page title, API, feeds).
        #[arg(long)]
        name: Option<String>,
        /// The public address customers use (links in feeds and the JSON API).
        #[arg(long)]
        url: Option<String>,
        /// IANA time zone, e.g. Europe/Paris.
        #[arg(long)]
        time_zone: Option<String>,
        /// Whether public output uses under_maintenance / maintenance (false: strict clients).
        #[arg(long)]
        emit_maintenance_status: Option<bool>,
        /// Whether customers may subscribe themselves by email on the public page (double
        /// opt-in; needs an [email] relay in the nodes' configuration).
        #[arg(long)]
        email_subscriptions: Option<bool>,
        /// Whether customers may subscribe a webhook endpoint on the public page (confirmed by
        /// a mail to the contact address they give; needs an [email] relay).
        #[arg(long)]
        webhook_subscriptions: Option<bool>,
        /// Plain text at the top of every subscriber mail ("" removes it).
        #[arg(long)]
        mail_header: Option<String>,
        /// Plain text at the end of every subscriber mail, above its subscription links (""
        /// removes it).
        #[arg(long)]
        mail_footer: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ComponentCmd {
    /// Create a component (or a group with --group).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Put the component in this group.
        #[arg(long)]
        group_id: Option<String>,
        /// Create a group instead of a component.
        #[arg(long)]
        group: bool,
        #[arg(long)]
        position: Option<u32>,
        /// operational, degraded_performance, partial_outage, major_outage, under_maintenance.
        #[arg(long)]
        status: Option<String>,
        /// Show an uptime bar for it on the public page.
        #[arg(long)]
        showcase: bool,
        #[arg(long)]
        only_show_if_degraded: bool,
    },
    /// List components in display order.
    List,
    /// Show one component.
    Get { id: String },
    /// Change a component's fields.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// An empty string clears the description.
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        position: Option<u32>,
        /// An empty string moves it out of its group.
        #[arg(long)]
        group_id: Option<String>,
        #[arg(long)]
        showcase: Option<bool>,
        #[arg(long)]
        only_show_if_degraded: Option<bool>,
    },
    /// Set a component's status.
    SetStatus { id: String, status: String },
    /// Delete a component (a group must be empty).
    Delete { id: String },
}

#[derive(Args, Debug)]
pub struct ComponentChanges {
    /// A component's new status, as ID=STATUS (repeatable).
    #[arg(long = "component", value_name = "ID=STATUS")]
    pub components: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum IncidentCmd {
    /// Open an incident with its first update.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        body: String,
        /// investigating (default), identified, monitoring, resolved.
        #[arg(long)]
        status: Option<String>,
        /// none, minor (default), major, critical.
        #[arg(long)]
        impact: Option<String>,
        /// RFC 3339 time the incident started (default: now).
        #[arg(long)]
        started_at: Option<String>,
        #[command(flatten)]
        changes: ComponentChanges,
    },
    /// Post an update (optionally changing status, impact, name, components).
    Update {
        id: String,
        #[arg(long)]
        body: String,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        impact: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        changes: ComponentChanges,
    },
    /// Resolve an incident; its components return to operational unless --keep-component-status.
    Resolve {
        id: String,
        #[arg(long)]
        body: Option<String>,
        #[arg(long)]
        keep_component_status: bool,
    },
    /// Publish a postmortem on a resolved incident.
    Postmortem {
        id: String,
        #[arg(long)]
        body: String,
    },
    /// List incidents, newest first.
    List {
        #[arg(long)]
        unresolved: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show an incident with its timeline.
    Get { id: String },
}

#[derive(Subcommand, Debug)]
pub enum MaintenanceCmd {
    /// Schedule a maintenance window.
    Schedule {
        #[arg(long)]
        name: String,
        #[arg(long)]
        body: String,
        /// RFC 3339 start of the window.
        #[arg(long)]
        from: String,
        /// RFC 3339 end of the window.
        #[arg(long)]
        until: String,
        /// An affected component (repeatable).
        #[arg(long = "component", value_name = "ID")]
        components: Vec<String>,
        /// Start and complete by hand instead of at the window's edges.
        #[arg(long)]
        manual: bool,
    },
    /// List maintenances, soonest first.
    List,
    /// Show a maintenance.
    Get { id: String },
    /// Change a maintenance or move its status (in_progress, verifying, completed) with --body.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// Replace the affected components (repeatable).
        #[arg(long = "component", value_name = "ID")]
        components: Option<Vec<String>>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        body: Option<String>,
    },
    /// Cancel a maintenance.
    Cancel {
        id: String,
        #[arg(long)]
        body: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SubscriberCmd {
    /// Add a webhook or email subscriber; a webhook's signing secret is shown once, in this
    /// reply. An email subscriber (--url mailto:ADDRESS) is mailed through the nodes' [email]
    /// relay, with no confirmation (the operator vouches for the address).
    Add {
        /// The endpoint deliveries are POSTed to (http:// or https://; must not reach private
        /// or loopback addresses unless the nodes allow it), or mailto:ADDRESS.
        #[arg(long)]
        url: String,
        /// Only events touching this component (repeatable; a group covers its components;
        /// default: every event).
        #[arg(long = "component", value_name = "ID")]
        components: Vec<String>,
        /// Body format: statuspage (the Statuspage envelope; the default), slack, discord, or
        /// email (the default for a mailto: URL).
        #[arg(long, default_value = "")]
        format: String,
        /// Who to tell when the endpoint is quarantined (e-mail address or name).
        #[arg(long)]
        owner: Option<String>,
        /// A note for operators.
        #[arg(long)]
        description: Option<String>,
    },
    /// List subscribers in subscriber order: state, pending deliveries (secrets masked).
    /// Every page by default; with --page-size or --page-token one page, and the token of
    /// the next (a filtered page may be short and still have a next).
    List {
        /// Subscribers per page (at most 10000).
        #[arg(long)]
        page_size: Option<u32>,
        /// Start after this subscriber (the token a previous page printed).
        #[arg(long)]
        page_token: Option<String>,
        /// Only this kind: email, webhook (every HTTP kind), statuspage, slack or discord.
        #[arg(long)]
        kind: Option<String>,
        /// Only this state: active, unconfirmed, bounced, disabled or quarantined.
        #[arg(long)]
        state: Option<String>,
    },
    /// Add many subscribers from a CSV file (a page moving from another provider), in
    /// either layout. statusmesh's: a header row naming the columns url (required), format,
    /// components (ids separated by ';'), description, owner, secret (a whsec_ secret the
    /// receiver already verifies; empty: a new one, see rotate-secret). Statuspage's
    /// (recognised by a first field type, email or webhook): type, the address or endpoint,
    /// skip-confirmation (yes: the addresses opted in where they came from) or a webhook's
    /// contact address, then component names, one per column. Committed in chunks; if it
    /// stops, the error names the row, and running it again with the same
    /// --idempotency-key continues where it stopped.
    Import {
        /// The CSV file ('-' for standard input).
        #[arg(long = "csv", value_name = "FILE")]
        csv: Option<std::path::PathBuf>,
        /// The CSV file, as a plain argument (the same as --csv).
        #[arg(
            value_name = "FILE",
            conflicts_with = "csv",
            required_unless_present = "csv"
        )]
        file: Option<std::path::PathBuf>,
    },
    /// Write the subscribers as CSV to standard output: statusmesh's layout (what import
    /// reads back; secrets are never exported, so imported webhooks get new ones), or
    /// Statuspage's with --statuspage (chat subscribers have no row there). Email addresses
    /// and chat URLs are shown to admins only, so this needs the admin role.
    Export {
        /// Statuspage's import layout instead of statusmesh's.
        #[arg(long)]
        statuspage: bool,
        /// Only this kind (as for list).
        #[arg(long)]
        kind: Option<String>,
        /// Only this state (as for list).
        #[arg(long)]
        state: Option<String>,
    },
    /// Show a subscriber (secret masked).
    Get { id: String },
    /// Remove a subscriber (its pending deliveries are dropped).
    Remove { id: String },
    /// Enable a disabled or quarantined subscriber.
    Enable {
        id: String,
        /// Also queue again every matching event since this time (RFC 3339, e.g.
        /// 2026-11-21T10:00:00Z), with their original webhook-id.
        #[arg(long, value_name = "TIME")]
        replay_since: Option<String>,
    },
    /// Disable a subscriber (its pending deliveries are marked failed).
    Disable { id: String },
    /// Replace the signing secret; the new one is shown once. The old secret keeps signing
    /// beside it for the overlap, so receivers can switch without losing a delivery.
    RotateSecret {
        id: String,
        /// How long the old secret keeps signing: e.g. 24h, 30m, 90s, 0 (default 24h).
        #[arg(long, default_value = "24h")]
        overlap: String,
    },
    /// Recent delivery attempts (time, HTTP status, duration, response, error) and the
    /// deliveries still pending or failed.
    Deliveries {
        id: String,
        /// Most recent attempts to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Send a signed "ping" event to this subscriber.
    Test { id: String },
}

#[derive(Subcommand, Debug)]
pub enum EventCmd {
    /// Events, newest first: webhook id, kind, time, recipients, pending and failed deliveries.
    List {
        /// Most recent events to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only this kind, e.g. incident.updated or subscriber.quarantined.
        #[arg(long)]
        kind: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeliveryCmd {
    /// Queue an event again (same webhook-id) for one subscriber or every active subscriber
    /// it matches.
    Replay {
        /// The event's webhook id (msg_...), from `statusctl event list`.
        event_id: String,
        /// Only to this subscriber.
        #[arg(long)]
        subscriber: Option<String>,
    },
    /// Outbox counts (pending, failed, delivered) and this node's dispatcher.
    Status,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Show this endpoint's view: role, leader, term, indexes, digest, members.
    Status,
    /// Add a node as a learner (it catches up, then `promote` makes it a voter).
    AddNode {
        #[arg(long)]
        id: u64,
        #[arg(long)]
        region: String,
        #[arg(long)]
        peer_addr: String,
        #[arg(long)]
        admin_addr: String,
        #[arg(long, default_value = "")]
        public_addr: String,
    },
    /// Make a learner a voter.
    Promote { id: u64 },
    /// Remove a node from the cluster.
    RemoveNode { id: u64 },
}
