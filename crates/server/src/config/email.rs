//! The `[email]` table: the SMTP relay the leader sends email notifications through.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use statusmesh_webhook::email::{MailConfig, Security};

use super::{invalid, ConfigError};

/// The relay (`[email]`). Without this table email subscribers' deliveries wait (retried on
/// the schedule) until a node that has one leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    /// Default 587 with `starttls`, 465 with `tls`, 25 with `none`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (a relay on loopback or a
    /// private network only).
    #[serde(default = "default_security")]
    pub security: String,
    /// PEM of a CA to trust for the relay, beside the public roots.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the password (first line). `STATUSMESH_EMAIL_PASSWORD` overrides it.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// `Name <address>` or an address: the sender of every message.
    pub from: String,
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Connections to the relay kept open. Default 8.
    #[serde(default = "default_connections")]
    pub connections: u32,
    /// Per-message timeout, ms. Default 30000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_security() -> String {
    "starttls".into()
}

fn default_connections() -> u32 {
    8
}

fn default_timeout_ms() -> u64 {
    30_000
}

impl EmailConfig {
    fn security(&self) -> Result<Security, ConfigError> {
        match self.security.as_str() {
            "starttls" => Ok(Security::StartTls),
            "tls" => Ok(Security::Tls),
            "none" => Ok(Security::None),
            other => Err(invalid(
                "email.security",
                format!("{other:?} is not one of starttls, tls, none"),
            )),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(invalid("email.host", "must name the relay"));
        }
        self.security()?;
        self.from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| invalid("email.from", format!("{:?}: {e}", self.from)))?;
        if let Some(r) = &self.reply_to {
            r.parse::<lettre::message::Mailbox>()
                .map_err(|e| invalid("email.reply_to", format!("{r:?}: {e}")))?;
        }
        if !(1..=256).contains(&self.connections) {
            return Err(invalid("email.connections", "must be 1..=256"));
        }
        if !(100..=300_000).contains(&self.timeout_ms) {
            return Err(invalid("email.timeout_ms", "must be 100..=300000"));
        }
        if self.password_file.is_some() && self.username.is_none() {
            return Err(invalid("email.username", "a password needs a username"));
        }
        Ok(())
    }

    /// The relay's settings, with the password and CA read (`password` from the environment
    /// wins over `password_file`).
    pub fn to_mail_config(&self, password: Option<String>) -> Result<MailConfig, ConfigError> {
        let security = self.security()?;
        let read = |key: &str, path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))
        };
        let password = match (password, &self.password_file) {
            (Some(p), _) => Some(p),
            (None, Some(path)) => {
                let text = String::from_utf8(read("email.password_file", path)?)
                    .map_err(|_| invalid("email.password_file", "is not UTF-8"))?;
                Some(text.lines().next().unwrap_or("").to_owned())
            }
            (None, None) => None,
        };
        let ca_pem = match &self.ca_cert {
            Some(path) => Some(read("email.ca_cert", path)?),
            None => None,
        };
        let port = self.port.unwrap_or(match security {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::None => 25,
        });
        Ok(MailConfig {
            host: self.host.clone(),
            port,
            security,
            ca_pem,
            username: self.username.clone(),
            password,
            from: self
                .from
                .parse()
                .map_err(|e| invalid("email.from", format!("{e}")))?,
            reply_to: self
                .reply_to
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| invalid("email.reply_to", format!("{e}")))?,
            connections: self.connections,
            timeout: Duration::from_millis(self.timeout_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(extra: &str) -> Result<EmailConfig, String> {
        let text = format!("host = \"127.0.0.1\"\nfrom = \"Status <status@example.com>\"\n{extra}");
        let c: EmailConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn bad_values_name_their_key() {
        let c = table("").unwrap();
        assert_eq!(c.to_mail_config(None).unwrap().port, 587);
        let c = table("security = \"none\"\nport = 2525").unwrap();
        assert_eq!(c.to_mail_config(Some("pw".into())).unwrap().port, 2525);
        for (extra, key) in [
            ("security = \"ssl\"", "email.security"),
            ("reply_to = \"not an address\"", "email.reply_to"),
            ("connections = 0", "email.connections"),
            ("password_file = \"/nope\"", "email.username"),
        ] {
            let e = table(extra).unwrap_err();
            assert!(e.contains(key), "{extra}: {e}");
        }
        let e = toml::from_str::<EmailConfig>("host = \"h\"\nfrom = \"nobody\"")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("email.from"), "{e}");
    }
}
