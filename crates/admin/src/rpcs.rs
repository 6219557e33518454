//! The role each admin RPC needs: one table, fixed per RPC.
//!
//! Invariant: every RPC authenticates its caller and checks [`role`] of its own name before it
//! looks at the request (no id is parsed, no query built, no command converted first), so a
//! caller without the role learns nothing from the request's validation and a malformed
//! request never changes which role is required. The table test in `tests/roles.rs`
//! calls every RPC with every role, and [`tests`] below checks the table against the service
//! definition.

use statusmesh_model::Role;

/// `(RPC name as in the .proto, role it needs)` for every admin RPC.
pub const RPCS: &[(&str, Role)] = &[
    ("GetPage", Role::ReadOnly),
    ("SetPage", Role::Operator),
    ("CreateComponent", Role::Operator),
    ("UpdateComponent", Role::Operator),
    ("SetComponentStatus", Role::Operator),
    ("DeleteComponent", Role::Operator),
    ("GetComponent", Role::ReadOnly),
    ("ListComponents", Role::ReadOnly),
    ("CreateIncident", Role::Operator),
    ("UpdateIncident", Role::Operator),
    ("ResolveIncident", Role::Operator),
    ("PublishPostmortem", Role::Operator),
    ("GetIncident", Role::ReadOnly),
    ("ListIncidents", Role::ReadOnly),
    ("ScheduleMaintenance", Role::Operator),
    ("UpdateMaintenance", Role::Operator),
    ("CancelMaintenance", Role::Operator),
    ("GetMaintenance", Role::ReadOnly),
    ("ListMaintenances", Role::ReadOnly),
    ("AddSubscriber", Role::Operator),
    ("ImportSubscribers", Role::Operator),
    ("RemoveSubscriber", Role::Operator),
    ("GetSubscriber", Role::ReadOnly),
    ("ListSubscribers", Role::ReadOnly),
    ("SetSubscriberState", Role::Operator),
    ("RotateSubscriberSecret", Role::Operator),
    ("TestSubscriber", Role::Operator),
    ("ListDeliveries", Role::ReadOnly),
    ("ListEvents", Role::ReadOnly),
    ("ReplayEvent", Role::Operator),
    ("OutboxStatus", Role::ReadOnly),
    ("CreateToken", Role::Admin),
    ("RevokeToken", Role::Admin),
    ("ListTokens", Role::ReadOnly),
    ("ListAudit", Role::ReadOnly),
    // Exports every secret (tokens' hashes, subscribers' signing secrets, chat webhook URLs).
    ("Backup", Role::Admin),
    ("WhoAmI", Role::ReadOnly),
    ("ClusterStatus", Role::ReadOnly),
    ("AddNode", Role::Admin),
    ("PromoteNode", Role::Admin),
    ("RemoveNode", Role::Admin),
];

/// The role `rpc` needs; `None` for a name not in [`RPCS`] (a handler with a misspelt
/// name fails closed: see `AdminService::authorize`).
pub fn role(rpc: &str) -> Option<Role> {
    RPCS.iter().find(|(n, _)| *n == rpc).map(|(_, r)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RPC names of the admin service, read from the compiled service definition.
    fn service_methods() -> Vec<String> {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(statusmesh_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        set.file
            .iter()
            .flat_map(|f| f.service.iter())
            .filter(|s| s.name() == "Admin")
            .flat_map(|s| s.method.iter().map(|m| m.name().to_owned()))
            .collect()
    }

    #[test]
    fn every_rpc_of_the_service_has_exactly_one_role() {
        let methods = service_methods();
        assert!(methods.len() >= 40, "{methods:?}");
        for m in &methods {
            assert!(role(m).is_some(), "{m} has no role in RPCS");
        }
        for (name, _) in RPCS {
            assert!(methods.iter().any(|m| m == name), "{name} is not an RPC");
            assert_eq!(RPCS.iter().filter(|(n, _)| n == name).count(), 1, "{name}");
        }
    }
}
