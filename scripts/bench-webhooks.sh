#!/usr/bin/env bash
# Webhook fan-out benchmark: one incident update to N subscribers (default 100000, imported) on a
# loopback receiver, from a real 3-node cluster, against the receiver's raw POST ceiling (wrk).
# Usage: bash scripts/bench-webhooks.sh [SUBSCRIBERS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prerequisites.sh
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "error: wrk is needed; run: sudo apt-get install -y wrk" >&2
    exit 1
  fi
fi
cargo build --workspace --all-targets
exec "$CARGO_TARGET_DIR/debug/webhook-bench" "$@"
