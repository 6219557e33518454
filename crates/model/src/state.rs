//! The replicated state of one status page and the deterministic `apply`.
//!
//! Invariants:
//! - `apply` reads no clock, no randomness and no IO: the same proposals in the same order give
//!   the same state (and digest) on every node.
//! - A refused command leaves the state byte-for-byte unchanged: handlers check everything
//!   before they change anything, and refusals are not remembered under their key.
//! - Only maps with a total order (`BTreeMap`/`BTreeSet`) are used, so the canonical encoding
//!   (and so the digest) does not depend on insertion history.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::command::{Applied, Command, Outcome, PagePatch, Proposal};
use crate::entities::{Component, Incident, Maintenance, PageSettings, Subscriber};
use crate::error::{CommandError, EntityKind};
use crate::ids::{Id, Timestamp};
use crate::limits::{self, IDEMPOTENCY_WINDOW_MS};
use crate::outbox::Outbox;
use crate::status::ComponentStatus;

/// A remembered successful command, for idempotent replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub at: Timestamp,
    pub fingerprint: String,
    pub index: u64,
    pub applied: Applied,
}

/// Recently applied idempotency keys, remembered for [`IDEMPOTENCY_WINDOW_MS`] of command time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyLog {
    by_key: BTreeMap<String, KeyRecord>,
    /// Keys in application order; since command time never decreases, also in time order.
    order: VecDeque<(Timestamp, String)>,
}

impl IdempotencyLog {
    pub fn get(&self, key: &str) -> Option<&KeyRecord> {
        self.by_key.get(key)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    fn remember(&mut self, key: String, record: KeyRecord) {
        self.order.push_back((record.at, key.clone()));
        self.by_key.insert(key, record);
    }

    fn forget_before(&mut self, cutoff: Timestamp) {
        while let Some((at, _)) = self.order.front() {
            if *at >= cutoff {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.by_key.remove(&key);
            }
        }
    }
}

/// The subscribers, by id (see [`State::subscribers`]).
pub type Subscribers = imbl::OrdMap<Id, Subscriber>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub page: PageSettings,
    pub components: BTreeMap<Id, Component>,
    pub incidents: BTreeMap<Id, Incident>,
    pub maintenances: BTreeMap<Id, Maintenance>,
    /// In subscriber order. A persistent map: cloning the state (to write a snapshot off the
    /// replica's lock) shares it instead of copying a million subscribers; it encodes exactly
    /// as a `BTreeMap` does.
    pub subscribers: Subscribers,
    /// Notification events and their pending deliveries (see [`crate::outbox`]).
    #[serde(default)]
    pub outbox: Outbox,
    /// Counts applied commands that can change the public page; renderers skip work when it
    /// has not moved (outbox bookkeeping does not touch it).
    #[serde(default)]
    pub page_revision: u64,
    /// Named API tokens (hashes only) and their roles.
    #[serde(default)]
    pub tokens: crate::access::Tokens,
    /// Every applied operator command, newest last (see [`crate::access`]).
    #[serde(default)]
    pub audit: crate::access::AuditLog,
    /// A chunked restore under way (see [`crate::restore`]); absent from the encoding when
    /// none is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restoring: Option<crate::restore::RestoreProgress>,
    pub idempotency: IdempotencyLog,
    /// The latest command time applied: the state's own clock, never decreasing.
    pub clock: Timestamp,
}

