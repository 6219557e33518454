use std::collections::BTreeMap;

use crate::command::{Applied, ImportedSubscriber, NewSubscriber};
use crate::entities::{
    email_subscriber_id, webhook_subscriber_id, PayloadFormat, RetiringSecret, Subscriber,
    SubscriberState, MAILTO,
};
use crate::error::{CommandError, EntityKind};
use crate::ids::{Id, Timestamp};
use crate::limits;
use crate::outbox::EventKind;
use crate::state::State;

/// `whsec_` followed by base64 of 24 to 64 bytes (the Standard Webhooks secret format).
fn check_secret(secret: &str) -> Result<(), CommandError> {
    let ok = secret.strip_prefix("whsec_").is_some_and(|b64| {
        (32..=88).contains(&b64.len())
            && b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
    });
    if ok {
        Ok(())
    } else {
        // Never echo the value: it is a secret.
        Err(CommandError::invalid(
            "secret",
            "must be whsec_ followed by base64 of 24 to 64 bytes",
        ))
    }
}

/// The subscriber's `url`, checked: an http(s) URL for a webhook; for an email subscriber
/// `mailto:` and the normalised address, whose derived id must be `id`.
fn subscriber_url(id: &Id, spec: &NewSubscriber) -> Result<String, CommandError> {
    if !spec.format.is_email() {
        return Ok(limits::http_url("url", &spec.url)?.to_string());
    }
    let given = spec.url.strip_prefix(MAILTO).unwrap_or(&spec.url);
    let address = limits::email_address("email", given)?;
    if *id != email_subscriber_id(&address) {
        return Err(CommandError::invalid(
            "id",
            format!(
                "{id} is not the id of this address (an email subscriber's id is derived from it)"
            ),
        ));
    }
    Ok(format!("{MAILTO}{address}"))
}

impl State {
    pub(crate) fn add_subscriber(
        &mut self,
        index: u64,
        at: Timestamp,
        id: &Id,
        spec: &NewSubscriber,
    ) -> Result<Applied, CommandError> {
        self.check_new_id(EntityKind::Subscriber, id)?;
        limits::count(
            "subscribers",
            self.subscribers.len() + 1,
            limits::MAX_SUBSCRIBERS,
        )?;
        let sub = self.new_subscriber(index, at, id, spec)?;
        self.subscribers.insert(id.clone(), sub);
        Ok(Applied::Subscriber(id.clone()))
    }

    /// Adds every row or none: the first refusal names its row.
    pub(crate) fn import_subscribers(
        &mut self,
        index: u64,
        at: Timestamp,
        first_row: u64,
        rows: &[ImportedSubscriber],
    ) -> Result<Applied, CommandError> {
        if rows.is_empty() {
            return Err(CommandError::invalid(
                "subscribers",
                "an import needs at least one row",
            ));
        }
        limits::count("subscribers", rows.len(), limits::MAX_IMPORT_ROWS)?;
        limits::count(
            "subscribers",
            self.subscribers.len() + rows.len(),
            limits::MAX_SUBSCRIBERS,
        )?;
        let mut built = BTreeMap::new();
        for (n, row) in rows.iter().enumerate() {
            let row_number = first_row + n as u64 + 1;
            let in_row = |e: CommandError| e.in_row(row_number);
            self.check_new_id(EntityKind::Subscriber, &row.id)
                .map_err(in_row)?;
            let sub = self
                .new_subscriber(index, at, &row.id, &row.spec)
                .map_err(in_row)?;
            if built.insert(row.id.clone(), sub).is_some() {
                return Err(
                    CommandError::invalid("id", format!("{} appears twice", row.id))
                        .in_row(row_number),
                );
            }
        }
        let count = built.len() as u32;
        self.subscribers.extend(built);
        Ok(Applied::Imported(count))
    }

    /// A subscriber from its spec, checked.
    fn new_subscriber(
        &self,
        index: u64,
        at: Timestamp,
        id: &Id,
        spec: &NewSubscriber,
    ) -> Result<Subscriber, CommandError> {
        let url = subscriber_url(id, spec)?;
        if let Some(d) = &spec.description {
            limits::optional_text("description", d, limits::MAX_DESCRIPTION_CHARS)?;
        }
        let component_ids = self.check_component_set("component_ids", &spec.component_ids)?;
        check_secret(&spec.secret)?;
        if let Some(o) = &spec.owner {
            limits::optional_text("owner", o, limits::MAX_NAME_CHARS)?;
        }
        Ok(Subscriber {
            id: id.clone(),
            url,
            component_ids,
            secret: spec.secret.clone(),
            previous_secret: None,
            format: spec.format,
            owner: spec.owner.clone().filter(|o| !o.trim().is_empty()),
            description: spec.description.clone().filter(|d| !d.trim().is_empty()),
            state: SubscriberState::Active,
            recent_failures: Vec::new(),
            created_at: at,
            updated_at: at,
            since: index,
            notice_at: None,
        })
    }

