#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time (default 60 s each) and reports executions and
# findings. Needs the nightly toolchain (rustup) and cargo-fuzz (installed here if missing).
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-60}"
source scripts/prerequisites.sh
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzzing needs the nightly toolchain: rustup toolchain install nightly" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/statusmesh-fuzz-target}"
# Seeds: a deploy example config, encoded proposals.
mkdir -p fuzz/corpus/config_parse fuzz/corpus/log_entry fuzz/corpus/admin_request
cp deploy/examples/*.toml fuzz/corpus/config_parse/
CARGO_TARGET_DIR="${STATUSMESH_TARGET_DIR:-$HOME/.cache/statusmesh-target}" \
  cargo run -q -p statusmesh-model --example fuzz_seeds -- fuzz/corpus/log_entry
status=0
for target in config_parse admin_request log_entry; do
  log="$CARGO_TARGET_DIR/fuzz-$target.log"
  echo "== $target: ${SECONDS_EACH}s"
  if cargo +nightly fuzz run --sanitizer none "$target" "fuzz/corpus/$target" -- \
      -max_total_time="$SECONDS_EACH" -print_final_stats=1 >"$log" 2>&1; then
    echo "   no findings"
  else
    echo "   FINDING (or failure): see $log and fuzz/artifacts/$target/"
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov: " "$log" | tail -3 | sed 's/^/   /' || true
done
exit $status
