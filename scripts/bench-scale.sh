#!/usr/bin/env bash
# Outbox scale on a real 3-node cluster: SUBSCRIBERS (default 1000000) imported, every node's
# RSS (peak included), a follower SIGKILLed and restarted (time until it serves the leader's
# index), a new member added after the log was purged (time until it serves it).
# Usage: bash scripts/bench-scale.sh [SUBSCRIBERS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prerequisites.sh
cargo build --workspace --all-targets
exec "$CARGO_TARGET_DIR/debug/scale-bench" "$@"
