#!/usr/bin/env bash
# Failover benchmark: repeatedly SIGKILLs the leader of a 3-node cluster on loopback and measures
# the time to the first acknowledged write through a survivor, for statusmesh (lan and wan
# profiles, counting failed public reads) and for etcd at the same heartbeat/election settings.
# Usage: bash scripts/bench-failover.sh [RUNS] [lan|wan|both]   (defaults 5 and both)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prerequisites.sh
if ! command -v etcd >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
  else
    echo "error: etcd is needed; run: sudo apt-get install -y etcd-server" >&2
    exit 1
  fi
fi
cargo build --workspace --all-targets
exec "$CARGO_TARGET_DIR/debug/failover-bench" "${1:-5}" "${2:-both}"
