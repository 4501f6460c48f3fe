#!/usr/bin/env bash
# Sets up the machine, builds vtrain with warnings as errors and runs the whole test suite
# (CMocka tests through ctest, including the conformance suite on every backend present): first the
# correctness suite (labels unit, backend, e2e) in parallel, then the performance tests (label perf)
# one at a time, apart, so that their figures are not measured on a machine busy with other tests.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
build=${VT_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DVT_WERROR=ON ${VT_CMAKE_ARGS:-}
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 900 -LE perf
ctest --output-on-failure -j1 --timeout 900 -L perf
