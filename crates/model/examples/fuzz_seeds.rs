//! Writes seed inputs for the `log_entry` fuzz target into the directory given as the first
//! argument: encoded proposals of several command kinds (scripts/fuzz.sh runs this).

use statusmesh_model::command::{NewComponent, NewIncident};
use statusmesh_model::{
    codec, Command, ComponentStatus, Id, Impact, IncidentStatus, Proposal, Timestamp,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: fuzz_seeds DIR")?;
    std::fs::create_dir_all(&dir)?;
    let id = |s: &str| Id::parse("id", s);
    let commands = vec![
        Command::CreateComponent {
            id: id("c1")?,
            spec: NewComponent {
                name: "API".into(),
                description: Some("the API".into()),
                position: None,
                status: ComponentStatus::Operational,
                group_id: None,
                is_group: false,
                showcase: true,
                only_show_if_degraded: false,
            },
        },
        Command::CreateIncident {
            id: id("i1")?,
            update_id: id("u1")?,
            spec: NewIncident {
                name: "Errors".into(),
                status: IncidentStatus::Investigating,
                impact: Impact::Minor,
                body: "looking".into(),
                started_at: None,
                component_changes: vec![],
            },
        },
        Command::RevokeToken { name: "ops".into() },
    ];
    for (i, command) in commands.into_iter().enumerate() {
        let p = Proposal {
            idempotency_key: format!("k{i}"),
            fingerprint: format!("f{i}"),
            at: Timestamp(1_800_000_000_000),
            actor: "seed".into(),
            via_node: 1,
            request_id: String::new(),
            command,
        };
        std::fs::write(format!("{dir}/seed-{i}"), codec::encode(&p)?)?;
    }
    Ok(())
}
