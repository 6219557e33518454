//! The checks a configuration must pass before anything starts: each names the key that is
//! wrong and why, so a bad file fails at start-up rather than at the first request.

use std::collections::BTreeSet;

use super::{invalid, Config, ConfigError};

impl Config {
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
        if let Some(email) = &self.email {
            email.validate()?;
        }
        self.limits.validate()?;
        match (&self.tls, self.insecure_plaintext) {
            (Some(_), true) => {
                return Err(invalid(
                    "insecure_plaintext",
                    "is set together with [tls]: choose one",
                ))
            }
            (None, false) => return Err(invalid(
                "tls",
                "peer and admin traffic need certificates: add a [tls] table (ca_cert, cert, key; \
                     `statusmesh certs` makes them), or set insecure_plaintext = true for a \
                     loopback-only dev cluster",
            )),
            (None, true) => {
                // Without TLS the peer port cannot tell one node from another (the sender
                // check needs certificates): every port must be unreachable from the network.
                let listeners = [
                    ("listen.peer", self.listen.peer),
                    ("listen.admin", self.listen.admin),
                    ("listen.public", self.listen.public),
                ];
                if let Some((key, addr)) = listeners.iter().find(|(_, a)| !a.ip().is_loopback()) {
                    return Err(invalid(
                        "insecure_plaintext",
                        format!(
                            "plaintext is only allowed when every port listens on a loopback address, and {key} is {addr}"
                        ),
                    ));
                }
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
}

fn looks_like_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}
