#!/usr/bin/env bash
# The main job: build (first run: ~15 minutes, RocksDB's C++) and start the 3-region demo.
# Extra arguments go to `statusmesh demo` (e.g. --data-dir, --public-port).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prerequisites.sh
# --all-targets: the same feature set as the tests, so both reuse one RocksDB build.
cargo build --workspace --all-targets
exec "$CARGO_TARGET_DIR/debug/statusmesh" demo "$@"
