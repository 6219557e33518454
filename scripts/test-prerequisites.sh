#!/usr/bin/env bash
# Tests the libclang check of scripts/prerequisites.sh against fake library directories
# (run by .ci/run before cargo).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/libclang.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect <present|missing> <file names...>: a directory holding exactly those files.
expect() {
  local want=$1 dir got
  shift
  dir=$(mktemp -d "$tmp/lib.XXXX")
  local f
  for f in "$@"; do : >"$dir/$f"; done
  got=$(libclang_status "$dir" || true)
  got=${got%% *}
  if [ "$got" = "$want" ]; then
    echo "ok: [$*] -> $got"
  else
    echo "FAIL: [$*] -> $got, expected $want"
    failures=$((failures + 1))
  fi
}

expect missing libclang-cpp.so.14
expect missing libclang-cpp.so.14 libclang-cpp.so
expect missing libclangBasic.a libclang-cpp14.so
expect missing
expect present libclang-14.so.1
expect present libclang.so
expect present libclang.so.1
expect present libclang-14.so
expect present libclang-14.0.6.so
expect present libclang-cpp.so.14 libclang-14.so.1

# Several directories: found in the second one.
empty=$(mktemp -d "$tmp/empty.XXXX")
full=$(mktemp -d "$tmp/full.XXXX")
: >"$full/libclang.so.14"
if [ "$(libclang_status "$empty" "$full")" = "present $full/libclang.so.14" ]; then
  echo "ok: searches every directory given"
else
  echo "FAIL: not found in the second directory"
  failures=$((failures + 1))
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures libclang check case(s) failed" >&2
  exit 1
fi
echo "libclang check: all cases pass"
