//! What the node's background workers share: a named span whose `state` field says what the
//! worker is doing (so every line it logs carries it), and one small jittered backoff for
//! their waits and retries, so that several workers or several nodes never fall into step.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tracing::Instrument as _;

/// Runs `body` as the worker `name`: in its span, which `body` gets to record states on.
pub async fn run<F, Fut>(name: &'static str, body: F)
where
    F: FnOnce(WorkerSpan) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let span = WorkerSpan::new(name);
    let inner = span.span.clone();
    body(span).instrument(inner).await;
}

/// A worker's span, `worker=<name>` with a `state` recorded by [`set_state`], and the state
/// last recorded on it.
///
/// Invariant: a state is recorded only when it changes. The log formatter appends every
/// recorded value to the span's fields rather than replacing the old one, so a worker that
/// recorded its state on every loop would grow the span (memory, and every line it logs)
/// without bound.
#[derive(Debug, Clone)]
pub struct WorkerSpan {
    span: tracing::Span,
    state: Arc<Mutex<&'static str>>,
}

impl WorkerSpan {
    fn new(name: &'static str) -> Self {
        WorkerSpan {
            span: tracing::info_span!("worker", worker = name, state = tracing::field::Empty),
            state: Arc::new(Mutex::new("")),
        }
    }
}

/// Records what the worker is doing now on its span, if that changed: every line it logs
/// from then on carries the state.
pub fn set_state(span: &WorkerSpan, state: &'static str) {
    let mut last = span
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *last != state {
        *last = state;
        span.span.record("state", state);
    }
}

/// Jitter applied to every wait: up to this fraction either way.
const JITTER: f64 = 0.2;

/// A wait that starts at `initial`, doubles after every use up to `max`, and is jittered by
/// up to ±20%. [`Backoff::reset`] starts again from `initial` (after progress).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: max.max(initial),
            next: initial,
        }
    }

    /// The next wait (jittered), then doubles the base for the one after.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(rand::rng().random_range(1.0 - JITTER..=1.0 + JITTER))
    }

    /// Sleeps for [`Backoff::next_delay`].
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_state_recorded_again_and_again_appears_once_on_the_workers_lines() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let w = WorkerSpan::new("test_worker");
            let _in = w.span.enter();
            for _ in 0..100 {
                set_state(&w, "watching");
            }
            set_state(&w, "leaderless");
            tracing::info!("first");
            for _ in 0..100 {
                set_state(&w, "leaderless");
            }
            tracing::info!("second");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in lines {
            assert_eq!(line.matches("state=").count(), 2, "{line}");
            assert_eq!(line.matches("state=\"watching\"").count(), 1, "{line}");
        }
    }

    fn within(d: Duration, base_ms: u64) -> bool {
        let ms = d.as_secs_f64() * 1000.0;
        let base = base_ms as f64;
        ms >= base * (1.0 - JITTER) - 0.001 && ms <= base * (1.0 + JITTER) + 0.001
    }

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        for base in [100, 200, 350, 350] {
            let d = b.next_delay();
            assert!(within(d, base), "{d:?} is not within 20% of {base} ms");
        }
        b.reset();
        let d = b.next_delay();
        assert!(within(d, 100), "{d:?} after reset");
    }

    #[test]
    fn jitter_spreads_waits_apart() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            seen.insert(
                Backoff::new(Duration::from_secs(1), Duration::from_secs(1))
                    .next_delay()
                    .as_micros(),
            );
        }
        assert!(seen.len() > 10, "only {} distinct waits", seen.len());
    }

    #[test]
    fn degenerate_bounds_are_made_usable() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert!(b.next_delay() >= Duration::from_micros(800));
    }
}
