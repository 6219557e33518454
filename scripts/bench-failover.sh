#!/usr/bin/env bash
# Failover benchmark: repeatedly SIGKILLs the leader of a 3-node `lan` cluster on loopback and
# measures the time to the first acknowledged write through a surviving node.
# Usage: bash scripts/bench-failover.sh [RUNS]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prerequisites.sh
cargo build --workspace --all-targets
exec "$CARGO_TARGET_DIR/debug/failover-bench" "${1:-10}"
