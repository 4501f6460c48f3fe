#!/usr/bin/env bash
# Checks the CUDA backend on a machine without a GPU, in three programs built here:
#  1. emu_kernels: the kernels of cuda_kernels.cu, compiled as host C++ on emu_shim.h, against the
#     CPU reference, plus the row-major-to-cuBLAS mapping;
#  2. test_cuda_ops: the backend's own tests and its C code (dispatch, options, staging, graphs) on
#     emu_runtime.cpp, a host stand-in for the CUDA runtime and cuBLAS (im2col convolutions);
#  3. test_conformance, for the cuda backend only: every op against the CPU reference through the
#     backend's dispatch, on the same stand-in.
# Usage: tests/cuda_host_emu/run.sh BUILD_DIR, where BUILD_DIR was configured with
# -DVT_BACKEND_CUDA=OFF; run.sh builds the libraries it takes from there (vt_engine, vt_backend_cpu,
# vt_conformance) and compiles the registry itself with the cuda backend in. Needs g++ with C++20,
# python3 and the CUDA headers (CUDA_HOME, default /usr/local/cuda); no driver, no GPU.
# The emulation runs one host thread per CUDA thread of a block: run it alone on a small machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR (configured with -DVT_BACKEND_CUDA=OFF)}" && pwd)
cuda=${CUDA_HOME:-/usr/local/cuda}
if ! grep -q "^VT_BACKEND_CUDA:BOOL=OFF" "$build/CMakeCache.txt" 2>/dev/null; then
  echo "run.sh: $build is not a build configured with -DVT_BACKEND_CUDA=OFF" >&2
  exit 2
fi
cmake --build "$build" -j2 --target vt_engine vt_backend_cpu vt_conformance >/dev/null
lib() {
  local f
  f=$(find "$build" -name "lib$1.a" -print -quit)
  [ -n "$f" ] || { echo "run.sh: lib$1.a not found under $build" >&2; exit 2; }
  echo "$f"
}
# The registry of the build knows no cuda; the one compiled here does (and no other GPU backend).
vtlibs=(-Wl,--start-group "$(lib vt_conformance)" "$(lib vt_backend_cpu)" "$(lib vt_engine)" -Wl,--end-group)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The kernels without their launchers (<<<>>> is nvcc syntax), on top of the host stand-ins.
sed '/\/\* ---- launchers ---- \*\//,$d' "$root/backends/cuda/cuda_kernels.cu" |
  sed 's|#include "cuda_kernels.h"|#include "emu_shim.h"\n#include "cuda_kernels.h"|' >"$tmp/kernels_host.cpp"
python3 "$here/make_launches.py" "$root/backends/cuda/cuda_kernels.cu" >"$tmp/launches.inc"
inc=(-I"$tmp" -I"$here" -I"$root/backends/cuda" -I"$root/backends/include" -I"$root/core/engine/include"
     -I"$root/core/conformance/include" -I"$cuda/include")
# shellcheck disable=SC2207 # pkg-config prints several flags
libs=($(pkg-config --libs openblas libcjson cmocka) -lm -lpthread -fopenmp)

objs=()
for f in backends/registry.c backends/cuda/cuda_backend.c backends/cuda/cuda_conv.c backends/cuda/cuda_graph.c; do
  o="$tmp/$(basename "$f" .c).o"
  gcc -std=c11 -O1 -Wall -Wextra -Werror -DVT_HAVE_CUDA=1 "${inc[@]}" -c "$root/$f" -o "$o"
  objs+=("$o")
done
g++ -std=c++20 -O1 "${inc[@]}" -c "$here/emu_runtime.cpp" -o "$tmp/emu_runtime.o"
objs+=("$tmp/emu_runtime.o")

# The kernels alone need only the CPU reference: a registry without cuda.
gcc -std=c11 -O1 "${inc[@]}" -c "$root/backends/registry.c" -o "$tmp/registry_cpu.o"
g++ -std=c++20 -O1 "${inc[@]}" "$here/emu_kernels.cpp" -o "$tmp/emu_kernels" "$tmp/registry_cpu.o" "${vtlibs[@]}" \
  "${libs[@]}"
"$tmp/emu_kernels"

for t in test_cuda_ops test_conformance; do
  gcc -std=c11 -O1 -Wall -Wextra -DVT_HAVE_CUDA=1 -DVT_SOURCE_DIR="\"$root\"" "${inc[@]}" -c "$root/tests/$t.c" \
    -o "$tmp/$t.o"
  g++ "$tmp/$t.o" "${objs[@]}" -o "$tmp/$t" "${vtlibs[@]}" "${libs[@]}"
done
"$tmp/test_cuda_ops"
VT_EMU_NO_DEVICE=1 "$tmp/test_cuda_ops" 2>&1 | grep -E "no CUDA device:|PASSED|FAILED"
VT_CONFORMANCE_BACKENDS=cuda VT_CONFORMANCE_FILTER="cuda*" "$tmp/test_conformance"
