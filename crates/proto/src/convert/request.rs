//! Admin requests -> commands. New entities carry pending ids (the leader stamps them, see
//! `Command::stamp`); every parse error names the request field.

use statusmesh_model::command::{
    ComponentChange, ComponentPatch, ImportedSubscriber, IncidentUpdateSpec, MaintenancePatch,
    NewComponent, NewIncident, NewMaintenance, NewSubscriber, PagePatch,
};
use statusmesh_model::{email_subscriber_id, limits, MAILTO};
use statusmesh_model::{
    Command, CommandError, ComponentStatus, Id, Impact, IncidentStatus, MaintenanceStatus,
    PayloadFormat, Timestamp,
};

use crate::admin as pb;

type Result<T> = std::result::Result<T, CommandError>;

fn id(field: &str, s: &str) -> Result<Id> {
    Id::parse(field, s)
}

fn ids(field: &str, v: &[String]) -> Result<Vec<Id>> {
    v.iter().map(|s| id(field, s)).collect()
}

fn ts(field: &str, s: &str) -> Result<Timestamp> {
    Timestamp::parse_rfc3339(field, s)
}

fn changes(v: &[pb::ComponentChange]) -> Result<Vec<ComponentChange>> {
    v.iter()
        .map(|c| {
            Ok(ComponentChange {
                component_id: id("component_changes.component_id", &c.component_id)?,
                status: ComponentStatus::parse("component_changes.status", &c.status)?,
            })
        })
        .collect()
}

pub fn set_page(r: &pb::SetPageRequest) -> Result<Command> {
    let patch = PagePatch {
        name: r.name.clone(),
        url: r.url.clone(),
        time_zone: r.time_zone.clone(),
        emit_maintenance_status: r.emit_maintenance_status,
        email_subscriptions: r.email_subscriptions,
        webhook_subscriptions: r.webhook_subscriptions,
        mail_header: r.mail_header.clone(),
        mail_footer: r.mail_footer.clone(),
    };
    if patch == PagePatch::default() {
        return Err(CommandError::invalid("page", "nothing to change"));
    }
    Ok(Command::SetPage {
        page_id: Id::pending(),
        patch,
    })
}

pub fn create_component(r: &pb::CreateComponentRequest) -> Result<Command> {
    Ok(Command::CreateComponent {
        id: Id::pending(),
        spec: NewComponent {
            name: r.name.clone(),
            description: r.description.clone(),
            position: r.position,
            status: match &r.status {
                Some(s) => ComponentStatus::parse("status", s)?,
                None => ComponentStatus::Operational,
            },
            group_id: r
                .group_id
                .as_deref()
                .map(|g| id("group_id", g))
                .transpose()?,
            is_group: r.group,
            showcase: r.showcase,
            only_show_if_degraded: r.only_show_if_degraded,
        },
    })
}

pub fn update_component(r: &pb::UpdateComponentRequest) -> Result<Command> {
    let patch = ComponentPatch {
        name: r.name.clone(),
        description: r
            .description
            .clone()
            .map(|d| Some(d).filter(|d| !d.is_empty())),
        position: r.position,
        group_id: match r.group_id.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(g) => Some(Some(id("group_id", g)?)),
        },
        showcase: r.showcase,
        only_show_if_degraded: r.only_show_if_degraded,
    };
    if patch == ComponentPatch::default() {
        return Err(CommandError::invalid("component", "nothing to change"));
    }
    Ok(Command::UpdateComponent {
        id: id("id", &r.id)?,
        patch,
    })
}

pub fn set_component_status(r: &pb::SetComponentStatusRequest) -> Result<Command> {
    Ok(Command::SetComponentStatus {
        id: id("id", &r.id)?,
        status: ComponentStatus::parse("status", &r.status)?,
    })
}

pub fn delete_component(r: &pb::IdRequest) -> Result<Command> {
    Ok(Command::DeleteComponent {
        id: id("id", &r.id)?,
    })
}