impl State {
    /// Applies one proposal committed at log `index`.
    pub fn apply(&mut self, index: u64, proposal: &Proposal) -> Outcome {
        if let Err(e) = check_envelope(proposal) {
            return Outcome {
                index,
                replayed: false,
                result: Err(e),
            };
        }
        if let Some(rec) = self.idempotency.get(&proposal.idempotency_key) {
            let result = if rec.fingerprint == proposal.fingerprint {
                Ok(rec.applied.clone())
            } else {
                Err(CommandError::IdempotencyKeyReused {
                    key: proposal.idempotency_key.clone(),
                })
            };
            return Outcome {
                index: rec.index,
                replayed: true,
                result,
            };
        }
        // A restore replaces the whole state, bookkeeping included, so the restored digest is
        // the backup's: nothing (idempotency, audit, clock) is added on top.
        if proposal.command.is_restore() {
            // A retried restore whose first attempt applied (its reply was lost) finds the
            // backup's state in place: it answers as a replay instead of being refused.
            if let Some(applied) = self.restore_replay(&proposal.command) {
                return Outcome {
                    index,
                    replayed: true,
                    result: Ok(applied),
                };
            }
            return Outcome {
                index,
                replayed: false,
                result: self.execute(index, proposal.at, &proposal.command),
            };
        }
        let at = proposal.at.max(self.clock);
        let before = proposal
            .command
            .touches_page()
            .then(|| self.status_snapshot());
        let result = self.execute(index, at, &proposal.command);
        if let Ok(applied) = &result {
            if let Some(before) = &before {
                self.page_revision += 1;
                self.emit_events(index, at, &proposal.command, before);
            }
            if proposal.command.audited() {
                self.audit.record(index, at, proposal);
            }
            self.clock = at;
            self.idempotency
                .forget_before(Timestamp(at.0 - IDEMPOTENCY_WINDOW_MS));
            self.idempotency.remember(
                proposal.idempotency_key.clone(),
                KeyRecord {
                    at,
                    fingerprint: proposal.fingerprint.clone(),
                    index,
                    applied: applied.clone(),
                },
            );
        }
        Outcome {
            index,
            replayed: false,
            result,
        }
    }

    fn execute(
        &mut self,
        index: u64,
        at: Timestamp,
        command: &Command,
    ) -> Result<Applied, CommandError> {
        match command {
            Command::SetPage { page_id, patch } => self.set_page(at, page_id, patch),
            Command::CreateComponent { id, spec } => self.create_component(at, id, spec),
            Command::UpdateComponent { id, patch } => self.update_component(at, id, patch),
            Command::SetComponentStatus { id, status } => {
                self.set_component_status(at, id, *status)
            }
            Command::DeleteComponent { id } => self.delete_component(at, id),
            Command::CreateIncident {
                id,
                update_id,
                spec,
            } => self.create_incident(at, id, update_id, spec),
            Command::UpdateIncident {
                id,
                update_id,
                spec,
            } => self.update_incident(at, id, update_id, spec),
            Command::ResolveIncident {
                id,
                update_id,
                body,
                restore_components,
            } => self.resolve_incident(at, id, update_id, body, *restore_components),
            Command::PublishPostmortem { id, body } => self.publish_postmortem(at, id, body),
            Command::ScheduleMaintenance {
                id,
                update_id,
                spec,
            } => self.schedule_maintenance(at, id, update_id, spec),
            Command::UpdateMaintenance {
                id,
                update_id,
                patch,
            } => self.update_maintenance(at, id, update_id, patch),
            Command::CancelMaintenance {
                id,
                update_id,
                body,
            } => self.cancel_maintenance(at, id, update_id, body.as_deref()),
            Command::AutoTransitionMaintenance { id, update_id, to } => {
                self.auto_transition_maintenance(at, id, update_id, *to)
            }
            Command::AddSubscriber { id, spec } => self.add_subscriber(index, at, id, spec),
            Command::ImportSubscribers {
                first_row,
                subscribers,
            } => self.import_subscribers(index, at, *first_row, subscribers),
            Command::RemoveSubscriber { id } => self.remove_subscriber(id),
            Command::SetSubscriberState {
                id,
                enabled,
                replay_since,
            } => self.set_subscriber_state(at, id, *enabled, *replay_since),
            Command::RotateSubscriberSecret {
                id,
                secret,
                overlap_ms,
            } => self.rotate_subscriber_secret(at, id, secret, *overlap_ms),
            Command::TestSubscriber { id } => self.test_subscriber(index, at, id),
            Command::RequestSubscription { id, spec } => {
                self.request_subscription(index, at, id, spec)
            }
            Command::ConfirmSubscription { id } => self.confirm_subscription(index, at, id),
            Command::SetSubscriberComponents { id, component_ids } => {
                self.set_subscriber_components(at, id, component_ids)
            }
            Command::ExpireSubscribers { ids } => self.expire_subscribers(at, ids),
            Command::ReplayEvent { event, subscriber } => {
                self.replay_event(at, event, subscriber.as_ref())
            }
            Command::RecordAttempts {
                policy,
                reports,
                progress,
            } => self.record_attempts(index, at, policy, reports, progress),
            Command::CreateToken { name, role, hash } => self
                .tokens
                .create(at, name, *role, hash)
                .map(|()| Applied::Token(name.clone())),
            Command::RevokeToken { name } => self
                .tokens
                .revoke(at, name)
                .map(|()| Applied::TokenRevoked(name.clone())),
            // Without the bookkeeping (see `apply`).
            Command::Restore { backup } => self.restore(backup),
            Command::RestoreBegin {
                digest,
                format,
                bytes,
                node_id,
                applied_index,
                taken_at,
            } => self.restore_begin(crate::restore::RestoreProgress {
                digest: digest.clone(),
                format: *format,
                bytes: *bytes,
                node_id: *node_id,
                applied_index: *applied_index,
                taken_at: *taken_at,
                received: String::new(),
            }),
            Command::RestoreChunk {
                digest,
                offset,
                data,
            } => self.restore_chunk(digest, *offset, data),
            // Only the audit record (written by `apply`).
            Command::RecordMembershipChange {
                membership_index, ..
            } => Ok(Applied::MembershipRecorded(*membership_index)),
            Command::RecordAccess { access } => crate::access::check_access(access),
        }
    }

