#!/usr/bin/env bash
# Makes sure this machine can build statusmesh: a Rust toolchain and libclang (RocksDB's
# bindings run bindgen). Installs libclang with apt-get when running as root, otherwise stops
# with the exact command to run. Sourced by scripts/demo.sh and .ci/run.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust (https://rustup.rs) and retry" >&2
  exit 1
fi

have_libclang() {
  ldconfig -p 2>/dev/null | grep -Eq 'libclang(-[0-9.]+)?\.so' ||
    ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1
}

if ! have_libclang; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing libclang-dev (needed to build RocksDB's bindings)..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
  else
    echo "error: libclang is missing; run: sudo apt-get install -y libclang-dev" >&2
    exit 1
  fi
fi

# One target directory for the demo, the tests and the benchmarks, so RocksDB's C++ (about
# 12-15 minutes on 2 cores) is compiled once per machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/statusmesh-target}"
