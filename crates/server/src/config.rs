//! The node configuration: a TOML file, every key overridable by an environment variable,
//! validated at start-up with errors that name the key.
//!
//! Environment overrides: `STATUSMESH_<KEY>` for a top-level key and `STATUSMESH_<TABLE>__<KEY>`
//! for a nested one (e.g. `STATUSMESH_LISTEN__ADMIN=0.0.0.0:7001`). The value is read as TOML
//! when it parses as TOML (numbers, booleans, arrays such as `[{ id = 1, ... }]`), else as a
//! string. `STATUSMESH_ADMIN_TOKEN` is a shortcut that adds a token named `admin`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use statusmesh_cluster::TimingProfile;

const ENV_PREFIX: &str = "STATUSMESH_";
/// Env vars with the prefix that are not config keys (used by statusctl, or shortcuts).
/// `STATUSMESH_*` variables that are not config keys: the node's own flags (`CONFIG`, the log
/// settings) and statusctl's, which an operator's shell may export too.
const ENV_NOT_KEYS: &[&str] = &[
    "CONFIG",
    "LOG",
    "LOG_FORMAT",
    "ENDPOINT",
    "TOKEN",
    "CA_CERT",
    "CLIENT_CERT",
    "CLIENT_KEY",
    "REQUEST_ID",
    "ADMIN_TOKEN",
];

/// A member of the initial cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// Node id (non-zero, unique).
    pub id: u64,
    /// Region or data-center name.
    pub region: String,
    /// Raft peer address others dial (`host:port`).
    pub peer_addr: String,
    /// Admin gRPC address (`host:port`).
    pub admin_addr: String,
    /// Public HTTP address (`host:port`).
    #[serde(default)]
    pub public_addr: String,
}

/// An operator API token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Shown in logs and the audit trail.
    pub name: String,
    /// The bearer token (at least 16 characters).
    pub token: String,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Where this node listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Raft peer gRPC (node-to-node traffic only).
    pub peer: SocketAddr,
    /// Admin gRPC (operators, statusctl).
    pub admin: SocketAddr,
    /// Public HTTP (status page, health checks).
    pub public: SocketAddr,
}

/// TLS (`[tls]`): where this node's certificates and keys are. Files are re-read when they
/// change (checked every 2 s) or on SIGHUP; connections made afterwards use the new ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM of the cluster CA. Peers must present certificates it signed.
    pub ca_cert: PathBuf,
    /// This node's certificate (must name `node-<node_id>.statusmesh`; `statusmesh certs node`
    /// issues one). Used for peer traffic both ways, and for the admin port unless
    /// `admin_cert` is set.
    pub cert: PathBuf,
    /// The private key of `cert`.
    pub key: PathBuf,
    /// Admin port server certificate and key, if not the node certificate.
    #[serde(default)]
    pub admin_cert: Option<PathBuf>,
    #[serde(default)]
    pub admin_key: Option<PathBuf>,
    /// Accept operator client certificates signed by this CA on the admin port (the subject
    /// common name is the operator, the organizational unit the role). Tokens work either way.
    #[serde(default)]
    pub operator_ca: Option<PathBuf>,
    /// Serve the public port over HTTPS with this certificate and key (leave unset behind a
    /// TLS-terminating proxy or CDN).
    #[serde(default)]
    pub public_cert: Option<PathBuf>,
    #[serde(default)]
    pub public_key: Option<PathBuf>,
}

impl TlsConfig {
    pub fn files(&self) -> statusmesh_tls::TlsFiles {
        statusmesh_tls::TlsFiles {
            ca_cert: self.ca_cert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            admin_cert: self.admin_cert.clone(),
            admin_key: self.admin_key.clone(),
            operator_ca: self.operator_ca.clone(),
            public_cert: self.public_cert.clone(),
            public_key: self.public_key.clone(),
        }
    }
}

