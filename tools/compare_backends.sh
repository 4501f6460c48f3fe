#!/usr/bin/env bash
# Trains the same problems with the same seed on every backend given and prints one Markdown table
# of test accuracy and time per backend, so a backend can be checked against the CPU on real data.
# Usage: tools/compare_backends.sh VTRAIN DATA OUTDIR "cpu opencl vulkan" "1 2 3 4 5 6" [vtrain train flags...]
set -euo pipefail
vtrain=$1 data=$2 out=$3 backends=$4 problems=$5
shift 5
mkdir -p "$out"
for b in $backends; do
  for p in $problems; do
    "$vtrain" train --problem "$p" --backend "$b" --data "$data" --out "$out/$b/$p" --quiet --no-checkpoints "$@" \
      > "$out/$b-$p.log" 2>&1 || { echo "problem $p on $b failed:"; tail -3 "$out/$b-$p.log"; }
  done
done
python3 - "$out" "$backends" "$problems" <<'PY'
import json, os, sys
out, backends, problems = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
print("| problem | " + " | ".join(f"{b} acc % | {b} s" for b in backends) + " | max diff vs " + backends[0] + " |")
print("|---" * (2 * len(backends) + 2) + "|")
for p in problems:
    row, accs = [], []
    name = p
    for b in backends:
        f = os.path.join(out, b, p, "summary.json")
        if os.path.exists(f):
            s = json.load(open(f))
            name = s.get("problem", p)
            accs.append(s["final_test_acc"])
            row += [f"{s['final_test_acc']:.2f}", f"{s['seconds_per_epoch'] * s['epochs']:.0f}"]
        else:
            accs.append(None)
            row += ["failed", "-"]
    diffs = [abs(a - accs[0]) for a in accs[1:] if a is not None and accs[0] is not None]
    print(f"| {name} | " + " | ".join(row) + f" | {max(diffs) if diffs else 0:.2f} |")
PY
