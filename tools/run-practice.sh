#!/usr/bin/env bash
# Sets up the machine, builds vtrain, fetches CIFAR-100 into data/ (once) and runs the whole
# practice: the eight problems in turn, then the comparison (runs/summary.md, runs/report.html).
# Extra arguments go to `vtrain train`, e.g. --max-minutes 10 or --backend vulkan.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
./build/tools/vtrain download cifar100 --dir data
./build/tools/vtrain train --problem all --data data --out runs "$@"
