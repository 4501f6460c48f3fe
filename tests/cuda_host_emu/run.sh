#!/usr/bin/env bash
# Checks the CUDA backend on a machine without a GPU, in two programs built here:
#  1. emu_kernels: the kernels of cuda_kernels.cu, compiled as host C++ on emu_shim.h, against the
#     CPU reference, plus the row-major-to-cuBLAS mapping;
#  2. test_cuda_ops: the real test file and the backend's C code (dispatch, staging, graphs) on
#     emu_runtime.cpp, a host stand-in for the CUDA runtime and cuBLAS (im2col convolutions).
# Usage: tests/cuda_host_emu/run.sh BUILD_DIR, where BUILD_DIR was configured with
# -DVT_BACKEND_CUDA=OFF (its libvt.a gives the core and the CPU reference). Needs g++ with C++20,
# python3 and the CUDA headers (CUDA_HOME, default /usr/local/cuda); no driver, no GPU.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR (configured with -DVT_BACKEND_CUDA=OFF)}" && pwd)
cuda=${CUDA_HOME:-/usr/local/cuda}
if grep -q "VT_BACKEND_CUDA:BOOL=ON" "$build/CMakeCache.txt" 2>/dev/null; then
  echo "run.sh: $build has the CUDA backend on; configure one with -DVT_BACKEND_CUDA=OFF" >&2
  exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The kernels without their launchers (<<<>>> is nvcc syntax), on top of the host stand-ins.
sed '/\/\* ---- launchers ---- \*\//,$d' "$root/backends/cuda/cuda_kernels.cu" |
  sed 's|#include "cuda_kernels.h"|#include "emu_shim.h"\n#include "cuda_kernels.h"|' >"$tmp/kernels_host.cpp"
python3 "$here/make_launches.py" "$root/backends/cuda/cuda_kernels.cu" >"$tmp/launches.inc"
inc=(-I"$tmp" -I"$here" -I"$root/backends/cuda" -I"$root/core/include" -I"$cuda/include")
# shellcheck disable=SC2207 # pkg-config prints several flags
libs=($(pkg-config --libs openblas libcjson libarchive libcurl libpng libjpeg zlib cmocka) -lm -lpthread -fopenmp)
# the build's other backends, when it has them (libvt.a's registry refers to them)
if grep -q "^VT_BACKEND_OPENCL:BOOL=ON" "$build/CMakeCache.txt"; then libs+=(-lclblast -lOpenCL); fi
if grep -q "^VT_BACKEND_VULKAN:BOOL=ON" "$build/CMakeCache.txt"; then libs+=(-lvulkan); fi

g++ -std=c++20 -O1 "${inc[@]}" "$here/emu_kernels.cpp" -o "$tmp/emu_kernels" "$build/libvt.a" "${libs[@]}"
"$tmp/emu_kernels"

objs=()
for f in backends/cuda/cuda_backend.c backends/cuda/cuda_conv.c backends/cuda/cuda_graph.c core/engine/src/backend.c \
         tests/test_cuda_ops.c; do
  o="$tmp/$(basename "$f" .c).o"
  gcc -std=c11 -O1 -Wall -Wextra -DVT_HAVE_CUDA=1 -DVT_SOURCE_DIR="\"$root\"" "${inc[@]}" -c "$root/$f" -o "$o"
  objs+=("$o")
done
g++ -std=c++20 -O1 "${inc[@]}" -c "$here/emu_runtime.cpp" -o "$tmp/emu_runtime.o"
g++ "${objs[@]}" "$tmp/emu_runtime.o" -o "$tmp/test_cuda_ops" "$build/libvt.a" "${libs[@]}"
"$tmp/test_cuda_ops"
VT_EMU_NO_DEVICE=1 "$tmp/test_cuda_ops" 2>&1 | grep -E "no CUDA device:|PASSED|FAILED"