    fn set_page(
        &mut self,
        at: Timestamp,
        page_id: &Id,
        patch: &PagePatch,
    ) -> Result<Applied, CommandError> {
        if let Some(name) = &patch.name {
            limits::text("name", name, limits::MAX_NAME_CHARS)?;
        }
        if let Some(url) = &patch.url {
            limits::http_url("url", url)?;
        }
        if let Some(tz) = &patch.time_zone {
            check_time_zone(tz)?;
        }
        for (field, text) in [
            ("mail_header", &patch.mail_header),
            ("mail_footer", &patch.mail_footer),
        ] {
            if let Some(t) = text {
                limits::optional_text(field, t, limits::MAX_MAIL_TEXT_CHARS)?;
            }
        }
        if self.page.id.is_pending() {
            self.page.id = page_id.clone();
        }
        if let Some(name) = &patch.name {
            self.page.name = name.trim().to_owned();
        }
        if let Some(url) = &patch.url {
            self.page.url = url.clone();
        }
        if let Some(tz) = &patch.time_zone {
            self.page.time_zone = tz.clone();
        }
        if let Some(on) = patch.email_subscriptions {
            self.page.email_subscriptions = on;
        }
        if let Some(on) = patch.webhook_subscriptions {
            self.page.webhook_subscriptions = on;
        }
        if let Some(t) = &patch.mail_header {
            self.page.mail_header = t.trim().to_owned();
        }
        if let Some(t) = &patch.mail_footer {
            self.page.mail_footer = t.trim().to_owned();
        }
        if let Some(emit) = patch.emit_maintenance_status {
            self.page.emit_maintenance_status = emit;
        }
        self.page.updated_at = at;
        Ok(Applied::Page)
    }