    pub(crate) fn remove_subscriber(&mut self, id: &Id) -> Result<Applied, CommandError> {
        if !self.delete_subscriber(id) {
            return Err(CommandError::not_found(EntityKind::Subscriber, id));
        }
        Ok(Applied::SubscriberRemoved(id.clone()))
    }

    /// Deletes a subscriber and what the outbox still owes it; false if there was none.
    fn delete_subscriber(&mut self, id: &Id) -> bool {
        let found = self.subscribers.remove(id).is_some();
        if found {
            self.outbox.forget_subscriber(id);
        }
        found
    }

    /// Deletes the listed subscribers that are, at `at`, kept no longer ([`Subscriber::expired`]).
    pub(crate) fn expire_subscribers(
        &mut self,
        at: Timestamp,
        ids: &[Id],
    ) -> Result<Applied, CommandError> {
        limits::count("ids", ids.len(), limits::MAX_EXPIRED_PER_COMMAND)?;
        let mut forgotten = 0;
        for id in ids {
            if self.subscribers.get(id).is_some_and(|s| s.expired(at)) && self.delete_subscriber(id)
            {
                forgotten += 1;
            }
        }
        Ok(Applied::Expired(forgotten))
    }

    /// Up to `max` subscribers kept no longer at `at`, in subscriber order: what the leader's
    /// scheduler proposes to forget.
    pub fn expired_subscribers(&self, at: Timestamp, max: usize) -> Vec<Id> {
        self.subscribers
            .values()
            .filter(|s| s.expired(at))
            .take(max)
            .map(|s| s.id.clone())
            .collect()
    }

    pub(crate) fn subscriber(&self, id: &Id) -> Result<&Subscriber, CommandError> {
        self.subscribers
            .get(id)
            .ok_or_else(|| CommandError::not_found(EntityKind::Subscriber, id))
    }

    pub(crate) fn set_subscriber_state(
        &mut self,
        at: Timestamp,
        id: &Id,
        enabled: bool,
        replay_since: Option<Timestamp>,
    ) -> Result<Applied, CommandError> {
        self.subscriber(id)?;
        if !enabled {
            if replay_since.is_some() {
                return Err(CommandError::invalid(
                    "replay_since",
                    "only makes sense when enabling a subscriber",
                ));
            }
            self.disable_subscriber(at, id, "disabled by an operator".into());
        } else {
            if let Some(s) = self.subscribers.get_mut(id) {
                s.state = SubscriberState::Active;
                s.recent_failures.clear();
                s.updated_at = at;
            }
            if let Some(since) = replay_since {
                self.replay_since(at, id, since);
            }
        }
        Ok(Applied::SubscriberUpdated(id.clone()))
    }

    pub(crate) fn rotate_subscriber_secret(
        &mut self,
        at: Timestamp,
        id: &Id,
        secret: &str,
        overlap_ms: i64,
    ) -> Result<Applied, CommandError> {
        self.subscriber(id)?;
        if !(0..=limits::MAX_SECRET_OVERLAP_MS).contains(&overlap_ms) {
            return Err(CommandError::invalid(
                "overlap",
                format!(
                    "must be between 0 and {} hours",
                    limits::MAX_SECRET_OVERLAP_MS / 3_600_000
                ),
            ));
        }
        check_secret(secret)?;
        if let Some(s) = self.subscribers.get_mut(id) {
            let old = std::mem::replace(&mut s.secret, secret.to_owned());
            s.previous_secret = (overlap_ms > 0).then(|| RetiringSecret {
                secret: old,
                until: Timestamp(at.0 + overlap_ms),
            });
            s.updated_at = at;
        }
        Ok(Applied::SubscriberSecret(id.clone()))
    }

    /// Turns a subscriber off and fails its pending deliveries. Never refuses.
    pub(crate) fn disable_subscriber(&mut self, at: Timestamp, id: &Id, reason: String) {
        let failed = format!("subscriber disabled: {reason}");
        self.turn_off(at, id, &failed, SubscriberState::Disabled { at, reason });
    }

    /// Puts a subscriber in a state that receives nothing (`state`), failing its pending
    /// deliveries with `failed`. Never refuses.
    fn turn_off(&mut self, at: Timestamp, id: &Id, failed: &str, state: SubscriberState) {
        if let Some(s) = self.subscribers.get_mut(id) {
            self.outbox.fail_all_of(id, at, failed);
            s.state = state;
            s.updated_at = at;
        }
    }

