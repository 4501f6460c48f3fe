#!/usr/bin/env bash
# One prepared check of vtrain on a machine with an NVIDIA GPU and the CUDA toolkit: build (Release,
# CUDA on, Vulkan/OpenCL when their SDKs are there), list devices, run the CUDA tests, the conformance
# suite on every backend, the cnn-pool and ResNet18 step benchmarks, and PyTorch's if torch is there.
#
#   tools/gpu-check.sh OUTDIR
#
# Everything lands in OUTDIR: one log per step, the JSON files, status.txt (step, exit code, seconds)
# and summary.txt. Each step has its own time limit; the whole run stays under about 8 minutes.
# Environment: VT_GPU_CHECK_BUILD (build folder, default build-gpu-check), VT_CUDA_ARCH (e.g. 90;
# default: the GPU's own, read from nvidia-smi), VT_GPU_CHECK_SETUP=1 to install missing Debian
# packages with tools/setup.sh first (needs apt and network), VT_GPU_CHECK_DEBS=DIR to unpack the
# .deb files in DIR over / first (root; for machines without network), VT_GPU_CHECK_BUDGET (seconds,
# default 470: no step starts or runs past it).
set -u
if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$1
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
build=${VT_GPU_CHECK_BUILD:-build-gpu-check}
t0=$(date +%s)
budget=${VT_GPU_CHECK_BUDGET:-470}
: >"$out/status.txt"

note() { echo "[gpu-check +$(( $(date +%s) - t0 ))s] $*" | tee -a "$out/summary.txt"; }

# step NAME SECONDS CMD...: runs CMD under a time limit with its output in NAME.log.
# The limit is cut to what is left of the budget; with under 5 seconds left the step is skipped (rc 125).
step() {
  local name=$1 limit=$2 s rc d left
  shift 2
  s=$(date +%s)
  left=$(( budget - (s - t0) ))
  if [ "$left" -lt 5 ]; then
    note "$name: SKIPPED, the time budget of ${budget}s is spent"
    echo "$name 125 0s" >>"$out/status.txt"
    return 125
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  note "$name: $* (limit ${limit}s)"
  timeout --kill-after=5 "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  d=$(( $(date +%s) - s ))
  [ $rc -eq 124 ] && note "$name: TIMED OUT after ${limit}s"
  echo "$name $rc ${d}s" >>"$out/status.txt"
  note "$name: exit $rc in ${d}s"
  return $rc
}

# ---- the machine ----
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -a)"
  echo "commit: $(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
  command -v nvidia-smi >/dev/null && nvidia-smi
  command -v nvcc >/dev/null && nvcc --version
  [ -x /usr/local/cuda/bin/nvcc ] && /usr/local/cuda/bin/nvcc --version
  cmake --version | head -1
  cc --version | head -1
  nproc
} >"$out/machine.txt" 2>&1

if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
if ! command -v nvcc >/dev/null; then
  note "no nvcc on PATH or in /usr/local/cuda/bin: the CUDA backend cannot be built"
fi

if [ -n "${VT_GPU_CHECK_DEBS:-}" ]; then
  for f in "$VT_GPU_CHECK_DEBS"/*.deb; do dpkg -x "$f" / || note "could not unpack $f"; done
  command -v ldconfig >/dev/null && ldconfig
fi
if [ "${VT_GPU_CHECK_SETUP:-0}" = 1 ]; then
  step setup 200 tools/setup.sh
fi

arch=${VT_CUDA_ARCH:-}
if [ -z "$arch" ] && command -v nvidia-smi >/dev/null; then
  # "9.0" -> "90": building for the GPU in hand only keeps the build short.
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
fi
archs=""
[ -n "$arch" ] && archs="-DVT_CUDA_ARCHITECTURES=${arch}-real"
gen=""
# Ninja when present, unless the build folder was made with another generator.
[ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null && gen="-G Ninja"

# ---- build ----
# shellcheck disable=SC2086
# No -Werror here: another compiler's new warnings must not cost the GPU results; they are counted.
if ! step configure 90 cmake -S . -B "$build" $gen -DCMAKE_BUILD_TYPE=Release -DVT_BACKEND_CUDA=ON $archs; then
  note "configure failed (see configure.log); missing packages? try VT_GPU_CHECK_SETUP=1"
  exit 1
fi
grep -E "vtrain (backends|cuda)" "$out/configure.log" | tee -a "$out/summary.txt"
if ! step build 200 cmake --build "$build" -j"$(nproc)"; then
  note "build failed (see build.log)"
  exit 1
fi
note "build warnings: $(grep -c 'warning:' "$out/build.log")"
vt="$build/tools/vtrain"

# ---- checks ----
step devices 30 "$vt" devices
cat "$out/devices.log" >>"$out/summary.txt"
if [ -x "$build/tests/test_cuda_ops" ]; then
  # verbose=1: the log names the cuDNN algorithm each convolution shape got.
  step test_cuda_ops 100 env VT_CUDA_OPTIONS=verbose=1 "$build/tests/test_cuda_ops"
  grep -E "FAILED|PASSED|SKIPPED TEST|graph:|repeated bit for bit" "$out/test_cuda_ops.log" | tee -a "$out/summary.txt"
fi
step conformance 90 sh -c "\"$vt\" conformance --json --markdown \"$out/op-support.md\" >\"$out/conformance.json\""
# The CUDA backend once more with its own im2col + cuBLAS convolutions (the path without cuDNN).
step conformance_cuda_im2col 60 env VT_CUDA_OPTIONS=cudnn=0 "$vt" conformance --backend cuda
tail -n 5 "$out/conformance_cuda_im2col.log" >>"$out/summary.txt"
# CUDA alone first, so that a slow backend (the CPU on ResNet18) cannot cost the GPU figures; then
# every backend side by side with fewer samples, as far as the budget goes.
step bench5_cuda 40 "$vt" bench --backend cuda --problem 5 --json "$out/bench-problem5-cuda.json"
step bench8_cuda 60 "$vt" bench --backend cuda --problem 8 --json "$out/bench-problem8-cuda.json"
step bench5_all 60 "$vt" bench --backend all --problem 5 --warmup 1 --repeats 3 --json "$out/bench-problem5.json"
step bench8_all 90 "$vt" bench --backend all --problem 8 --warmup 1 --repeats 3 --json "$out/bench-problem8.json"
for f in bench5_cuda bench8_cuda bench5_all bench8_all; do
  [ -f "$out/$f.log" ] && tail -n 15 "$out/$f.log" >>"$out/summary.txt"
done

if python3 -c "import torch" >/dev/null 2>&1; then
  dev=cpu
  python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1 && dev=cuda
  step pytorch_problem5 45 python3 tools/pytorch_ref.py --bench --problem 5 --device "$dev" --json "$out/pytorch-problem5.json"
  step pytorch_problem8 60 python3 tools/pytorch_ref.py --bench --problem 8 --device "$dev" --json "$out/pytorch-problem8.json"
else
  note "python3 has no torch: PyTorch reference skipped"
fi

note "done; status per step:"
tee -a "$out/summary.txt" <"$out/status.txt"
# Exit 1 if any step failed, so that a caller sees it.
awk '$2 != 0 { bad = 1 } END { exit bad }' "$out/status.txt"