pub fn create_incident(r: &pb::CreateIncidentRequest) -> Result<Command> {
    Ok(Command::CreateIncident {
        id: Id::pending(),
        update_id: Id::pending(),
        spec: NewIncident {
            name: r.name.clone(),
            status: match &r.status {
                Some(s) => IncidentStatus::parse("status", s)?,
                None => IncidentStatus::Investigating,
            },
            impact: match &r.impact {
                Some(s) => Impact::parse("impact", s)?,
                None => Impact::Minor,
            },
            body: r.body.clone(),
            started_at: r
                .started_at
                .as_deref()
                .map(|s| ts("started_at", s))
                .transpose()?,
            component_changes: changes(&r.component_changes)?,
        },
    })
}

pub fn update_incident(r: &pb::UpdateIncidentRequest) -> Result<Command> {
    Ok(Command::UpdateIncident {
        id: id("id", &r.id)?,
        update_id: Id::pending(),
        spec: IncidentUpdateSpec {
            status: r
                .status
                .as_deref()
                .map(|s| IncidentStatus::parse("status", s))
                .transpose()?,
            impact: r
                .impact
                .as_deref()
                .map(|s| Impact::parse("impact", s))
                .transpose()?,
            name: r.name.clone(),
            body: r.body.clone(),
            component_changes: changes(&r.component_changes)?,
        },
    })
}

pub fn resolve_incident(r: &pb::ResolveIncidentRequest) -> Result<Command> {
    Ok(Command::ResolveIncident {
        id: id("id", &r.id)?,
        update_id: Id::pending(),
        body: r
            .body
            .clone()
            .unwrap_or_else(|| "This incident has been resolved.".into()),
        restore_components: !r.keep_component_status,
    })
}

pub fn publish_postmortem(r: &pb::PostmortemRequest) -> Result<Command> {
    Ok(Command::PublishPostmortem {
        id: id("id", &r.id)?,
        body: r.body.clone(),
    })
}

pub fn schedule_maintenance(r: &pb::ScheduleMaintenanceRequest) -> Result<Command> {
    Ok(Command::ScheduleMaintenance {
        id: Id::pending(),
        update_id: Id::pending(),
        spec: NewMaintenance {
            name: r.name.clone(),
            body: r.body.clone(),
            scheduled_for: ts("scheduled_for", &r.scheduled_for)?,
            scheduled_until: ts("scheduled_until", &r.scheduled_until)?,
            components: ids("component_ids", &r.component_ids)?,
            auto_transitions: !r.manual_transitions,
        },
    })
}

pub fn update_maintenance(r: &pb::UpdateMaintenanceRequest) -> Result<Command> {
    let patch = MaintenancePatch {
        name: r.name.clone(),
        scheduled_for: r
            .scheduled_for
            .as_deref()
            .map(|s| ts("scheduled_for", s))
            .transpose()?,
        scheduled_until: r
            .scheduled_until
            .as_deref()
            .map(|s| ts("scheduled_until", s))
            .transpose()?,
        components: if r.set_components {
            Some(ids("component_ids", &r.component_ids)?)
        } else {
            None
        },
        status: r
            .status
            .as_deref()
            .map(|s| MaintenanceStatus::parse("status", s))
            .transpose()?,
        body: r.body.clone(),
    };
    if patch == MaintenancePatch::default() {
        return Err(CommandError::invalid("maintenance", "nothing to change"));
    }
    Ok(Command::UpdateMaintenance {
        id: id("id", &r.id)?,
        update_id: Id::pending(),
        patch,
    })
}

pub fn cancel_maintenance(r: &pb::CancelMaintenanceRequest) -> Result<Command> {
    Ok(Command::CancelMaintenance {
        id: id("id", &r.id)?,
        update_id: Id::pending(),
        body: r.body.clone(),
    })
}

pub fn add_subscriber(r: &pb::AddSubscriberRequest) -> Result<Command> {
    let spec = new_subscriber(r, String::new())?;
    Ok(Command::AddSubscriber {
        id: subscriber_id(&spec),
        spec,
    })
}

/// Pending (the leader chooses it), except for an email subscriber, whose id is derived from
/// its address.
fn subscriber_id(spec: &NewSubscriber) -> Id {
    match spec.url.strip_prefix(MAILTO) {
        Some(address) if spec.format.is_email() => email_subscriber_id(address),
        _ => Id::pending(),
    }
}

