//! What applying a command answers (the same on every node), and what an access record holds.

use serde::{Deserialize, Serialize};

use crate::error::CommandError;
use crate::ids::{Id, Timestamp};

/// What a command did, by reference: the caller reads the entity from the state it applied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "applied", content = "id")]
pub enum Applied {
    Page,
    Component(Id),
    ComponentDeleted(Id),
    Incident(Id),
    Maintenance(Id),
    /// A subscriber was created: the reply may show its secret.
    Subscriber(Id),
    /// A subscriber's secret was rotated: the reply may show the new secret.
    SubscriberSecret(Id),
    /// A subscriber changed state; its secret stays hidden.
    SubscriberUpdated(Id),
    SubscriberRemoved(Id),
    /// A self-service subscription request was taken (the same answer whether or not the
    /// address was already subscribed).
    SubscriptionRequested,
    /// This many subscribers were imported.
    Imported(u32),
    /// This many subscribers' addresses were forgotten (expired or long bounced).
    Expired(u32),
    /// An event was recorded (its webhook id).
    Event(String),
    /// This many deliveries were queued again.
    Requeued(u32),
    /// This many attempt reports counted (stale ones are ignored).
    AttemptsRecorded(u32),
    /// A token was created (its name).
    Token(String),
    TokenRevoked(String),
    /// The state was replaced by a backup (the digest it now has).
    Restored(String),
    /// A chunked restore is under way: this many bytes of its state text are in.
    RestoreReceived(u64),
    /// A membership change was recorded (the membership entry's index).
    MembershipRecorded(u64),
    /// A `RecordAccess` was recorded.
    AccessRecorded,
}

/// The answer to a proposal, identical on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Log index at which this key's command was first applied.
    pub index: u64,
    /// True when the key had been seen before and this is the remembered answer.
    pub replayed: bool,
    pub result: Result<Applied, CommandError>,
}

/// What a [`Command::RecordAccess`] records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// A backup of the state at `applied_index` (its digest) was taken through a node.
    Backup { digest: String, applied_index: u64 },
    /// `count` failed authentications from `source` (an address, an IPv6 /64, or `other`)
    /// on the node the record names, in the minute starting at `since`.
    FailedAuthentications {
        source: String,
        count: u32,
        since: Timestamp,
    },
}
