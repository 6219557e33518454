//! Reads of the page's entities: components, incidents and maintenances (their writes are
//! plain conversions, see `convert`).

use statusmesh_model::{Id, State};
use statusmesh_proto::admin as pb;
use statusmesh_proto::convert;
use tonic::Status;

use super::{not_found, parse_id};

/// The most incidents one `ListIncidents` returns (50 when the request says 0).
const MAX_INCIDENTS: u32 = 1000;
const DEFAULT_INCIDENTS: u32 = 50;

pub(super) fn component(r: &pb::GetRequest, s: &State) -> Result<pb::Component, Status> {
    let id = parse_id(&r.id)?;
    s.components
        .get(&id)
        .map(|x| convert::component(s, x))
        .ok_or_else(|| not_found("component", &id))
}

pub(super) fn components(s: &State) -> pb::ComponentList {
    pb::ComponentList {
        components: s
            .components_in_order()
            .into_iter()
            .map(|x| convert::component(s, x))
            .collect(),
    }
}

pub(super) fn incident(r: &pb::GetRequest, s: &State) -> Result<pb::Incident, Status> {
    let id: Id = parse_id(&r.id)?;
    s.incidents
        .get(&id)
        .map(convert::incident)
        .ok_or_else(|| not_found("incident", &id))
}

/// Newest first, at most the request's limit.
pub(super) fn incidents(r: &pb::ListIncidentsRequest, s: &State) -> pb::IncidentList {
    let limit = match r.limit {
        0 => DEFAULT_INCIDENTS,
        n => n.min(MAX_INCIDENTS),
    } as usize;
    let mut all: Vec<_> = s
        .incidents
        .values()
        .filter(|i| !r.unresolved_only || i.status.is_open())
        .collect();
    all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    pb::IncidentList {
        incidents: all.into_iter().take(limit).map(convert::incident).collect(),
    }
}

pub(super) fn maintenance(r: &pb::GetRequest, s: &State) -> Result<pb::Maintenance, Status> {
    let id = parse_id(&r.id)?;
    s.maintenances
        .get(&id)
        .map(convert::maintenance)
        .ok_or_else(|| not_found("maintenance", &id))
}

/// In the order they are scheduled.
pub(super) fn maintenances(s: &State) -> pb::MaintenanceList {
    let mut all: Vec<_> = s.maintenances.values().collect();
    all.sort_by(|a, b| (a.scheduled_for, &a.id).cmp(&(b.scheduled_for, &b.id)));
    pb::MaintenanceList {
        maintenances: all.into_iter().map(convert::maintenance).collect(),
    }
}