/// The subscriber a request describes. `mailto:<address>` (or a bare address with format
/// `email`) is an email subscriber, its address normalised here so that its id can be derived.
fn new_subscriber(r: &pb::AddSubscriberRequest, secret: String) -> Result<NewSubscriber> {
    let mut format = PayloadFormat::parse("format", &r.format)?;
    let mut url = r.url.clone();
    if format == PayloadFormat::Statuspage && url.starts_with(MAILTO) {
        format = PayloadFormat::Email;
    }
    if format.is_email() {
        let given = url.strip_prefix(MAILTO).unwrap_or(&url);
        url = format!("{MAILTO}{}", limits::email_address("url", given)?);
    }
    Ok(NewSubscriber {
        url,
        component_ids: ids("component_ids", &r.component_ids)?,
        description: r.description.clone(),
        secret,
        format,
        owner: r.owner.clone(),
    })
}

/// One import row (its id pending; its secret the row's own, or pending for the leader).
pub fn import_row(r: &pb::ImportSubscriberRow) -> Result<ImportedSubscriber> {
    let sub = r
        .subscriber
        .as_ref()
        .ok_or_else(|| CommandError::invalid("subscriber", "the row has no subscriber"))?;
    let spec = new_subscriber(sub, r.secret.clone().unwrap_or_default())?;
    Ok(ImportedSubscriber {
        id: subscriber_id(&spec),
        spec,
    })
}

pub fn set_subscriber_state(r: &pb::SetSubscriberStateRequest) -> Result<Command> {
    Ok(Command::SetSubscriberState {
        id: id("id", &r.id)?,
        enabled: r.enabled,
        replay_since: r
            .replay_since
            .as_deref()
            .map(|t| ts("replay_since", t))
            .transpose()?,
    })
}

pub fn rotate_subscriber_secret(r: &pb::RotateSecretRequest) -> Result<Command> {
    let overlap_ms = i64::try_from(r.overlap_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    Ok(Command::RotateSubscriberSecret {
        id: id("id", &r.id)?,
        secret: String::new(),
        overlap_ms,
    })
}

pub fn test_subscriber(r: &pb::IdRequest) -> Result<Command> {
    Ok(Command::TestSubscriber {
        id: id("id", &r.id)?,
    })
}

pub fn replay_event(r: &pb::ReplayEventRequest) -> Result<Command> {
    if r.event_id.is_empty() {
        return Err(CommandError::invalid("event_id", "must not be empty"));
    }
    Ok(Command::ReplayEvent {
        event: r.event_id.clone(),
        subscriber: r
            .subscriber_id
            .as_deref()
            .map(|s| id("subscriber_id", s))
            .transpose()?,
    })
}

pub fn remove_subscriber(r: &pb::IdRequest) -> Result<Command> {
    Ok(Command::RemoveSubscriber {
        id: id("id", &r.id)?,
    })
}

/// A token request becomes a command carrying only the secret's hash.
pub fn create_token(r: &pb::CreateTokenRequest) -> Result<Command> {
    use statusmesh_model::access::{check_token_name, check_token_secret, token_hash, Role};
    check_token_name("name", &r.name)?;
    let role = Role::parse("role", &r.role)?;
    check_token_secret("secret", &r.secret)?;
    Ok(Command::CreateToken {
        name: r.name.clone(),
        role,
        hash: token_hash(&r.secret),
    })
}

pub fn revoke_token(r: &pb::RevokeTokenRequest) -> Result<Command> {
    Ok(Command::RevokeToken {
        name: r.name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_name_the_field() {
        let e = set_component_status(&pb::SetComponentStatusRequest {
            id: "api".into(),
            status: "down".into(),
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("invalid status"), "{e}");
        let e = schedule_maintenance(&pb::ScheduleMaintenanceRequest {
            name: "x".into(),
            body: "y".into(),
            scheduled_for: "soon".into(),
            scheduled_until: "2026-01-01T00:00:00Z".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("invalid scheduled_for"), "{e}");
        let e = update_component(&pb::UpdateComponentRequest {
            id: "api".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("nothing to change"), "{e}");
    }

    #[test]
    fn new_entities_carry_pending_ids() {
        let cmd = create_incident(&pb::CreateIncidentRequest {
            name: "x".into(),
            body: "y".into(),
            ..Default::default()
        })
        .unwrap();
        assert!(cmd.is_unstamped());
    }
}
