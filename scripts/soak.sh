#!/usr/bin/env bash
# Chaos soak: a 5-node cluster under random faults (SIGKILL + restart, SIGSTOP/SIGCONT,
# blackholed or reset links, WAN latency) for MINUTES (default 2, at most 120), with writers,
# linearizable readers and public readers; then the fault suite's invariants are checked.
# Usage: bash scripts/soak.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prerequisites.sh
cargo build --workspace --all-targets
SOAK_MINUTES="${1:-2}" exec cargo test -p statusmesh-tests --test faults -- \
  --ignored --nocapture soak_random_faults
