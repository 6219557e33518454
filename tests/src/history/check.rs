//! The linearizability checker for the workload's history.
//!
//! The model is a set whose elements are added once, each by a unique name, and removed at most
//! once, only after their add was acknowledged. A read is one atomic look at the set somewhere
//! between its invocation and its completion. For such a set linearizability reduces to checks
//! per element on the recorded history:
//! - a read contains no element whose add was invoked after the read completed;
//! - once an element is certainly in the set (its add was acknowledged, or a completed read saw
//!   it), every read invoked afterwards contains it until its removal is invoked;
//! - once an element is certainly gone (its removal was acknowledged, or a read invoked after it
//!   was certainly present lacked it), no read invoked afterwards contains it.
//!
//! The workload has a single reader, so reads are also ordered among themselves.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{Op, OpKind};

/// What the history says about one element.
#[derive(Default)]
struct Element<'a> {
    add: Option<&'a Op>,
    add_acked: bool,
    remove: Option<&'a Op>,
    remove_acked: bool,
    /// Indices (in invocation order) of the reads that contained it.
    seen: Vec<usize>,
}

/// Checks the history against the set model (see the module docs). Returns the violations
/// found, at most 20; empty when the history is linearizable.
pub fn check_linearizable(ops: &[Op]) -> Vec<String> {
    let mut reads: Vec<(&Op, &std::collections::BTreeSet<String>)> = ops
        .iter()
        .filter_map(|o| match &o.kind {
            OpKind::Read { names } => Some((o, names)),
            _ => None,
        })
        .collect();
    reads.sort_by_key(|(o, _)| o.invoke);
    let mut elements: BTreeMap<&str, Element> = BTreeMap::new();
    for o in ops {
        match &o.kind {
            OpKind::Add { name, acked } => {
                let e = elements.entry(name.as_str()).or_default();
                e.add = Some(o);
                e.add_acked = *acked;
            }
            OpKind::Remove { name, acked } => {
                let e = elements.entry(name.as_str()).or_default();
                e.remove = Some(o);
                e.remove_acked = *acked;
            }
            OpKind::Read { .. } => {}
        }
    }
    let mut problems = Vec::new();
    for (i, (r, names)) in reads.iter().enumerate() {
        for name in names.iter() {
            match elements.get_mut(name.as_str()) {
                Some(e) if e.add.is_some() => {
                    if e.add.is_some_and(|a| a.invoke > r.complete) {
                        problems.push(format!("read returned {name} before it was added"));
                    }
                    e.seen.push(i);
                }
                _ => problems.push(format!("read returned {name}, which nobody added")),
            }
        }
    }
    for (name, e) in &elements {
        let Some(add) = e.add else {
            problems.push(format!("{name} was removed but never added"));
            continue;
        };
        if let Some(rm) = e.remove {
            if !e.add_acked || rm.invoke < add.complete {
                problems.push(format!(
                    "the workload removed {name} before its add was acknowledged"
                ));
            }
        }
        // Certainly present from here on.
        let seen_at = e.seen.first().map(|&i| reads[i].0.complete);
        let acked_at = e.add_acked.then_some(add.complete);
        let Some(present) = [seen_at, acked_at].into_iter().flatten().min() else {
            continue;
        };
        let removal_invoked = e.remove.map(|r| r.invoke);
        let mut gone: Option<Instant> = e.remove.filter(|_| e.remove_acked).map(|r| r.complete);
        let start = reads.partition_point(|(r, _)| r.invoke <= present);
        for (r, names) in &reads[start..] {
            if gone.is_some_and(|g| r.invoke > g) {
                break;
            }
            if names.contains(*name) {
                continue;
            }
            if removal_invoked.is_none_or(|t| r.complete < t) {
                problems.push(format!(
                    "lost or stale: {name} was certainly in the set before a read began but the read lacks it"
                ));
                break;
            }
            // The removal took effect before this read's end.
            gone = Some(gone.map_or(r.complete, |g| g.min(r.complete)));
        }
        if let Some(g) = gone {
            if e.seen.iter().any(|&i| reads[i].0.invoke > g) {
                problems.push(format!("{name} came back after it was removed"));
            }
        }
    }
    problems.truncate(20);
    problems
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn op(kind: OpKind, invoke: u64, complete: u64, t0: Instant) -> Op {
        Op {
            kind,
            invoke: t0 + Duration::from_millis(invoke),
            complete: t0 + Duration::from_millis(complete),
        }
    }

    fn add(name: &str, acked: bool) -> OpKind {
        OpKind::Add {
            name: name.into(),
            acked,
        }
    }

    fn remove(name: &str, acked: bool) -> OpKind {
        OpKind::Remove {
            name: name.into(),
            acked,
        }
    }

    fn rd(names: &[&str]) -> OpKind {
        OpKind::Read {
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn first(ops: &[Op]) -> String {
        check_linearizable(ops).first().cloned().unwrap_or_default()
    }

    #[test]
    fn linearizable_histories_pass() {
        let t = Instant::now();
        let ok = vec![
            op(add("a", true), 0, 10, t),
            op(rd(&["a"]), 20, 30, t),
            op(add("b", false), 25, 40, t),
            // b was never acknowledged: it may show up (it did commit) or not.
            op(rd(&["a", "b"]), 50, 60, t),
            op(remove("a", true), 70, 80, t),
            op(rd(&["b"]), 90, 100, t),
        ];
        assert_eq!(check_linearizable(&ok), Vec::<String>::new());
        // A read concurrent with a removal may or may not see the element; a removal that
        // was never acknowledged may have taken effect.
        let racing = vec![
            op(add("a", true), 0, 10, t),
            op(remove("a", false), 20, 200, t),
            op(rd(&["a"]), 30, 40, t),
            op(rd(&[]), 50, 60, t),
            op(rd(&[]), 70, 80, t),
        ];
        assert_eq!(check_linearizable(&racing), Vec::<String>::new());
    }

    #[test]
    fn violations_are_caught() {
        let t = Instant::now();
        let lost = vec![op(add("a", true), 0, 10, t), op(rd(&[]), 20, 30, t)];
        assert!(first(&lost).contains("lost"));
        let future = vec![op(rd(&["a"]), 0, 10, t), op(add("a", true), 20, 30, t)];
        assert!(first(&future).contains("before it was added"));
        let backwards = vec![
            op(add("a", false), 0, 100, t),
            op(rd(&["a"]), 10, 20, t),
            op(rd(&[]), 30, 40, t),
        ];
        assert!(first(&backwards).contains("lost"));
        let unknown = vec![op(rd(&["z"]), 0, 10, t)];
        assert!(first(&unknown).contains("nobody added"));
        let after_removal = vec![
            op(add("a", true), 0, 10, t),
            op(remove("a", true), 20, 30, t),
            op(rd(&["a"]), 40, 50, t),
        ];
        assert!(first(&after_removal).contains("came back"));
        let resurrected = vec![
            op(add("a", true), 0, 10, t),
            op(remove("a", false), 20, 500, t),
            op(rd(&[]), 30, 40, t),
            op(rd(&["a"]), 50, 60, t),
        ];
        assert!(first(&resurrected).contains("came back"));
        let early_removal = vec![
            op(add("a", false), 0, 10, t),
            op(remove("a", true), 20, 30, t),
        ];
        assert!(first(&early_removal).contains("before its add was acknowledged"));
    }
}
