use crate::command::{Applied, NewSubscriber};
use crate::entities::Subscriber;
use crate::error::{CommandError, EntityKind};
use crate::ids::{Id, Timestamp};
use crate::limits;
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

impl State {
    pub(crate) fn add_subscriber(
        &mut self,
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
        let url = limits::http_url("url", &spec.url)?;
        if let Some(d) = &spec.description {
            limits::optional_text("description", d, limits::MAX_DESCRIPTION_CHARS)?;
        }
        let component_ids = self.check_component_set("component_ids", &spec.component_ids)?;
        check_secret(&spec.secret)?;
        self.subscribers.insert(
            id.clone(),
            Subscriber {
                id: id.clone(),
                url: url.to_string(),
                component_ids,
                secret: spec.secret.clone(),
                description: spec.description.clone().filter(|d| !d.trim().is_empty()),
                enabled: true,
                created_at: at,
                updated_at: at,
            },
        );
        Ok(Applied::Subscriber(id.clone()))
    }

    pub(crate) fn remove_subscriber(&mut self, id: &Id) -> Result<Applied, CommandError> {
        self.subscribers
            .remove(id)
            .ok_or_else(|| CommandError::not_found(EntityKind::Subscriber, id))?;
        Ok(Applied::SubscriberRemoved(id.clone()))
    }
}
