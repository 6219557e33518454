//! Why a command was refused. One closed set of error codes serves gRPC and HTTP alike; the
//! messages are lower case, name the offending field or value, and never contain secrets.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of entity a command can address (used in "not found" errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Page,
    Component,
    Incident,
    Maintenance,
    Subscriber,
    Token,
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntityKind::Page => "page",
            EntityKind::Component => "component",
            EntityKind::Incident => "incident",
            EntityKind::Maintenance => "maintenance",
            EntityKind::Subscriber => "subscriber",
            EntityKind::Token => "token",
        })
    }
}

/// The error codes shared by every API edge (gRPC status, HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
}

/// A command that the state machine refused. Refusal is deterministic (every node refuses the
/// same command the same way) and leaves the state unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "error")]
pub enum CommandError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{kind} {id} not found")]
    NotFound { kind: EntityKind, id: String },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: EntityKind, id: String },
    #[error("illegal {kind} status transition {from} -> {to}: {reason}")]
    IllegalTransition {
        kind: EntityKind,
        from: String,
        to: String,
        reason: String,
    },
    #[error("{reason}")]
    Precondition { reason: String },
    #[error("idempotency key {key:?} was already used for a different request")]
    IdempotencyKeyReused { key: String },
}

impl CommandError {
    /// The refusal of one row of a batch (an import), naming the row (counted from 1).
    pub fn in_row(self, row: u64) -> Self {
        match self {
            CommandError::Invalid { field, reason } => CommandError::Invalid {
                field: format!("row {row} {field}"),
                reason,
            },
            other => CommandError::Invalid {
                field: format!("row {row}"),
                reason: other.to_string(),
            },
        }
    }

    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        CommandError::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    pub fn not_found(kind: EntityKind, id: impl fmt::Display) -> Self {
        CommandError::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    pub fn precondition(reason: impl Into<String>) -> Self {
        CommandError::Precondition {
            reason: reason.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            CommandError::Invalid { .. } => ErrorCode::InvalidArgument,
            CommandError::NotFound { .. } => ErrorCode::NotFound,
            CommandError::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            CommandError::IllegalTransition { .. }
            | CommandError::Precondition { .. }
            | CommandError::IdempotencyKeyReused { .. } => ErrorCode::FailedPrecondition,
        }
    }
}
