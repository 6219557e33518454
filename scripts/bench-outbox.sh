#!/usr/bin/env bash
# Outbox scale benchmark, in one process over the state machine (no network): 10,000
# subscribers x 1,000 events (snapshot size, RSS), then SUBSCRIBERS (default 1000000)
# imported: the apply time of recording an event and of each fan-out stretch, the snapshot's
# clone, encoding, size and decoding, and the RSS.
# Usage: bash scripts/bench-outbox.sh [SUBSCRIBERS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prerequisites.sh
cargo build --workspace --all-targets
exec "$CARGO_TARGET_DIR/debug/outbox-bench" "$@"
