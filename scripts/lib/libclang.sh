# libclang detection, shared by scripts/prerequisites.sh and its test (scripts/test-prerequisites.sh).
#
# RocksDB's bindings run bindgen, which loads libclang through clang-sys. clang-sys looks for
# `libclang.so`, `libclang-<version>.so`, `libclang.so.<n>` and `libclang-<version>.so.<n>`.
# `libclang-cpp.so.<n>` (Debian's libclang-cpp14, pulled in by llvm-14-dev) is the C++ API, not
# libclang: it must never count as present.

# The directories clang-sys searches on Linux, plus whatever the dynamic linker knows.
libclang_default_dirs() {
  local d
  if [ -n "${LIBCLANG_PATH:-}" ]; then echo "$LIBCLANG_PATH"; fi
  if command -v llvm-config >/dev/null 2>&1; then llvm-config --libdir 2>/dev/null || true; fi
  for d in /usr/lib/llvm-*/lib /usr/local/lib /usr/local/lib64 /usr/lib /usr/lib64 \
    /usr/lib/*-linux-gnu /lib/*-linux-gnu /lib /lib64; do
    [ -d "$d" ] && echo "$d"
  done
  if command -v ldconfig >/dev/null 2>&1; then
    ldconfig -p 2>/dev/null | sed -n 's/.*libclang.* => \(.*\)\/[^/]*$/\1/p' | sort -u
  fi
}

# True when a file name is one clang-sys would load as libclang.
libclang_is_libclang() {
  [[ "$1" =~ ^libclang(-[0-9]+(\.[0-9]+)*)?\.so(\.[0-9]+)*$ ]]
}

# libclang_status [DIR...]: prints "present <path>" (status 0) or "missing" (status 1).
# Without arguments it searches libclang_default_dirs.
libclang_status() {
  local dirs=("$@") dir f
  if [ "${#dirs[@]}" -eq 0 ]; then
    mapfile -t dirs < <(libclang_default_dirs)
  fi
  for dir in "${dirs[@]}"; do
    [ -d "$dir" ] || continue
    for f in "$dir"/libclang*.so*; do
      [ -e "$f" ] || continue
      if libclang_is_libclang "$(basename "$f")"; then
        echo "present $f"
        return 0
      fi
    done
  done
  echo "missing"
  return 1
}
