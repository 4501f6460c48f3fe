#!/usr/bin/env bash
# Builds every libFuzzer harness (tests/fuzz/fuzz_*.c) with clang + ASan/UBSan and runs each for a
# bounded time. Usage: tools/fuzz.sh BUILD_DIR SECONDS. Crashes land in BUILD_DIR/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
secs=${2:-30}
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DVT_FUZZ=ON -DVT_SANITIZE=ON -DVT_TESTS=OFF \
  -DVT_BACKEND_OPENCL=OFF -DVT_BACKEND_VULKAN=OFF -DVT_BACKEND_CUDA=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"
mkdir -p "$build/crashes"
pass=0
fail=0
for bin in "$build"/tests/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus="$build/corpus/$name"
  mkdir -p "$corpus"
  seeds=()
  [ -d "tests/fuzz/corpus/$name" ] && seeds+=("tests/fuzz/corpus/$name")
  if "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -artifact_prefix="$build/crashes/$name-" "$corpus" "${seeds[@]}" \
      >"$build/$name.log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$build/$name.log" | tail -1 || true)
    echo "fuzz $name: ok (${runs:-?} in ${secs}s)"
    pass=$((pass + 1))
  else
    echo "fuzz $name: FAILED (see $build/$name.log)"
    tail -30 "$build/$name.log"
    fail=$((fail + 1))
  fi
done
echo "fuzzers: $pass ok, $fail crashed"
[ "$fail" -eq 0 ]
