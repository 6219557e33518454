//! What the benchmarks read about processes from `/proc`: CPU time and memory.

use crate::TestCluster;

/// User + system CPU time of process `pid` (a number, or `self`), in milliseconds.
pub fn cpu_ms(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10
}

/// The CPU time of every node, then of this process, in milliseconds.
pub fn cpu_all(cluster: &TestCluster) -> Vec<u64> {
    let mut v: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|n| n.pid().map_or(0, |p| cpu_ms(&p.to_string())))
        .collect();
    v.push(cpu_ms("self"));
    v
}

/// `field` of a process's `/proc/PID/status` (`VmRSS:`, or `VmHWM:` for the peak), in KiB.
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `field` (`VmRSS:`, or `VmHWM:` for the peak) of every node, in KiB (0 for a stopped one).
pub fn nodes_kib(cluster: &TestCluster, field: &str) -> Vec<u64> {
    cluster
        .nodes
        .iter()
        .map(|n| n.pid().map_or(0, |p| proc_kib(p, field)))
        .collect()
}

/// KiB figures as `a / b / c` MiB.
pub fn mib_list(kib: &[u64]) -> String {
    kib.iter()
        .map(|k| format!("{:.0}", *k as f64 / 1024.0))
        .collect::<Vec<_>>()
        .join(" / ")
}
