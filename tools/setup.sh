#!/usr/bin/env bash
# Installs what vtrain needs to build, test and run on Debian 12 (run as root, or with sudo).
# CUDA is optional: the CUDA backend is built when nvcc and the CUDA toolkit are already present.
# Open MPI is for data-parallel training (any MPI-3 library works; without one, vtrain runs single-process).
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config clang libclang-rt-14-dev python3 valgrind
  libopenblas-dev libcmocka-dev libcjson-dev libarchive-dev libcurl4-openssl-dev
  libpng-dev libjpeg-dev zlib1g-dev
  ocl-icd-opencl-dev opencl-headers libclblast-dev pocl-opencl-icd clinfo
  libvulkan-dev mesa-vulkan-drivers glslang-tools vulkan-validationlayers vulkan-tools
  libopenmpi-dev openmpi-bin
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: all ${#pkgs[@]} packages present"