    /// A SHA-256 over the canonical (JSON, totally ordered) encoding of the whole state: the
    /// current state format's JSON ([`crate::format`]). Equal digests on two nodes mean equal
    /// replicated state.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_json()))
    }

    /// The state's JSON in the current format.
    ///
    /// Encoding a `State` cannot fail: every map key is a string or an integer, and no field
    /// has a `Serialize` that returns an error (the round-trip property test encodes every
    /// state it reaches). A failure would be a bug, not bad input, so it panics rather than
    /// hashing an empty value.
    pub fn canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a State always encodes to JSON")
    }

    /// A component's effective status: a group shows the worst status among its children.
    pub fn component_status(&self, component: &Component) -> ComponentStatus {
        if !component.is_group {
            return component.status;
        }
        self.children(&component.id)
            .map(|c| c.status)
            .max()
            .unwrap_or(ComponentStatus::Operational)
    }

    /// The components of a group, in display order.
    pub fn children<'a>(&'a self, group: &'a Id) -> impl Iterator<Item = &'a Component> + 'a {
        self.components
            .values()
            .filter(move |c| c.group_id.as_ref() == Some(group))
    }

    /// Components in display order: top level by position, each group followed by its children.
    pub fn components_in_order(&self) -> Vec<&Component> {
        let mut top: Vec<&Component> = self
            .components
            .values()
            .filter(|c| c.group_id.is_none())
            .collect();
        top.sort_by(|a, b| (a.position, &a.name, &a.id).cmp(&(b.position, &b.name, &b.id)));
        let mut out = Vec::with_capacity(self.components.len());
        for c in top {
            out.push(c);
            if c.is_group {
                let mut kids: Vec<&Component> = self.children(&c.id).collect();
                kids.sort_by(|a, b| {
                    (a.position, &a.name, &a.id).cmp(&(b.position, &b.name, &b.id))
                });
                out.extend(kids);
            }
        }
        out
    }

    pub(crate) fn component(&self, id: &Id) -> Result<&Component, CommandError> {
        self.components
            .get(id)
            .ok_or_else(|| CommandError::not_found(EntityKind::Component, id))
    }

    pub(crate) fn incident(&self, id: &Id) -> Result<&Incident, CommandError> {
        self.incidents
            .get(id)
            .ok_or_else(|| CommandError::not_found(EntityKind::Incident, id))
    }

    pub(crate) fn maintenance(&self, id: &Id) -> Result<&Maintenance, CommandError> {
        self.maintenances
            .get(id)
            .ok_or_else(|| CommandError::not_found(EntityKind::Maintenance, id))
    }

    /// True when nothing an operator made is here yet (a fresh cluster, ready for a restore).
    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
            && self.incidents.is_empty()
            && self.maintenances.is_empty()
            && self.subscribers.is_empty()
            && self.tokens.by_name.is_empty()
    }

    /// Refuses an id that is already taken by an entity of the same kind or by any update.
    pub(crate) fn check_new_id(&self, kind: EntityKind, id: &Id) -> Result<(), CommandError> {
        let taken = match kind {
            EntityKind::Component => self.components.contains_key(id),
            EntityKind::Incident => self.incidents.contains_key(id),
            EntityKind::Maintenance => self.maintenances.contains_key(id),
            EntityKind::Subscriber => self.subscribers.contains_key(id),
            EntityKind::Page | EntityKind::Token => false,
        };
        if taken {
            return Err(CommandError::AlreadyExists {
                kind,
                id: id.to_string(),
            });
        }
        Ok(())
    }
}

fn check_envelope(p: &Proposal) -> Result<(), CommandError> {
    if p.command.is_unstamped() {
        return Err(CommandError::invalid(
            "id",
            "an id was not assigned by the leader before proposing",
        ));
    }
    let key = &p.idempotency_key;
    if key.is_empty() || key.len() > limits::MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(CommandError::invalid(
            "idempotency_key",
            format!(
                "must be 1 to {} characters, got {}",
                limits::MAX_IDEMPOTENCY_KEY_CHARS,
                key.len()
            ),
        ));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CommandError::invalid(
            "idempotency_key",
            "must be printable ASCII without spaces",
        ));
    }
    limits::optional_text("actor", &p.actor, limits::MAX_ACTOR_CHARS)
}

pub(crate) fn check_time_zone(tz: &str) -> Result<(), CommandError> {
    tz.parse::<chrono_tz::Tz>().map(|_| ()).map_err(|_| {
        CommandError::invalid(
            "time_zone",
            format!("{tz:?} is not an IANA time zone name (e.g. Europe/Paris, UTC)"),
        )
    })
}