/// Webhook delivery (`[webhooks]`). Only the leader delivers, with its own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Allow subscriber URLs that reach loopback (tests, the demo). Default false.
    pub allow_loopback: bool,
    /// Allow private ranges (RFC 1918, unique-local IPv6, CGNAT). Default false. Cloud
    /// metadata, link-local, multicast and IPv4-embedded IPv6 forms are never allowed.
    pub allow_private: bool,
    /// Refuse plain http:// subscriber URLs. Default false.
    pub https_only: bool,
    /// Per-request timeout, ms. Default 30000.
    pub request_timeout_ms: u64,
    /// Delay before each attempt, in seconds; the first is normally 0. Default (Svix):
    /// [0, 5, 300, 1800, 7200, 18000, 36000, 36000].
    pub retry_schedule_s: Vec<u64>,
    /// Random spread of each delay, in percent. Default 20.
    pub jitter_percent: u32,
    /// `Retry-After` is honoured up to this many seconds. Default 3600.
    pub retry_after_max_s: u64,
    /// After a 429 or a timeout the next attempt waits at least this long, s. Default 10.
    pub throttle_floor_s: u64,
    /// Requests in flight on the leader. Default 256.
    pub max_in_flight: usize,
    /// Requests in flight to one subscriber's endpoint. Default 2.
    pub per_endpoint: usize,
    /// Quarantine a subscriber after this many failed attempts in a row... Default 10.
    pub quarantine_failures: u32,
    /// ...within this window, s. Default 3600.
    pub quarantine_window_s: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_loopback: false,
            allow_private: false,
            https_only: false,
            request_timeout_ms: 30_000,
            retry_schedule_s: vec![0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000],
            jitter_percent: 20,
            retry_after_max_s: 3_600,
            throttle_floor_s: 10,
            max_in_flight: 256,
            per_endpoint: 2,
            quarantine_failures: 10,
            quarantine_window_s: 3_600,
        }
    }
}

impl WebhooksConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("webhooks.{k}");
        if !(100..=120_000).contains(&self.request_timeout_ms) {
            return Err(invalid(
                &key("request_timeout_ms"),
                format!("{} is outside 100..=120000", self.request_timeout_ms),
            ));
        }
        if self.retry_schedule_s.is_empty() || self.retry_schedule_s.len() > 20 {
            return Err(invalid(
                &key("retry_schedule_s"),
                "needs 1 to 20 delays (the first is usually 0)",
            ));
        }
        if let Some(d) = self.retry_schedule_s.iter().find(|d| **d > 7 * 86_400) {
            return Err(invalid(
                &key("retry_schedule_s"),
                format!("{d} s is longer than a week"),
            ));
        }
        if self.jitter_percent > 50 {
            return Err(invalid(&key("jitter_percent"), "at most 50"));
        }
        if !(1..=10_000).contains(&self.max_in_flight) {
            return Err(invalid(&key("max_in_flight"), "must be 1..=10000"));
        }
        if !(1..=64).contains(&self.per_endpoint) {
            return Err(invalid(&key("per_endpoint"), "must be 1..=64"));
        }
        if self.quarantine_failures == 0 {
            return Err(invalid(&key("quarantine_failures"), "must be at least 1"));
        }
        Ok(())
    }

    /// The dispatcher's settings.
    pub fn to_webhook_config(&self) -> statusmesh_webhook::WebhookConfig {
        use statusmesh_model::outbox::QuarantinePolicy;
        statusmesh_webhook::WebhookConfig {
            targets: statusmesh_webhook::TargetPolicy {
                allow_loopback: self.allow_loopback,
                allow_private: self.allow_private,
                https_only: self.https_only,
            },
            retry_schedule: self
                .retry_schedule_s
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            jitter: f64::from(self.jitter_percent) / 100.0,
            retry_after_max: Duration::from_secs(self.retry_after_max_s),
            throttle_floor: Duration::from_secs(self.throttle_floor_s),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            max_in_flight: self.max_in_flight,
            per_endpoint: self.per_endpoint,
            quarantine: QuarantinePolicy {
                failures: self.quarantine_failures,
                window_ms: (self.quarantine_window_s as i64).saturating_mul(1000),
            },
            ..statusmesh_webhook::WebhookConfig::default()
        }
    }
}

