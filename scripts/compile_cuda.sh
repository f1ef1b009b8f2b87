#!/usr/bin/env bash
# Compile every .cu file under torchsample/csrc to an object file with nvcc
# against the installed torch headers, so that a CUDA compile error fails CI
# even on a machine without a GPU (or with a CPU-only torch: its headers are
# all that is needed).  Usage: scripts/compile_cuda.sh [OUTDIR]
# Environment: NVCC (default: nvcc on PATH), CUDA_ARCH (default: sm_90).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$(mktemp -d)}"
nvcc="${NVCC:-nvcc}"
arch="${CUDA_ARCH:-sm_90}"
mkdir -p "$out"

if ! command -v "$nvcc" >/dev/null 2>&1; then
    echo "compile_cuda.sh: $nvcc not found; nothing compiled" >&2
    exit 1
fi

mapfile -t includes < <(python -c '
from torch.utils.cpp_extension import include_paths
for path in include_paths():
    print(path)
')
include_flags=()
for path in "${includes[@]}"; do
    include_flags+=(-isystem "$path")
done
# A CPU build of torch ships the c10/cuda headers but not the one CMake
# generates for CUDA builds; provide it (its content is fixed).
shim="$out/shim"
if ! python -c 'import torch, pathlib, sys; sys.exit(not (pathlib.Path(torch.__file__).parent / "include/c10/cuda/impl/cuda_cmake_macros.h").exists())'; then
    mkdir -p "$shim/c10/cuda/impl"
    echo '#define C10_CUDA_BUILD_SHARED_LIBS' > "$shim/c10/cuda/impl/cuda_cmake_macros.h"
    include_flags+=(-isystem "$shim")
fi
abi=$(python -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))')

mapfile -t sources < <(find "$repo/torchsample/csrc" -name '*.cu' | sort)
if [ "${#sources[@]}" -eq 0 ]; then
    echo "compile_cuda.sh: no .cu sources found" >&2
    exit 1
fi

for source in "${sources[@]}"; do
    object="$out/$(basename "${source%.cu}").o"
    echo "nvcc -arch=$arch ${source#"$repo"/} -> $object"
    "$nvcc" -c "$source" -o "$object" \
        -arch="$arch" -std=c++20 -O3 --expt-relaxed-constexpr -lineinfo -Xcompiler -fPIC \
        -D_GLIBCXX_USE_CXX11_ABI="$abi" -DTORCH_EXTENSION_NAME=torchsample_ops \
        -DTORCH_API_INCLUDE_EXTENSION_H \
        -I "$repo/torchsample/csrc" "${include_flags[@]}"
done
echo "compiled ${#sources[@]} CUDA source(s) into $out"
