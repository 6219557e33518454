//! The node configuration: a TOML file, every key overridable by an environment variable,
//! validated at start-up with errors that name the key.
//!
//! Environment overrides: `STATUSMESH_<KEY>` for a top-level key and `STATUSMESH_<TABLE>__<KEY>`
//! for a nested one (e.g. `STATUSMESH_LISTEN__ADMIN=0.0.0.0:7001`). The value is read as TOML
//! when it parses as TOML (numbers, booleans, arrays such as `[{ id = 1, ... }]`), else as a
//! string. `STATUSMESH_ADMIN_TOKEN` is a shortcut that adds a token named `admin`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use statusmesh_cluster::TimingProfile;

mod email;
mod env;
mod limits;
mod tls;
mod validate;
mod webhooks;

pub use email::EmailConfig;
pub use limits::LimitsConfig;
pub use tls::TlsConfig;
pub use webhooks::WebhooksConfig;

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
    /// The SMTP relay for email notifications (absent: none from this node).
    #[serde(default)]
    pub email: Option<EmailConfig>,
    /// Connection caps and timeouts of the ports.
    #[serde(default)]
    pub limits: LimitsConfig,
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
        env::apply_env(&mut value, env)?;
        let config: Config = Config::deserialize(value).map_err(|e| ConfigError::Parse {
            path: origin.into(),
            message: e.message().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
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

fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
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
        // Every port, not only the admin one: a plaintext peer port on the network would take
        // proposals from anyone.
        for (var, key, addr) in [
            ("STATUSMESH_LISTEN__PEER", "listen.peer", "0.0.0.0:9001"),
            ("STATUSMESH_LISTEN__PUBLIC", "listen.public", "[::]:8081"),
        ] {
            let e = Config::from_toml("t", GOOD, env(&[(var, addr)]))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("every port listens on a loopback address")
                    && e.contains(&format!("{key} is {addr}")),
                "{e}"
            );
        }

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