/// The whole node configuration. See `deploy/` and the README for examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node's id (non-zero). A data directory belongs to one id forever.
    pub node_id: u64,
    /// This node's region.
    pub region: String,
    /// Where RocksDB keeps this node's log, vote and snapshots.
    pub data_dir: PathBuf,
    pub listen: ListenConfig,
    /// `lan` (tests, demo, one data center) or `wan` (regions apart). Default `lan`.
    #[serde(default)]
    pub timing_profile: TimingProfile,
    /// Snapshot (and purge the log behind it) every this many entries. Default 1000.
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// Longest time an admin write may take before it fails with "no quorum", in ms.
    /// Default: 10000 with `lan`, 30000 with `wan`.
    #[serde(default)]
    pub write_timeout_ms: Option<u64>,
    /// Public responses say the node is stale after this long without hearing from a leader,
    /// in ms. Default: 5000 with `lan`, 20000 with `wan`.
    #[serde(default)]
    pub stale_after_ms: Option<u64>,
    /// The initial cluster. Nodes listed here initialise the cluster once, together; a node
    /// not listed waits to be added with `statusctl cluster add-node`.
    #[serde(default)]
    pub initial_members: Vec<MemberConfig>,
    /// Operator tokens (at least one).
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    #[serde(default)]
    pub webhooks: WebhooksConfig,
    /// Source IP for connections to peers (multi-homed hosts). Default: chosen by the OS.
    #[serde(default)]
    pub peer_source_ip: Option<std::net::IpAddr>,
    /// Certificates for every port. Required unless `insecure_plaintext` is set.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Explicit insecure dev mode: peer and admin traffic in plaintext. Only accepted when the
    /// admin port listens on a loopback address. Default false.
    #[serde(default)]
    pub insecure_plaintext: bool,
}

