//! Any bytes as a node configuration file (plus one environment override): parsing and
//! validation either accept or name what is wrong; they never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use statusmesh_server::Config;

fuzz_target!(|data: &[u8]| {
    // The last line, if it looks like KEY=VALUE, is also tried as an environment override.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env: Vec<(String, String)> = text
        .lines()
        .last()
        .and_then(|l| l.split_once('='))
        .map(|(k, v)| vec![(format!("STATUSMESH_{}", k.trim()), v.to_owned())])
        .unwrap_or_default();
    if let Err(e) = Config::from_toml("fuzz.toml", text, env) {
        // Every error names where it comes from.
        let shown = e.to_string();
        assert!(!shown.is_empty());
    }
});
