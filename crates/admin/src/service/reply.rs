//! What answers carry: the entity a write produced, as this node holds it once applied, and
//! the membership view.

use statusmesh_cluster::{ClusterNode, NodeStatus};
use statusmesh_model::{Applied, State};
use statusmesh_proto::admin::{self as pb, write_reply::Entity};
use statusmesh_proto::convert;

/// The entity a write's reply carries. The reply to the creating write (or its replay) is the
/// one place a subscriber's secret shows; a chat webhook URL shows to the admin role only
/// (`reveal_urls`), or in the reply to the write that supplied it.
pub(super) fn entity(s: &State, applied: Applied, reveal_urls: bool) -> Option<Entity> {
    match applied {
        Applied::Page => Some(Entity::Page(convert::page(s))),
        Applied::Component(id) => s
            .components
            .get(&id)
            .map(|c| Entity::Component(convert::component(s, c))),
        Applied::Incident(id) => s
            .incidents
            .get(&id)
            .map(|i| Entity::Incident(convert::incident(i))),
        Applied::Maintenance(id) => s
            .maintenances
            .get(&id)
            .map(|m| Entity::Maintenance(convert::maintenance(m))),
        Applied::Subscriber(id) => s
            .subscribers
            .get(&id)
            .map(|x| Entity::Subscriber(convert::subscriber_with_secret(x))),
        Applied::SubscriberSecret(id) => s.subscribers.get(&id).map(|x| {
            let mut shown = x.shown(reveal_urls);
            shown.secret = x.secret.clone();
            Entity::Subscriber(convert::subscriber_with_secret(&shown))
        }),
        Applied::SubscriberUpdated(id) => s
            .subscribers
            .get(&id)
            .map(|x| Entity::Subscriber(convert::subscriber_listed(s, x, reveal_urls))),
        Applied::ComponentDeleted(id) | Applied::SubscriberRemoved(id) => {
            Some(Entity::DeletedId(id.to_string()))
        }
        Applied::Event(webhook_id) => Some(Entity::EventId(webhook_id)),
        Applied::Requeued(n) => Some(Entity::Requeued(n)),
        Applied::AttemptsRecorded(_)
        | Applied::Imported(_)
        | Applied::Expired(_)
        | Applied::Restored(_)
        | Applied::RestoreReceived(_)
        | Applied::MembershipRecorded(_)
        | Applied::AccessRecorded
        | Applied::SubscriptionRequested => None,
        Applied::Token(name) | Applied::TokenRevoked(name) => s
            .tokens
            .by_name
            .get(&name)
            .map(|t| Entity::Token(convert::token(t))),
    }
}

pub(super) fn members_pb(status: &NodeStatus) -> Vec<pb::Member> {
    status
        .members
        .iter()
        .map(|m| pb::Member {
            id: m.id,
            region: m.info.region.clone(),
            peer_addr: m.info.peer_addr.clone(),
            admin_addr: m.info.admin_addr.clone(),
            public_addr: m.info.public_addr.clone(),
            role: if m.voter { "voter" } else { "learner" }.into(),
            matched_index: m.matched_index.unwrap_or(0),
        })
        .collect()
}

pub(super) fn membership_reply(node: &ClusterNode, index: u64) -> pb::MembershipReply {
    pb::MembershipReply {
        index,
        members: members_pb(&node.status()),
    }
}
