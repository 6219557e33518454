//! Bytes as a Raft log entry's payload (what a node reads back from disk or receives from the
//! leader): decoding either yields a proposal or an error, and applying whatever decodes never
//! panics; a refused command leaves the state unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use statusmesh_model::{codec, Proposal, State};

fuzz_target!(|data: &[u8]| {
    let Ok(proposal) = codec::decode::<Proposal>(data) else {
        return;
    };
    let mut state = State::default();
    let before = state.digest();
    let out = state.apply(1, &proposal);
    if out.result.is_err() {
        assert_eq!(before, state.digest(), "a refused command changed the state");
    }
    // Encoding what was decoded, and decoding that again, gives the same proposal.
    let again: Proposal = codec::decode(&codec::encode(&proposal).expect("encodes")).expect("decodes");
    assert_eq!(again, proposal);
});
