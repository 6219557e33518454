//! Rendering replies: JSON (the wire message as-is) or a readable table. The text of each
//! reply kind is in `tables`; write replies (whose JSON names the entity kind) are here.

use serde::Serialize;
use statusmesh_proto::admin::{self as pb, write_reply::Entity};

use crate::args::Output;

pub fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A reply statusctl prints: with `--output json` the wire message as it is, otherwise as
/// text for people ([`Tabular::text`], in `tables`).
pub trait Tabular: Serialize {
    fn text(&self) -> anyhow::Result<()>;
}

/// Prints `v` the way `out` asks.
pub fn show<T: Tabular>(out: Output, v: &T) -> anyhow::Result<()> {
    match out {
        Output::Json => json(v),
        Output::Table => v.text(),
    }
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<w$}", c, w = widths[i]))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

/// A new token: the reply plus the secret, which exists only here.
pub fn token_created(out: Output, w: &pb::WriteReply, secret: &str) -> anyhow::Result<()> {
    if out == Output::Json {
        let mut v = write_json(w)?;
        v["secret"] = serde_json::Value::String(secret.to_owned());
        return json(&v);
    }
    write(out, w)?;
    println!("token secret (shown once, store it now): {secret}");
    Ok(())
}

/// A write reply as `{"index", "replayed", "<kind>": {...}}`.
fn write_json(w: &pb::WriteReply) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::json!({ "index": w.index, "replayed": w.replayed });
    let (kind, entity) = match &w.entity {
        Some(Entity::Page(p)) => ("page", serde_json::to_value(p)?),
        Some(Entity::Component(c)) => ("component", serde_json::to_value(c)?),
        Some(Entity::Incident(i)) => ("incident", serde_json::to_value(i)?),
        Some(Entity::Maintenance(m)) => ("maintenance", serde_json::to_value(m)?),
        Some(Entity::Subscriber(s)) => ("subscriber", serde_json::to_value(s)?),
        Some(Entity::DeletedId(id)) => ("deleted_id", serde_json::to_value(id)?),
        Some(Entity::EventId(id)) => ("event_id", serde_json::to_value(id)?),
        Some(Entity::Requeued(n)) => ("requeued", serde_json::to_value(n)?),
        Some(Entity::Token(t)) => ("token", serde_json::to_value(t)?),
        None => return Ok(v),
    };
    v[kind] = entity;
    Ok(v)
}

pub fn write(out: Output, w: &pb::WriteReply) -> anyhow::Result<()> {
    if out == Output::Json {
        return json(&write_json(w)?);
    }
    let replay = if w.replayed {
        " (replayed: already applied)"
    } else {
        ""
    };
    match &w.entity {
        Some(Entity::Page(p)) => println!("page {:?} updated ({}){replay}", p.name, p.description),
        Some(Entity::Component(c)) => {
            println!("component {} {:?} is {}{replay}", c.id, c.name, c.status)
        }
        Some(Entity::Incident(i)) => println!(
            "incident {} {:?} is {} (impact {}){replay}",
            i.id, i.name, i.status, i.impact
        ),
        Some(Entity::Maintenance(m)) => println!(
            "maintenance {} {:?} is {} ({} .. {}){replay}",
            m.id, m.name, m.status, m.scheduled_for, m.scheduled_until
        ),
        Some(Entity::Subscriber(s)) => {
            println!("subscriber {} -> {} is {}{replay}", s.id, s.url, s.state);
            if !s.secret.ends_with("****") {
                println!("signing secret (shown once, store it now): {}", s.secret);
            }
            if let Some(until) = &s.previous_secret_until {
                println!("the previous secret keeps signing until {until}");
            }
        }
        Some(Entity::DeletedId(id)) => println!("{id} deleted{replay}"),
        Some(Entity::EventId(id)) => println!("event {id} queued{replay}"),
        Some(Entity::Requeued(n)) => println!("{n} deliveries queued again{replay}"),
        Some(Entity::Token(t)) => match &t.revoked_at {
            Some(at) => println!("token {} revoked at {at}{replay}", t.name),
            None => println!("token {} ({}) created{replay}", t.name, t.role),
        },
        None => println!("done{replay}"),
    }
    println!("committed at index {}", w.index);
    Ok(())
}

pub fn members(members: &[pb::Member]) {
    table(
        &["ID", "REGION", "ROLE", "PEER", "ADMIN", "PUBLIC", "MATCHED"],
        members
            .iter()
            .map(|m| {
                vec![
                    m.id.to_string(),
                    m.region.clone(),
                    m.role.clone(),
                    m.peer_addr.clone(),
                    m.admin_addr.clone(),
                    m.public_addr.clone(),
                    m.matched_index.to_string(),
                ]
            })
            .collect(),
    );
}

mod tables;
