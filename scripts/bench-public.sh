#!/usr/bin/env bash
# Public read benchmark: one statusmesh node versus nginx serving the same bytes, under wrk.
# Usage: bash scripts/bench-public.sh [SECONDS] [CONNECTIONS]   (defaults 10 and 64)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prerequisites.sh
if ! command -v nginx >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
  else
    echo "error: nginx and wrk are needed; run: sudo apt-get install -y nginx-light wrk" >&2
    exit 1
  fi
fi
cargo build --workspace --all-targets
exec "$CARGO_TARGET_DIR/debug/public-bench" "$@"