    /// A self-service email subscription request (see [`crate::command::Command::RequestSubscription`]).
    pub(crate) fn request_subscription(
        &mut self,
        index: u64,
        at: Timestamp,
        id: &Id,
        spec: &NewSubscriber,
    ) -> Result<Applied, CommandError> {
        self.check_self_service(id, spec)?;
        let expires = at.saturating_add_millis(limits::SUBSCRIPTION_CONFIRM_MS);
        let notice_due = |s: &Subscriber| {
            s.notice_at
                .is_none_or(|t| at.0.saturating_sub(t.0) >= limits::SUBSCRIPTION_NOTICE_INTERVAL_MS)
        };
        let kind = match self.subscribers.get(id) {
            None => {
                limits::count(
                    "subscribers",
                    self.subscribers.len() + 1,
                    limits::MAX_SUBSCRIBERS,
                )?;
                let mut sub = self.new_subscriber(index, at, id, spec)?;
                sub.state = SubscriberState::Unconfirmed { expires };
                self.subscribers.insert(id.clone(), sub);
                Some(EventKind::SubscriptionConfirm)
            }
            Some(existing) => {
                // Checked as a new one would be, so a malformed request is refused alike.
                self.new_subscriber(index, at, id, spec)?;
                let component_ids =
                    self.check_component_set("component_ids", &spec.component_ids)?;
                let due = notice_due(existing);
                let sub = self.subscribers.get_mut(id).expect("looked up above");
                match sub.state {
                    // A new confirmation (new expiry, so the older links stop working) only
                    // with a new mail: otherwise the link already sent must keep working.
                    SubscriberState::Unconfirmed { .. } if due => {
                        sub.state = SubscriberState::Unconfirmed { expires };
                        sub.component_ids = component_ids;
                        sub.updated_at = at;
                        Some(EventKind::SubscriptionConfirm)
                    }
                    SubscriberState::Unconfirmed { .. } => None,
                    SubscriberState::Active => due.then_some(EventKind::SubscriptionManage),
                    // Bounced or turned off: no mail goes to it from a form anyone can send.
                    _ => None,
                }
            }
        };
        if let Some(kind) = kind {
            if let Some(sub) = self.subscribers.get_mut(id) {
                sub.notice_at = Some(at);
            }
            self.notify_one(index, at, kind, id, kind.as_str());
        }
        Ok(Applied::SubscriptionRequested)
    }

    /// What the public page may ask for: an email subscription, or (page setting
    /// `webhook_subscriptions`) a Statuspage-format webhook with a contact address to confirm
    /// it, under the id derived from its URL.
    fn check_self_service(&self, id: &Id, spec: &NewSubscriber) -> Result<(), CommandError> {
        match spec.format {
            PayloadFormat::Email if self.page.email_subscriptions => Ok(()),
            PayloadFormat::Email => Err(CommandError::precondition(
                "this page does not take email subscriptions (page setting email_subscriptions)",
            )),
            PayloadFormat::Statuspage if self.page.webhook_subscriptions => {
                let url = limits::http_url("url", &spec.url)?;
                if *id != webhook_subscriber_id(url.as_str()) {
                    return Err(CommandError::invalid(
                        "id",
                        format!("{id} is not the id of this endpoint (a self-service webhook's id is derived from its URL)"),
                    ));
                }
                let contact = spec.owner.as_deref().unwrap_or("");
                limits::email_address("owner", contact)?;
                Ok(())
            }
            PayloadFormat::Statuspage => Err(CommandError::precondition(
                "this page does not take webhook subscriptions (page setting webhook_subscriptions)",
            )),
            _ => Err(CommandError::invalid(
                "format",
                "only email and webhook subscriptions are taken from the public page",
            )),
        }
    }

    pub(crate) fn confirm_subscription(
        &mut self,
        index: u64,
        at: Timestamp,
        id: &Id,
    ) -> Result<Applied, CommandError> {
        let sub = self.subscriber(id)?;
        match sub.state {
            SubscriberState::Unconfirmed { expires } if at <= expires => {}
            SubscriberState::Unconfirmed { .. } => {
                return Err(CommandError::precondition(
                    "the confirmation has expired; subscribe again",
                ))
            }
            SubscriberState::Active => return Ok(Applied::SubscriberUpdated(id.clone())),
            _ => {
                return Err(CommandError::precondition(format!(
                    "subscriber {id} is {}",
                    sub.state.as_str()
                )))
            }
        }
        if let Some(s) = self.subscribers.get_mut(id) {
            s.state = SubscriberState::Active;
            // It receives what is recorded after its confirmation, not before.
            s.since = index;
            s.updated_at = at;
        }
        Ok(Applied::SubscriberUpdated(id.clone()))
    }

    pub(crate) fn set_subscriber_components(
        &mut self,
        at: Timestamp,
        id: &Id,
        component_ids: &[Id],
    ) -> Result<Applied, CommandError> {
        self.subscriber(id)?;
        let set = self.check_component_set("component_ids", component_ids)?;
        if let Some(s) = self.subscribers.get_mut(id) {
            s.component_ids = set;
            s.updated_at = at;
        }
        Ok(Applied::SubscriberUpdated(id.clone()))
    }

    /// Marks an email subscriber bounced and fails its pending deliveries. Never refuses.
    pub(crate) fn bounce_subscriber(&mut self, at: Timestamp, id: &Id, reason: String) {
        let failed = format!("subscriber bounced: {reason}");
        self.turn_off(at, id, &failed, SubscriberState::Bounced { at, reason });
    }
}
