#!/usr/bin/env bash
# Email fan-out benchmark: one incident update mailed to N email subscribers (default 100000,
# imported) through a local aiosmtpd relay, from a real 3-node cluster, against the same relay's
# ceiling with a bare lettre client in the same run.
# Usage: bash scripts/bench-email.sh [SUBSCRIBERS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prerequisites.sh
cargo build --workspace --all-targets
exec "$CARGO_TARGET_DIR/debug/email-bench" "$@"