fn default_snapshot_every() -> u64 {
    1000
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

impl Config {
    /// Loads `path`, applies environment overrides from `env`, and validates.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_toml(&shown, &text, env)
    }

    pub fn from_toml(
        origin: &str,
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut value: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: origin.into(),
                    message: e.message().to_owned() + &span_hint(text, e.span()),
                })?;
        apply_env(&mut value, env)?;
        let config: Config = Config::deserialize(value).map_err(|e| ConfigError::Parse {
            path: origin.into(),
            message: e.message().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id == 0 {
            return Err(invalid("node_id", "must be a positive integer"));
        }
        if self.region.trim().is_empty() {
            return Err(invalid("region", "must not be empty"));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if self.snapshot_every < 10 {
            return Err(invalid(
                "snapshot_every",
                format!("{} is too small (at least 10)", self.snapshot_every),
            ));
        }
        if let Some(ms) = self.write_timeout_ms {
            if !(500..=600_000).contains(&ms) {
                return Err(invalid(
                    "write_timeout_ms",
                    format!("{ms} is outside 500..=600000"),
                ));
            }
        }
        if let Some(ms) = self.stale_after_ms {
            if !(100..=86_400_000).contains(&ms) {
                return Err(invalid(
                    "stale_after_ms",
                    format!("{ms} is outside 100..=86400000"),
                ));
            }
        }
        let l = &self.listen;
        if l.peer == l.admin || l.peer == l.public || l.admin == l.public {
            return Err(invalid(
                "listen",
                "peer, admin and public must be different addresses",
            ));
        }
        let mut ids = BTreeSet::new();
        for (i, m) in self.initial_members.iter().enumerate() {
            let key = |k: &str| format!("initial_members[{i}].{k}");
            if m.id == 0 {
                return Err(invalid(&key("id"), "must be a positive integer"));
            }
            if !ids.insert(m.id) {
                return Err(invalid(
                    &key("id"),
                    format!("node id {} is listed twice", m.id),
                ));
            }
            if m.region.trim().is_empty() {
                return Err(invalid(&key("region"), "must not be empty"));
            }
            for (k, v) in [("peer_addr", &m.peer_addr), ("admin_addr", &m.admin_addr)] {
                if !looks_like_host_port(v) {
                    return Err(invalid(&key(k), format!("{v:?} is not host:port")));
                }
            }
            if !m.public_addr.is_empty() && !looks_like_host_port(&m.public_addr) {
                return Err(invalid(
                    &key("public_addr"),
                    format!("{:?} is not host:port", m.public_addr),
                ));
            }
            if m.id == self.node_id && m.region != self.region {
                return Err(invalid(
                    &key("region"),
                    format!(
                        "this node ({}) is in region {:?} but is listed in {:?}",
                        self.node_id, self.region, m.region
                    ),
                ));
            }
        }
        if self.tokens.is_empty() {
            return Err(invalid(
                "tokens",
                "at least one operator token is needed (or set STATUSMESH_ADMIN_TOKEN)",
            ));
        }
        self.webhooks.validate()?;
        match (&self.tls, self.insecure_plaintext) {
            (Some(_), true) => {
                return Err(invalid(
                    "insecure_plaintext",
                    "is set together with [tls]: choose one",
                ))
            }
            (None, false) => {
                return Err(invalid(
                    "tls",
                    "peer and admin traffic need certificates: add a [tls] table (ca_cert, cert, key; \
                     `statusmesh certs` makes them), or set insecure_plaintext = true for a \
                     loopback-only dev cluster",
                ))
            }
            (None, true) if !self.listen.admin.ip().is_loopback() => {
                return Err(invalid(
                    "insecure_plaintext",
                    format!(
                        "plaintext admin traffic is only allowed on a loopback address, and listen.admin is {}",
                        self.listen.admin
                    ),
                ))
            }
            _ => {}
        }
        if let Some(t) = &self.tls {
            for (key, a, b) in [
                ("admin", &t.admin_cert, &t.admin_key),
                ("public", &t.public_cert, &t.public_key),
            ] {
                if a.is_some() != b.is_some() {
                    return Err(invalid(
                        &format!("tls.{key}_cert"),
                        format!(
                            "tls.{key}_cert and tls.{key}_key go together: set both or neither"
                        ),
                    ));
                }
            }
        }
        let mut names = BTreeSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(invalid(&format!("tokens[{i}].name"), "must not be empty"));
            }
            if !names.insert(&t.name) {
                return Err(invalid(
                    &format!("tokens[{i}].name"),
                    format!("{:?} is used twice", t.name),
                ));
            }
            if t.token.len() < 16 || !t.token.bytes().all(|b| b.is_ascii_graphic()) {
                // Never echo the token itself.
                return Err(invalid(
                    &format!("tokens[{i}].token"),
                    "must be at least 16 printable characters",
                ));
            }
        }
        Ok(())
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms.unwrap_or(match self.timing_profile {
            TimingProfile::Lan => 10_000,
            TimingProfile::Wan => 30_000,
        }))
    }

    pub fn stale_after(&self) -> Duration {
        Duration::from_millis(self.stale_after_ms.unwrap_or(match self.timing_profile {
            TimingProfile::Lan => 5_000,
            TimingProfile::Wan => 20_000,
        }))
    }

    /// Whether this node is one of the initial members (and so initialises the cluster).
    pub fn is_initial_member(&self) -> bool {
        self.initial_members.iter().any(|m| m.id == self.node_id)
    }
}

