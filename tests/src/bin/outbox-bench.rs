//! Outbox scale benchmark, in one process over the replicated state machine itself (the model's
//! `State::apply`, the state format's encode and decode; no network): the figures that follow
//! subscribers and events, not the network.
//!
//! 1. 10,000 subscribers × 1,000 events, every fan-out walked to the end: the snapshot's size
//!    and the process's RSS.
//! 2. N subscribers (default 1,000,000) imported in entries of 2,000: how long recording an
//!    event takes to apply, how long each fan-out stretch of 2,000 recipients takes, what a
//!    snapshot costs (the clone taken under the replica lock, the encoding, its size, the
//!    decoding a restarted node does) and the RSS.
//!
//! Usage: outbox-bench [SUBSCRIBERS]   (scripts/bench-outbox.sh builds and runs it)

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use statusmesh_model::command::{ImportedSubscriber, NewSubscriber};
use statusmesh_model::outbox::{FanoutProgress, QuarantinePolicy};
use statusmesh_model::{format, Command, ComponentStatus, Id, PayloadFormat, Proposal, State};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const POLICY: QuarantinePolicy = QuarantinePolicy {
    failures: 10,
    window_ms: 3_600_000,
};

struct Log {
    state: State,
    index: u64,
    now: i64,
}

impl Log {
    fn new() -> Self {
        Log {
            state: State::default(),
            index: 0,
            now: 1_800_000_000_000,
        }
    }

    /// Applies `command` as the next entry; returns how long the apply took.
    fn apply(&mut self, command: Command) -> Duration {
        self.index += 1;
        self.now += 10;
        let mut p = Proposal::internal(format!("bench-{}", self.index), "bench", 1, command);
        p.at = statusmesh_model::Timestamp(self.now);
        let t = Instant::now();
        let out = self.state.apply(self.index, &p);
        let took = t.elapsed();
        if let Err(e) = out.result {
            panic!("entry {} refused: {e}", self.index);
        }
        took
    }

    fn import(&mut self, from: usize, n: usize) -> Duration {
        let rows = (from..from + n)
            .map(|i| ImportedSubscriber {
                id: Id::parse("id", &format!("sub{i:07}")).unwrap(),
                spec: NewSubscriber {
                    url: format!("https://hooks.example.com/s/{i}"),
                    component_ids: vec![],
                    description: None,
                    secret: SECRET.into(),
                    format: PayloadFormat::Statuspage,
                    owner: None,
                },
            })
            .collect();
        self.apply(Command::ImportSubscribers {
            first_row: from as u64,
            subscribers: rows,
        })
    }

    fn component(&mut self) -> Id {
        let id = Id::parse("id", "api").unwrap();
        if !self.state.components.contains_key(&id) {
            self.apply(Command::CreateComponent {
                id: id.clone(),
                spec: statusmesh_model::command::NewComponent {
                    name: "API".into(),
                    description: None,
                    position: None,
                    status: ComponentStatus::Operational,
                    group_id: None,
                    is_group: false,
                    showcase: true,
                    only_show_if_degraded: false,
                },
            });
        }
        id
    }

    /// One event (a component status change); returns the apply time and its sequence number.
    fn event(&mut self, status: ComponentStatus) -> (Duration, u64) {
        let id = self.component();
        let took = self.apply(Command::SetComponentStatus { id, status });
        (took, *self.state.outbox.events.keys().next_back().unwrap())
    }

