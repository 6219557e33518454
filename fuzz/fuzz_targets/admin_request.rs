//! Admin request bytes as they arrive off the wire: the first byte picks the RPC, the rest is
//! decoded as its protobuf message, converted to a command (validation), stamped the way the
//! leader stamps it, and applied to a state machine that already holds some entities. Nothing
//! may panic, and a refused command must leave the state unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use statusmesh_model::command::Entropy;
use statusmesh_model::{Command, CommandError, Id, Proposal, State, Timestamp};
use statusmesh_proto::admin as pb;
use statusmesh_proto::convert;

struct Counter(u64);

impl Entropy for Counter {
    fn id(&mut self) -> Id {
        self.0 += 1;
        Id::parse("id", &format!("f{}", self.0)).expect("a valid id")
    }
    fn secret(&mut self) -> String {
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()
    }
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Option<M> {
    M::decode(bytes).ok()
}

fn command(selector: u8, rest: &[u8]) -> Option<Result<Command, CommandError>> {
    Some(match selector % 19 {
        0 => convert::set_page(&decode(rest)?),
        1 => convert::create_component(&decode(rest)?),
        2 => convert::update_component(&decode(rest)?),
        3 => convert::set_component_status(&decode(rest)?),
        4 => convert::delete_component(&decode(rest)?),
        5 => convert::create_incident(&decode(rest)?),
        6 => convert::update_incident(&decode(rest)?),
        7 => convert::resolve_incident(&decode(rest)?),
        8 => convert::publish_postmortem(&decode(rest)?),
        9 => convert::schedule_maintenance(&decode(rest)?),
        10 => convert::update_maintenance(&decode(rest)?),
        11 => convert::cancel_maintenance(&decode(rest)?),
        12 => convert::add_subscriber(&decode(rest)?),
        13 => convert::set_subscriber_state(&decode(rest)?),
        14 => convert::rotate_subscriber_secret(&decode(rest)?),
        15 => convert::test_subscriber(&decode(rest)?),
        16 => convert::replay_event(&decode(rest)?),
        17 => convert::remove_subscriber(&decode(rest)?),
        _ => convert::create_token(&decode::<pb::CreateTokenRequest>(rest)?),
    })
}

fn seeded() -> State {
    let mut state = State::default();
    let mut entropy = Counter(0);
    let seed = [
        pb::CreateComponentRequest {
            name: "API".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    ];
    for (i, bytes) in seed.iter().enumerate() {
        if let Some(Ok(mut c)) = command(1, bytes) {
            c.stamp(&mut entropy);
            let _ = state.apply(i as u64 + 1, &proposal(c, i));
        }
    }
    state
}

fn proposal(command: Command, i: usize) -> Proposal {
    Proposal {
        idempotency_key: format!("k{i}"),
        fingerprint: format!("f{i}"),
        at: Timestamp(1_800_000_000_000),
        actor: "fuzz".into(),
        via_node: 1,
        request_id: String::new(),
        command,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some(Ok(mut cmd)) = command(selector, rest) else {
        return;
    };
    cmd.stamp(&mut Counter(100));
    let mut state = seeded();
    let before = state.digest();
    let out = state.apply(10, &proposal(cmd, 10));
    if out.result.is_err() {
        assert_eq!(before, state.digest(), "a refused command changed the state");
    }
});
