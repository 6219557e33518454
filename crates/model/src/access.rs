//! Who may do what, and what they did: named API tokens with a role, and the audit log.
//!
//! Tokens are stored only as SHA-256 hashes of the bearer secret (the secret is a random
//! 256-bit value, so a plain hash is enough; it is never stored, logged or replicated). The
//! audit log records every applied operator command with who, when, through which node and what
//! changed, with secrets redacted; it keeps the latest [`AUDIT_KEEP`] records.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::command::Proposal;
use crate::error::{CommandError, EntityKind};
use crate::ids::Timestamp;

/// Audit records kept (the oldest go first).
pub const AUDIT_KEEP: usize = 10_000;
/// Named tokens (active or revoked) kept.
pub const MAX_TOKENS: usize = 1_000;
pub const MAX_TOKEN_NAME_CHARS: usize = 64;

/// What a caller may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads: lists, status, audit.
    ReadOnly,
    /// Plus every write to the page: components, incidents, maintenances, subscribers.
    Operator,
    /// Plus tokens and cluster membership.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "read-only",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<Role, CommandError> {
        match s {
            "read-only" | "readonly" | "read_only" => Ok(Role::ReadOnly),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(CommandError::invalid(
                field,
                format!("{other:?} is not a role (read-only, operator, admin)"),
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named API token. `hash` is the lowercase hex SHA-256 of the bearer secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    pub hash: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl ApiToken {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// Checks a token name: 1 to 64 of letters, digits and `-_.@`.
pub fn check_token_name(field: &str, name: &str) -> Result<(), CommandError> {
    if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME_CHARS {
        return Err(CommandError::invalid(
            field,
            format!("must be 1 to {MAX_TOKEN_NAME_CHARS} characters"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.@".contains(*c)))
    {
        return Err(CommandError::invalid(
            field,
            format!("{c:?} is not allowed (letters, digits and -_.@)"),
        ));
    }
    Ok(())
}

/// Bounds of a named token's secret (chosen by the client; only its hash is stored).
pub const MIN_TOKEN_SECRET_BYTES: usize = 32;
pub const MAX_TOKEN_SECRET_BYTES: usize = 256;

/// Checks a token secret: 32 to 256 printable ASCII characters. The error never echoes it.
pub fn check_token_secret(field: &str, secret: &str) -> Result<(), CommandError> {
    let len = secret.len();
    if !(MIN_TOKEN_SECRET_BYTES..=MAX_TOKEN_SECRET_BYTES).contains(&len)
        || !secret.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(CommandError::invalid(
            field,
            format!(
                "must be {MIN_TOKEN_SECRET_BYTES} to {MAX_TOKEN_SECRET_BYTES} printable ASCII characters"
            ),
        ));
    }
    Ok(())
}

/// The SHA-256 (lowercase hex) a named token's secret is stored and matched as.
pub fn token_hash(secret: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// The named tokens, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub by_name: BTreeMap<String, ApiToken>,
}

impl Tokens {
    /// The active token whose hash is `hash`.
    pub fn find_by_hash(&self, hash: &str) -> Option<&ApiToken> {
        self.by_name
            .values()
            .find(|t| t.is_active() && t.hash == hash)
    }

    pub(crate) fn create(
        &mut self,
        at: Timestamp,
        name: &str,
        role: Role,
        hash: &str,
    ) -> Result<(), CommandError> {
        check_token_name("name", name)?;
        if hash.len() != 64
            || !hash
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(CommandError::invalid(
                "hash",
                "must be 64 lowercase hex digits (SHA-256 of the token)",
            ));
        }
        if self.by_name.get(name).is_some_and(ApiToken::is_active) {
            return Err(CommandError::AlreadyExists {
                kind: EntityKind::Token,
                id: name.to_owned(),
            });
        }
        if self.by_name.values().any(|t| t.hash == hash) {
            return Err(CommandError::precondition(
                "this token secret was already used; generate a new one",
            ));
        }
        if !self.by_name.contains_key(name) && self.by_name.len() >= MAX_TOKENS {
            return Err(CommandError::precondition(format!(
                "the limit of {MAX_TOKENS} tokens is reached; revoked tokens count until they are replaced by name"
            )));
        }
        self.by_name.insert(
            name.to_owned(),
            ApiToken {
                name: name.to_owned(),
                role,
                hash: hash.to_owned(),
                created_at: at,
                revoked_at: None,
            },
        );
        Ok(())
    }

    pub(crate) fn revoke(&mut self, at: Timestamp, name: &str) -> Result<(), CommandError> {
        match self.by_name.get_mut(name) {
            Some(t) if t.is_active() => {
                t.revoked_at = Some(at);
                Ok(())
            }
            _ => Err(CommandError::not_found(EntityKind::Token, name)),
        }
    }
}

/// One applied operator command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Increases by one per record, never reused.
    pub seq: u64,
    /// The log index of the command.
    pub index: u64,
    pub at: Timestamp,
    /// Token name, `cert:<subject>` for a client certificate, or the internal actor
    /// (`scheduler`).
    pub actor: String,
    /// The node the request arrived on.
    pub via_node: u64,
    /// The operator's request id, when the write had one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// The command, e.g. `CreateIncident`.
    pub action: String,
    /// The entity it addressed, when it has one.
    pub target: Option<String>,
    /// The command's fields as JSON, secrets replaced by `[redacted]`.
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLog {
    pub records: VecDeque<AuditRecord>,
    pub next_seq: u64,
}

/// Field names whose values never reach the audit log.
const SECRET_FIELDS: &[&str] = &["secret", "hash", "token", "previous_secret"];

fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_FIELDS.contains(&k.as_str()) {
                    *v = serde_json::Value::String("[redacted]".into());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

impl AuditLog {
    pub(crate) fn record(&mut self, index: u64, at: Timestamp, proposal: &Proposal) {
        let command = &proposal.command;
        let mut fields = command.audit_fields();
        redact(&mut fields);
        self.records.push_back(AuditRecord {
            seq: self.next_seq,
            index,
            at,
            actor: proposal.actor.clone(),
            via_node: proposal.via_node,
            request_id: proposal.request_id.clone(),
            action: command.name().to_owned(),
            target: command.target(),
            detail: fields.to_string(),
        });
        self.next_seq += 1;
        while self.records.len() > AUDIT_KEEP {
            self.records.pop_front();
        }
    }
}

/// Validates a [`crate::command::Access`] record (only the audit record is written, by
/// `State::apply`).
pub(crate) fn check_access(
    access: &crate::command::Access,
) -> Result<crate::command::Applied, crate::CommandError> {
    use crate::command::Access;
    match access {
        Access::Backup { digest, .. } => {
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(crate::CommandError::invalid(
                    "digest",
                    format!("{digest:?} is not a SHA-256 in hex"),
                ));
            }
        }
        Access::FailedAuthentications { source, count, .. } => {
            crate::limits::text("source", source, 64)?;
            if *count == 0 {
                return Err(crate::CommandError::invalid(
                    "count",
                    "a failed-authentication record counts at least one failure",
                ));
            }
        }
    }
    Ok(crate::command::Applied::AccessRecorded)
}
