#!/usr/bin/env bash
# Makes sure this machine can build statusmesh: a Rust toolchain and libclang (RocksDB's
# bindings run bindgen, which loads libclang through clang-sys). Installs libclang-dev with
# apt-get when running as root, otherwise stops before cargo with the exact command to run.
# Sourced by scripts/demo.sh and .ci/run.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust (https://rustup.rs) and retry" >&2
  exit 1
fi

source "$(dirname "${BASH_SOURCE[0]}")/lib/libclang.sh"

# Installs Debian packages as root, or stops with the command to run. $1 says why.
apt_install() {
  local why=$1
  shift
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $* ($why)..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "error: $why; run: sudo apt-get install -y $*" >&2
    exit 1
  fi
}

if ! libclang_status >/dev/null; then
  apt_install "libclang is missing (RocksDB's bindings need it)" libclang-dev
  if ! found=$(libclang_status); then
    echo "error: libclang-dev is installed but no libclang.so was found in: $(libclang_default_dirs | sort -u | tr '\n' ' ')" >&2
    exit 1
  fi
  echo "libclang: ${found#present }"
fi

# One target directory for the demo, the tests and the benchmarks, so RocksDB's C++ (about
# 18 minutes on 2 cores) is compiled once per machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/statusmesh-target}"
