#!/usr/bin/env bash
# Builds and runs emu_kernels.cpp: the CUDA kernels compiled as host C++ (no GPU needed) against the
# CPU reference. Usage: backends/cuda/host_emu/run.sh BUILD_DIR   (a build with the CUDA backend on)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
cuda=${CUDA_HOME:-/usr/local/cuda}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The kernels without their launchers (<<<>>> is nvcc syntax), on top of the host stand-ins.
sed '/\/\* ---- launchers ---- \*\//,$d' "$root/backends/cuda/cuda_kernels.cu" |
  sed 's|#include "cuda_kernels.h"|#include "emu_shim.h"\n#include "cuda_kernels.h"|' >"$tmp/kernels_host.cpp"
# shellcheck disable=SC2046 # pkg-config prints several flags
g++ -std=c++20 -O1 -I"$tmp" -I"$here" -I"$root/backends/cuda" -I"$root/core/include" -I"$cuda/include" \
  "$here/emu_kernels.cpp" -o "$tmp/emu_kernels" "$build/libvt.a" \
  $(pkg-config --libs openblas libcjson libarchive libcurl libpng libjpeg zlib) \
  -L"$cuda/lib64" -lcudart -lcublas -lcudnn -lstdc++ -lm -lpthread -fopenmp -Wl,-rpath,"$cuda/lib64"
"$tmp/emu_kernels"