    /// Walks `seq`'s fan-out to the end in stretches of `stretch` recipients, all delivered;
    /// returns the slowest stretch's apply time and the number of stretches.
    fn walk(&mut self, seq: u64, stretch: usize) -> (Duration, usize) {
        let mut slowest = Duration::ZERO;
        let mut n = 0;
        loop {
            let Some(f) = self.state.outbox.events[&seq].fanout.clone() else {
                return (slowest, n);
            };
            let through = self
                .state
                .subscribers_between(f.after.as_ref(), None)
                .take(stretch)
                .last()
                .map(|s| s.id.clone());
            let complete = self
                .state
                .subscribers_between(through.as_ref(), None)
                .next()
                .is_none();
            let took = self.apply(Command::RecordAttempts {
                policy: POLICY,
                reports: vec![],
                progress: vec![FanoutProgress {
                    event: seq,
                    from: f.after,
                    through,
                    complete,
                    failed: vec![],
                    deferred: vec![],
                }],
            });
            slowest = slowest.max(took);
            n += 1;
        }
    }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("SUBSCRIBERS is a number"))
        .unwrap_or(1_000_000)
        .clamp(2_000, statusmesh_model::limits::MAX_SUBSCRIBERS);
    println!("outbox scale benchmark (in process, this build's profile)\n");
    println!(
        "rss at start                              {:>9.1} MiB",
        rss_mib()
    );

    // 1. 10,000 subscribers x 1,000 events.
    {
        let mut log = Log::new();
        for chunk in 0..5 {
            log.import(chunk * 2_000, 2_000);
        }
        let t = Instant::now();
        for i in 0..1_000 {
            let status = if i % 2 == 0 {
                ComponentStatus::MajorOutage
            } else {
                ComponentStatus::Operational
            };
            let (_, seq) = log.event(status);
            log.walk(seq, 2_000);
        }
        let events = log.state.outbox.events.len();
        let snapshot = format::encode_state(&log.state).unwrap();
        println!(
            "10,000 subscribers x 1,000 events ({events} kept, every fan-out walked, {:.1} s)",
            t.elapsed().as_secs_f64()
        );
        println!(
            "  snapshot                                {:>9.1} MiB   target <= 50 MB: {}",
            snapshot.len() as f64 / 1048576.0,
            verdict(snapshot.len() <= 50_000_000)
        );
        println!(
            "  process rss                             {:>9.1} MiB   target <= 200 MB: {}",
            rss_mib(),
            verdict(rss_mib() <= 200.0)
        );
    }

    // 2. N subscribers.
    let mut log = Log::new();
    let t = Instant::now();
    let mut slowest_import = Duration::ZERO;
    for from in (0..n).step_by(2_000) {
        slowest_import = slowest_import.max(log.import(from, 2_000.min(n - from)));
    }
    println!(
        "\n{n} subscribers, imported in entries of 2,000 ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    println!(
        "  slowest import entry apply              {:>9.1} ms",
        ms(slowest_import)
    );
    let rss_state = rss_mib();
    println!("  process rss with the state              {rss_state:>9.1} MiB   target <= 1 GiB per node: {}", verdict(rss_state <= 1024.0));
    let mut slowest_event = Duration::ZERO;
    let mut seq = 0;
    for i in 0..5 {
        let (took, s) = log.event(if i % 2 == 0 {
            ComponentStatus::MajorOutage
        } else {
            ComponentStatus::Operational
        });
        slowest_event = slowest_event.max(took);
        seq = s;
    }
    println!(
        "  recording an event (apply, slowest of 5){:>9.3} ms   target <= 50 ms: {}",
        ms(slowest_event),
        verdict(slowest_event <= Duration::from_millis(50))
    );
    let t = Instant::now();
    let (slowest_stretch, stretches) = log.walk(seq, 2_000);
    println!(
        "  one fan-out walked: {stretches} stretches in {:.1} s, slowest stretch apply {:.1} ms",
        t.elapsed().as_secs_f64(),
        ms(slowest_stretch)
    );
    let t = Instant::now();
    let copy = log.state.clone();
    let clone = t.elapsed();
    let t = Instant::now();
    let bytes = format::encode_state(&copy).unwrap();
    let encode = t.elapsed();
    drop(copy);
    println!(
        "  snapshot: clone {:.1} ms (the replica lock is held for this), encode {:.1} s, {:.1} MiB",
        ms(clone),
        encode.as_secs_f64(),
        bytes.len() as f64 / 1048576.0
    );
    println!(
        "  snapshot build (clone + encode) <= 10 s: {}; lock held a few ms: {}",
        verdict(clone + encode <= Duration::from_secs(10)),
        verdict(clone <= Duration::from_millis(10))
    );
    let t = Instant::now();
    let decoded = format::decode_state(&bytes).unwrap();
    println!(
        "  decode (what a restarted node reads)    {:>9.1} s    ({} subscribers)",
        t.elapsed().as_secs_f64(),
        decoded.subscribers.len()
    );
    println!(
        "  process rss at the end                  {:>9.1} MiB",
        rss_mib()
    );
}
