//! statusmesh's domain: a status page's entities, their validation and life-cycles, the closed
//! set of replicated commands, and the deterministic state machine that applies them.
//!
//! Architecture invariant: no IO, no async, no clock, no randomness, no wire types. Everything
//! that varies between nodes arrives inside a [`Proposal`]; [`State::apply`] is a pure function,
//! so every replica that applies the same log holds the same state and the same [`State::digest`].

pub mod access;
mod apply;
pub mod backup;
pub mod codec;
pub mod command;
pub mod entities;
pub mod error;
pub mod format;
pub mod ids;
pub mod limits;
pub mod links;
pub mod outbox;
pub mod restore;
pub mod rollup;
pub mod state;
pub mod status;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use access::{ApiToken, AuditRecord, Role};
pub use command::{Applied, Command, MembershipChange, Outcome, Proposal};
pub use entities::{email_subscriber_id, webhook_subscriber_id, MAILTO};
pub use entities::{
    AffectedComponent, Component, Incident, IncidentUpdate, Maintenance, MaintenanceUpdate,
    PageSettings, PayloadFormat, Postmortem, RetiringSecret, StatusChange, Subscriber,
    SubscriberState, STATUS_LOG_WINDOW_MS,
};
pub use error::{CommandError, EntityKind, ErrorCode};
pub use ids::{Id, Timestamp};
pub use outbox::{Event, EventKind, Outbox};
pub use rollup::Indicator;
pub use state::{State, Subscribers};
pub use status::{ComponentStatus, Impact, IncidentStatus, MaintenanceStatus, TransitionRefused};
