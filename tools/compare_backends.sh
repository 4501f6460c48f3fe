#!/usr/bin/env bash
# Trains the same problems with the same seed on every backend given and prints one Markdown table
# of test accuracy and time per backend, so a backend can be checked against the CPU on real data.
# Usage: tools/compare_backends.sh VTRAIN DATA OUTDIR "cpu opencl vulkan" "1 2 3 4 5 6" [vtrain train flags...]
#
# With VT_SEEDS="1 2 3 42" it trains every seed (into OUTDIR/sSEED/BACKEND/PROBLEM; runs already there
# are kept), prints one table per seed, then one table of the final accuracy over the seeds per backend
# (mean, lowest and highest) and of the differences to the first backend: the largest at one seed and
# the difference of the means. A backend whose arithmetic rounds differently ends each run elsewhere;
# the seed-to-seed spread of the first backend shows how far that alone moves a result.
set -euo pipefail
vtrain=$1 data=$2 out=$3 backends=$4 problems=$5
shift 5
mkdir -p "$out"

train_all() { # DIR [flags...]
  local dir=$1
  shift
  for b in $backends; do
    for p in $problems; do
      [ -n "${VT_SEEDS:-}" ] && [ -f "$dir/$b/$p/summary.json" ] && continue
      "$vtrain" train --problem "$p" --backend "$b" --data "$data" --out "$dir/$b/$p" --quiet --no-checkpoints "$@" \
        > "$dir/$b-$p.log" 2>&1 || { echo "problem $p on $b failed:"; tail -3 "$dir/$b-$p.log"; }
    done
  done
}

table() { # DIR...: one table per DIR, then (more than one DIR) the table over them
  python3 - "$backends" "$problems" "$@" <<'PY'
import json, os, sys
backends, problems, dirs = sys.argv[1].split(), sys.argv[2].split(), sys.argv[3:]
def acc(d, b, p):
    f = os.path.join(d, b, p, "summary.json")
    return json.load(open(f)) if os.path.exists(f) else None
for d in dirs:
    if len(dirs) > 1:
        print(f"\n{os.path.basename(d)}:\n")
    print("| problem | " + " | ".join(f"{b} acc % | {b} s" for b in backends) + " | max diff vs " + backends[0] + " |")
    print("|---" * (2 * len(backends) + 2) + "|")
    for p in problems:
        row, accs, name = [], [], p
        for b in backends:
            s = acc(d, b, p)
            if s:
                name = s.get("problem", p)
                accs.append(s["final_test_acc"])
                row += [f"{s['final_test_acc']:.2f}", f"{s['seconds_per_epoch'] * s['epochs']:.0f}"]
            else:
                accs.append(None)
                row += ["failed", "-"]
        diffs = [abs(a - accs[0]) for a in accs[1:] if a is not None and accs[0] is not None]
        print(f"| {name} | " + " | ".join(row) + f" | {max(diffs) if diffs else 0:.2f} |")
if len(dirs) < 2:
    sys.exit(0)
print(f"\nfinal test accuracy over {len(dirs)} seeds: mean (lowest-highest); differences to {backends[0]}:"
      " largest at one seed / of the means\n")
print("| problem | " + " | ".join(backends) + " | " + " | ".join(f"{b} - {backends[0]}" for b in backends[1:]) + " |")
print("|---" * (1 + 2 * len(backends) - 1) + "|")
for p in problems:
    per = {b: [acc(d, b, p) for d in dirs] for b in backends}
    name = next((s["problem"] for b in backends for s in per[b] if s), p)
    cells, means = [], {}
    for b in backends:
        v = [s["final_test_acc"] for s in per[b] if s]
        if not v:
            cells.append("-")
            continue
        means[b] = sum(v) / len(v)
        cells.append(f"{means[b]:.2f} ({min(v):.2f}-{max(v):.2f})" + ("" if len(v) == len(dirs) else f" [{len(v)} runs]"))
    for b in backends[1:]:
        pairs = [(x["final_test_acc"], y["final_test_acc"]) for x, y in zip(per[backends[0]], per[b]) if x and y]
        if not pairs or b not in means or backends[0] not in means:
            cells.append("-")
            continue
        worst = max((y - x for x, y in pairs), key=abs)
        cells.append(f"{worst:+.2f} / {means[b] - means[backends[0]]:+.2f}")
    print(f"| {name} | " + " | ".join(cells) + " |")
PY
}

if [ -z "${VT_SEEDS:-}" ]; then
  train_all "$out" "$@"
  table "$out"
  exit 0
fi
dirs=()
for s in $VT_SEEDS; do
  mkdir -p "$out/s$s"
  train_all "$out/s$s" "$@" --seed "$s"
  dirs+=("$out/s$s")
done
table "${dirs[@]}"
