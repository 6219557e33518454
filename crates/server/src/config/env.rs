//! Environment overrides: `STATUSMESH_<KEY>` for a top-level key and
//! `STATUSMESH_<TABLE>__<KEY>` for a nested one, applied to the parsed TOML table before it is
//! typed and validated.

use super::ConfigError;

const ENV_PREFIX: &str = "STATUSMESH_";
/// Env vars with the prefix that are not config keys (used by statusctl, or shortcuts).
/// `STATUSMESH_*` variables that are not config keys: the node's own flags (`CONFIG`, the log
/// settings) and statusctl's, which an operator's shell may export too.
const ENV_NOT_KEYS: &[&str] = &[
    "CONFIG",
    "LOG",
    "LOG_FORMAT",
    "ENDPOINT",
    "TOKEN",
    "CA_CERT",
    "CLIENT_CERT",
    "CLIENT_KEY",
    "REQUEST_ID",
    "ADMIN_TOKEN",
    // statusmesh_cluster::node::CLOCK_OFFSET_ENV, a fault-drill knob read by the clock.
    "FAULT_CLOCK_OFFSET_MS",
    // The SMTP relay's password (`[email]`), kept out of the config file.
    "EMAIL_PASSWORD",
];

pub(super) fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let name = &var[ENV_PREFIX.len()..];
        if name == "ADMIN_TOKEN" {
            let tokens = table
                .entry("tokens")
                .or_insert_with(|| toml::Value::Array(vec![]));
            let arr = tokens.as_array_mut().ok_or_else(|| ConfigError::Env {
                var: var.clone(),
                message: "`tokens` in the file is not an array".into(),
            })?;
            arr.retain(|t| t.get("name").and_then(|n| n.as_str()) != Some("admin"));
            let mut t = toml::Table::new();
            t.insert("name".into(), "admin".into());
            t.insert("token".into(), raw.clone().into());
            arr.push(toml::Value::Table(t));
            continue;
        }
        if ENV_NOT_KEYS.contains(&name) {
            continue;
        }
        let path: Vec<String> = name.split("__").map(str::to_ascii_lowercase).collect();
        let value = parse_env_value(&raw);
        let mut cursor = &mut *table;
        for seg in &path[..path.len() - 1] {
            let entry = cursor
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cursor = entry.as_table_mut().ok_or_else(|| ConfigError::Env {
                var: var.clone(),
                message: format!("`{seg}` is not a table"),
            })?;
        }
        if let Some(last) = path.last() {
            cursor.insert(last.clone(), value);
        }
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| raw.into()),
        Err(_) => toml::Value::String(raw.into()),
    }
}
