//! Subscribers and their notifications: adding one (its target vetted before proposing),
//! reading subscribers (chat URLs masked below the admin role), their deliveries, the events
//! and the outbox's figures.

use std::sync::atomic::Ordering;

use statusmesh_metrics::DispatchStats;
use statusmesh_model::{Role, State};
use statusmesh_proto::admin as pb;
use statusmesh_proto::convert;
use tonic::{Request, Status};

use super::{not_found, parse_id, AdminService, Reply};
use crate::auth::Caller;
use crate::errors::command_status;

/// Items a delivery or event listing returns when the request says 0.
const DEFAULT_LIMIT: usize = 50;

fn limit(n: u32) -> usize {
    match n {
        0 => DEFAULT_LIMIT,
        n => n as usize,
    }
}

impl AdminService {
    /// `AddSubscriber`: authorized before the (slow) target vetting, once. DNS is not
    /// deterministic, so the target is vetted here, before proposing; the dispatcher checks
    /// again at every delivery.
    pub(super) async fn add_vetted_subscriber(
        &self,
        req: Request<pb::AddSubscriberRequest>,
    ) -> Reply<pb::WriteReply> {
        let caller = self.authorize(&req, "AddSubscriber").await?;
        statusmesh_model::limits::http_url("url", &req.get_ref().url)
            .map_err(|e| command_status(&e))?;
        statusmesh_egress::vet(&req.get_ref().url, &self.targets)
            .await
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let cmd = convert::add_subscriber(req.get_ref());
        self.write_as(caller, "AddSubscriber", &req, cmd).await
    }
}

pub(super) fn subscriber(
    caller: &Caller,
    r: &pb::GetRequest,
    s: &State,
) -> Result<pb::Subscriber, Status> {
    let id = parse_id(&r.id)?;
    s.subscribers
        .get(&id)
        .map(|x| convert::subscriber_listed(s, x, caller.role >= Role::Admin))
        .ok_or_else(|| not_found("subscriber", &id))
}

pub(super) fn subscribers(caller: &Caller, s: &State) -> pb::SubscriberList {
    pb::SubscriberList {
        subscribers: convert::subscribers_listed(s, caller.role >= Role::Admin),
    }
}

pub(super) fn deliveries(
    r: &pb::ListDeliveriesRequest,
    s: &State,
) -> Result<pb::DeliveryList, Status> {
    let id = parse_id(&r.id)?;
    if !s.subscribers.contains_key(&id) {
        return Err(not_found("subscriber", &id));
    }
    Ok(convert::deliveries(s, &id, limit(r.limit)))
}

/// Newest first, optionally of one kind.
pub(super) fn events(r: &pb::ListEventsRequest, s: &State) -> pb::EventList {
    let kind = &r.kind;
    pb::EventList {
        events: s
            .outbox
            .events
            .values()
            .rev()
            .filter(|e| kind.as_deref().is_none_or(|k| e.kind.as_str() == k))
            .take(limit(r.limit))
            .map(|e| convert::event(s, e))
            .collect(),
    }
}

/// The replicated outbox's figures and this node's dispatcher counters.
pub(super) fn outbox_status(s: &State, d: &DispatchStats) -> pb::OutboxStatusReply {
    let st = s.outbox.stats(&s.subscribers);
    pb::OutboxStatusReply {
        events: st.events,
        pending: st.pending,
        failed: st.failed,
        delivered_total: st.delivered_total,
        attempts_total: st.attempts_total,
        quarantined_subscribers: st.quarantined_subscribers,
        dispatching: d.dispatching.load(Ordering::Relaxed),
        in_flight: d.in_flight.load(Ordering::Relaxed),
        sent_total: d.sent_total.load(Ordering::Relaxed),
    }
}
