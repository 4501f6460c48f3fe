#!/bin/sh
# Runs test_reliability N times and totals its kill -9 figures (the numbers in docs/reliability.md).
# usage: tests/reliability/soak.sh BUILD_DIR [N]     (BUILD_DIR holds tests/test_reliability)
set -u
build=${1:?usage: soak.sh BUILD_DIR [N]}
n=${2:-10}
bin="$build/tests/test_reliability"
[ -x "$bin" ] || { echo "soak.sh: $bin is not built" >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
runs=0 failed=0 kills=0 mid=0
i=0
while [ "$i" -lt "$n" ]; do
    i=$((i + 1))
    if "$bin" > "$log" 2>&1; then :; else failed=$((failed + 1)); echo "run $i failed:"; grep -E 'FAILED|ERROR' "$log"; fi
    runs=$((runs + 1))
    # "kill -9: 25 kills survived, 9 landed while a checkpoint was being written ..."
    line=$(grep '^kill -9:' "$log" || true)
    k=$(echo "$line" | sed -n 's/^kill -9: \([0-9]*\) kills survived.*/\1/p')
    m=$(echo "$line" | sed -n 's/.*survived, \([0-9]*\) landed.*/\1/p')
    kills=$((kills + ${k:-0}))
    mid=$((mid + ${m:-0}))
    echo "run $i: ${line:-no kill -9 figures}"
done
echo "soak: $runs runs, $failed failed; kill -9: $kills survived, $mid of them mid-write"
[ "$failed" -eq 0 ]
