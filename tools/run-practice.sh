#!/usr/bin/env bash
# Sets up the machine, builds vtrain, fetches CIFAR-100 into data/ (once) and runs the whole
# practice: the eight problems in turn, then the comparison (runs/summary.md, runs/report.html).
# Extra arguments go to `vtrain train`, e.g. --max-minutes 10 or --backend vulkan; with --data PATH
# that dataset is used and nothing is downloaded (for machines without internet access).
# Problem 7 runs only with --pretrained FILE (or --pretrained none); otherwise it is skipped and the
# report says why. A second run leaves finished run folders alone: add --overwrite to redo them.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
data=data
for a in "$@"; do
  if [ "$a" = "--data" ] || [ "${a#--data=}" != "$a" ]; then data=; fi
done
if [ -n "$data" ]; then
  ./build/tools/vtrain download cifar100 --dir data
  ./build/tools/vtrain train --problem all --data data --out runs "$@"
else
  ./build/tools/vtrain train --problem all --out runs "$@"
fi
