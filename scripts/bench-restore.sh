#!/usr/bin/env bash
# Restore benchmark: a backup of about MIB MiB (default 256) restored into a real 3-node
# cluster on the given timing profile (default wan); prints the time until every node holds
# the backup's digest, the throughput and each node's peak RSS.
# Usage: bash scripts/bench-restore.sh [MIB] [lan|wan]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prerequisites.sh
cargo build --workspace --all-targets
exec "$CARGO_TARGET_DIR/debug/restore-bench" "${1:-256}" "${2:-wan}"
