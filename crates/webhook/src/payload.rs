//! Webhook bodies in the three formats a subscriber can choose. The incident, maintenance and
//! component objects are the ones the public Statuspage API serves, rendered from the snapshot
//! the event recorded when it was committed.

use serde_json::{json, Value};
use statusmesh_model::outbox::EventSubject;
use statusmesh_model::{Event, EventKind, Indicator, PayloadFormat, State};
use statusmesh_statuspage::Ctx;

/// Renders `event` for a subscriber that chose `format`.
pub fn render(state: &State, event: &Event, format: PayloadFormat) -> Vec<u8> {
    let value = match format {
        PayloadFormat::Statuspage => statuspage(state, event),
        PayloadFormat::Slack => slack(state, event),
        PayloadFormat::Discord => discord(state, event),
        // Email subscribers are written to through the relay (`crate::email`), never posted
        // to; their JSON, should anyone ask, is the Statuspage envelope.
        PayloadFormat::Email => statuspage(state, event),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

fn page_url(state: &State) -> String {
    state.page.url.trim_end_matches('/').to_owned()
}

/// The Statuspage envelope: `meta`, `page`, then `incident` or `component` +
/// `component_update` (receivers tell them apart by which key is present).
pub fn statuspage(state: &State, event: &Event) -> Value {
    let ctx = Ctx::new(state);
    let url = page_url(state);
    let mut v = json!({
        "meta": {
            "unsubscribe": format!("{url}/"),
            "documentation": format!("{url}/api/v2/summary.json"),
            "generated_at": ctx.ts(event.at),
            "event_type": event.kind.as_str(),
            "webhook_id": event.webhook_id,
        },
        "page": {
            "id": state.page.id.as_str(),
            "status_indicator": event.indicator.as_str(),
            "status_description": event.indicator.description(),
        },
    });
    match &event.subject {
        EventSubject::Incident { .. } => {
            if let Some(incident) = event.incident_as_recorded(state) {
                v["incident"] = ctx.incident(&incident);
            }
        }
        EventSubject::Maintenance { maintenance } => v["incident"] = ctx.maintenance(maintenance),
        EventSubject::Component {
            component,
            old_status,
            new_status,
        } => {
            v["component"] = ctx.component(component);
            v["component_update"] = json!({
                "old_status": old_status.as_str(),
                "new_status": new_status.as_str(),
                "created_at": ctx.ts(event.at),
                "component_type": "Component",
                "id": event.webhook_id,
                "component_id": component.id.as_str(),
            });
        }
        EventSubject::Subscriber {
            subscriber_id,
            reason,
        } => {
            v["ping"] = json!({ "subscriber_id": subscriber_id.as_str(), "message": reason });
        }
    }
    v
}

/// Title, latest text and a link, shared by the chat formats.
struct Digest {
    title: String,
    text: String,
    status: String,
    link: String,
}

fn digest(state: &State, event: &Event) -> Digest {
    let url = page_url(state);
    let page = if state.page.name.is_empty() {
        "Status".to_owned()
    } else {
        state.page.name.clone()
    };
    let (title, text, status, link) = match &event.subject {
        EventSubject::Incident { incident, .. } => (
            format!("{page}: {}", incident.name),
            event
                .incident_as_recorded(state)
                .and_then(|i| i.updates.last().map(|u| u.body.clone()))
                .unwrap_or_default(),
            format!(
                "{} · impact {}",
                incident.status.as_str(),
                incident.impact.as_str()
            ),
            format!("{url}/incidents/{}", incident.id),
        ),
        EventSubject::Maintenance { maintenance } => (
            format!("{page}: {} (maintenance)", maintenance.name),
            maintenance
                .updates
                .last()
                .map(|u| u.body.clone())
                .unwrap_or_default(),
            maintenance.status.as_str().to_owned(),
            format!("{url}/incidents/{}", maintenance.id),
        ),
        EventSubject::Component {
            component,
            old_status,
            new_status,
        } => (
            format!("{page}: {} is {}", component.name, new_status.as_str()),
            format!(
                "{} changed from {} to {}.",
                component.name,
                old_status.as_str(),
                new_status.as_str()
            ),
            new_status.as_str().to_owned(),
            format!("{url}/"),
        ),
        EventSubject::Subscriber { reason, .. } => (
            format!("{page}: test notification"),
            reason.clone(),
            "ping".to_owned(),
            format!("{url}/"),
        ),
    };
    Digest {
        title,
        text,
        status,
        link,
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if s.chars().count() > max => format!("{}…", &s[..i]),
        _ => s.to_owned(),
    }
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook message: fallback `text` and blocks.
pub fn slack(state: &State, event: &Event) -> Value {
    let d = digest(state, event);
    json!({
        // The fallback text is mrkdwn too: unescaped, `<!channel>` in a title would ping.
        "text": slack_escape(&format!("{} ({})", d.title, event.kind.as_str())),
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": truncate(&d.title, 150) } },
            { "type": "section", "text": { "type": "mrkdwn", "text": truncate(&slack_escape(&d.text), 3000) } },
            { "type": "context", "elements": [ { "type": "mrkdwn", "text": format!(
                "*{}* · {} · overall: {} · <{}|View on the status page>",
                event.kind.as_str(),
                slack_escape(&d.status),
                event.indicator.description(),
                d.link
            ) } ] }
        ]
    })
}

fn discord_color(event: &Event) -> u32 {
    if event.kind == EventKind::Ping {
        return 0x5865F2;
    }
    match event.indicator {
        Indicator::None => 0x2E7D32,
        Indicator::Maintenance => 0x1565C0,
        Indicator::Minor => 0xF9A825,
        Indicator::Major => 0xEF6C00,
        Indicator::Critical => 0xC62828,
    }
}

/// A Discord webhook message: `content` and one embed. Mentions are disabled.
pub fn discord(state: &State, event: &Event) -> Value {
    let d = digest(state, event);
    let ts = event.at.to_string();
    json!({
        "content": truncate(&format!("{} ({})", d.title, event.kind.as_str()), 2000),
        "allowed_mentions": { "parse": [] },
        "embeds": [{
            "title": truncate(&d.title, 256),
            "description": truncate(&d.text, 4096),
            "url": d.link,
            "color": discord_color(event),
            "timestamp": ts,
            "fields": [
                { "name": "Status", "value": truncate(&d.status, 1024), "inline": true },
                { "name": "Overall", "value": event.indicator.description(), "inline": true },
            ],
            "footer": { "text": format!("statusmesh · {}", event.webhook_id) },
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use statusmesh_model::command::{Command, NewIncident};
    use statusmesh_model::{Id, Impact, IncidentStatus, Proposal, Timestamp};

    #[test]
    fn slack_mrkdwn_fields_cannot_mention_anyone() {
        let mut state = State::default();
        let p = Proposal::internal(
            "k1".into(),
            "test",
            1,
            Command::CreateIncident {
                id: Id::parse("id", "inc").unwrap(),
                update_id: Id::parse("id", "u1").unwrap(),
                spec: NewIncident {
                    name: "<!channel> API & DB down".into(),
                    status: IncidentStatus::Investigating,
                    impact: Impact::Major,
                    body: "<@U123> please look".into(),
                    started_at: None,
                    component_changes: vec![],
                },
            },
        );
        let p = Proposal {
            at: Timestamp(1_800_000_000_000),
            ..p
        };
        state.apply(1, &p).result.unwrap();
        let event = state.outbox.events.values().next().unwrap();
        let v = slack(&state, event);
        let text = v["text"].as_str().unwrap();
        assert!(
            text.contains("&lt;!channel&gt; API &amp; DB down") && !text.contains('<'),
            "{text}"
        );
        let section = v["blocks"][1]["text"]["text"].as_str().unwrap();
        assert_eq!(section, "&lt;@U123&gt; please look");
        // The header is plain_text, which Slack shows as written and never parses.
        assert_eq!(v["blocks"][0]["text"]["type"], "plain_text");
    }
}