fn looks_like_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let name = &var[ENV_PREFIX.len()..];
        if name == "ADMIN_TOKEN" {
            let tokens = table
                .entry("tokens")
                .or_insert_with(|| toml::Value::Array(vec![]));
            let arr = tokens.as_array_mut().ok_or_else(|| ConfigError::Env {
                var: var.clone(),
                message: "`tokens` in the file is not an array".into(),
            })?;
            arr.retain(|t| t.get("name").and_then(|n| n.as_str()) != Some("admin"));
            let mut t = toml::Table::new();
            t.insert("name".into(), "admin".into());
            t.insert("token".into(), raw.clone().into());
            arr.push(toml::Value::Table(t));
            continue;
        }
        if ENV_NOT_KEYS.contains(&name) {
            continue;
        }
        let path: Vec<String> = name.split("__").map(str::to_ascii_lowercase).collect();
        let value = parse_env_value(&raw);
        let mut cursor = &mut *table;
        for seg in &path[..path.len() - 1] {
            let entry = cursor
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cursor = entry.as_table_mut().ok_or_else(|| ConfigError::Env {
                var: var.clone(),
                message: format!("`{seg}` is not a table"),
            })?;
        }
        if let Some(last) = path.last() {
            cursor.insert(last.clone(), value);
        }
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| raw.into()),
        Err(_) => toml::Value::String(raw.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
node_id = 1
region = "paris"
data_dir = "/tmp/x"
timing_profile = "lan"
insecure_plaintext = true
[listen]
peer = "127.0.0.1:9001"
admin = "127.0.0.1:7001"
public = "127.0.0.1:8081"
[[initial_members]]
id = 1
region = "paris"
peer_addr = "127.0.0.1:9001"
admin_addr = "127.0.0.1:7001"
[[tokens]]
name = "ops"
token = "0123456789abcdef0123"
"#;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn loads_and_applies_env_overrides() {
        let c = Config::from_toml(
            "t",
            GOOD,
            env(&[
                ("STATUSMESH_LISTEN__ADMIN", "127.0.0.1:7101"),
                ("STATUSMESH_TIMING_PROFILE", "wan"),
                ("STATUSMESH_SNAPSHOT_EVERY", "50"),
                ("STATUSMESH_ADMIN_TOKEN", "env-token-0123456789"),
                ("STATUSMESH_ENDPOINT", "ignored"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.admin.port(), 7101);
        assert_eq!(c.timing_profile, TimingProfile::Wan);
        assert_eq!(c.snapshot_every, 50);
        assert_eq!(c.tokens.len(), 2);
        assert_eq!(c.write_timeout(), Duration::from_secs(30));
        assert!(c.is_initial_member());
    }

    #[test]
    fn deploy_examples_are_valid() {
        // At run time (cargo test sets it): a compiled test must not remember its checkout path.
        let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
        let dir = Path::new(&manifest).join("../../deploy/examples");
        for region in ["paris", "montreal", "singapore"] {
            let path = dir.join(format!("{region}.toml"));
            let c = Config::load(
                &path,
                env(&[("STATUSMESH_ADMIN_TOKEN", "example-token-0123456789")]),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(c.region, region);
            assert_eq!(c.timing_profile, TimingProfile::Wan);
            assert!(c.is_initial_member());
            assert_eq!(c.initial_members.len(), 3);
        }
    }

    #[test]
    fn errors_name_the_key() {
        let bad = GOOD.replace("node_id = 1", "node_id = 0");
        let e = Config::from_toml("t", &bad, vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`node_id`"), "{e}");

        let bad = GOOD.replace("timing_profile = \"lan\"", "timing_profile = \"moon\"");
        let e = Config::from_toml("t", &bad, vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("moon"), "{e}");

        let bad = GOOD.replace(
            "region = \"paris\"\ndata_dir",
            "regoin = \"paris\"\ndata_dir",
        );
        let e = Config::from_toml("t", &bad, vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("regoin"), "{e}");

        let e = Config::from_toml("t", GOOD, env(&[("STATUSMESH_LISTEN__PEER", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("socket address") || e.contains("peer"), "{e}");

        let bad = GOOD.replace("0123456789abcdef0123", "short");
        let e = Config::from_toml("t", &bad, vec![])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tokens[0].token") && !e.contains("short\""),
            "{e}"
        );

        let bad = GOOD.replace("peer_addr = \"127.0.0.1:9001\"", "peer_addr = \"nohost\"");
        let e = Config::from_toml("t", &bad, vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("initial_members[0].peer_addr"), "{e}");
    }

    #[test]
    fn plaintext_is_explicit_and_loopback_only() {
        let no_tls = GOOD.replace("insecure_plaintext = true\n", "");
        let e = Config::from_toml("t", &no_tls, vec![])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`tls`") && e.contains("insecure_plaintext"),
            "{e}"
        );

        let e = Config::from_toml(
            "t",
            GOOD,
            env(&[("STATUSMESH_LISTEN__ADMIN", "0.0.0.0:7001")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("loopback") && e.contains("0.0.0.0:7001"), "{e}");

        let with_tls = format!(
            "{no_tls}\n[tls]\nca_cert = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n.key\"\npublic_cert = \"p.pem\"\n"
        );
        let e = Config::from_toml("t", &with_tls, vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls.public_cert") && e.contains("both"), "{e}");
        let ok = with_tls.replace("public_cert = \"p.pem\"\n", "");
        let c = Config::from_toml(
            "t",
            &ok,
            env(&[("STATUSMESH_LISTEN__ADMIN", "0.0.0.0:7001")]),
        )
        .unwrap();
        assert!(c.tls.is_some());
    }
}
