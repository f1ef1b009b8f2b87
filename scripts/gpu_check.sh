#!/usr/bin/env bash
# Check torchsample's CUDA kernels on an offline GPU machine that has a CUDA
# build of torch and nvcc (no network, no installs, no build isolation).
#
#   scripts/gpu_check.sh OUTDIR check   build, CUDA tests, compute-sanitizer
#   scripts/gpu_check.sh OUTDIR bench   the benchmark harnesses on the GPU
#   scripts/gpu_check.sh OUTDIR         both, one after the other
#
# Each phase fits in one call of under 8 minutes on an H100/H200. Every step
# logs to OUTDIR/<step>.log and one line to OUTDIR/summary.txt; the script
# stops at the first failing step and says which. A missing compute-sanitizer
# is a failure, not a pass. The CUDA kernels are built with -lineinfo, so
# sanitizer reports name source lines. The package is used from this checkout
# through PYTHONPATH (nothing is installed), and the extension is built into
# .gpu-cache/ inside the checkout, so the bench phase reuses the build of the
# check phase when it runs on the same machine.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 OUTDIR [check|bench]" >&2
    exit 2
fi
phase="${2:-all}"
case "$phase" in check|bench|all) ;; *) echo "unknown phase: $phase" >&2; exit 2 ;; esac
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
summary="$out/summary.txt"
cd "$repo"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export TORCHSAMPLE_CACHE_DIR="$repo/.gpu-cache"
# The kernels built from this checkout, never ones an in-place build left beside them.
export TORCHSAMPLE_KERNELS=jit
echo "== phase $phase at $(git rev-parse --short HEAD 2>/dev/null || echo '?')" >> "$summary"

step() {
    local name="$1"
    shift
    echo "== $name: $*" | tee -a "$summary"
    local start=$SECONDS
    if "$@" > "$out/$name.log" 2>&1; then
        echo "   ok ($((SECONDS - start)) s)" | tee -a "$summary"
    else
        echo "   FAILED ($((SECONDS - start)) s), see $out/$name.log" | tee -a "$summary"
        tail -n 40 "$out/$name.log" >&2
        exit 1
    fi
}

step device python -c '
import torch
assert torch.cuda.is_available(), "no CUDA device visible to torch"
print(torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))
'
cat "$out/device.log" >> "$summary"

# The build must contain CUDA kernels: a CPU-only build would make every CUDA
# test below pass on the fallback backends.
step build python -c '
import torch
from torchsample import _extension
from torchsample.ops import compiled
_extension.load()
assert compiled.unavailable_reason() is None, compiled.unavailable_reason()
x = torch.zeros(1, 1, 2, 2, device="cuda")
g = torch.zeros(1, 1, 1, 2, device="cuda")
import torchsample as ts
choice = ts.which_backend(x, g)
assert choice.name == "compiled", choice
print("compiled backend serves CUDA tensors:", choice)
'

if [ "$phase" != bench ]; then
    step cuda_tests python -m pytest -q -p no:cacheprovider -m cuda tests/

    cat > "$out/sanitize_case.py" <<'PY'
"""Every kernel once, small, on the GPU, for compute-sanitizer.

``fps`` runs only the farthest-point kernel (the one that uses shared
memory, for racecheck); ``all`` runs every grid-sample kernel as well.
"""
import sys

import torch

import torchsample as ts
from torchsample.ops import compiled

torch.manual_seed(0)
which = sys.argv[1]
cloud = torch.rand(3, 700, 3, device="cuda")
ts.points.farthest_point_sample(cloud, 40, lengths=torch.tensor([700, 300, 41], device="cuda"))
if which == "all":
    for dims, modes in ((2, ("nearest", "bilinear", "bicubic")), (3, ("nearest", "bilinear"))):
        for mode in modes:
            for padding in ("zeros", "border", "reflection"):
                for dtype in (torch.float32, torch.float16):
                    x = torch.randn(2, 3, *([5, 6, 7][:dims]), device="cuda", dtype=dtype)
                    shape = (2, *([1] * (dims - 2)), 9, 4, dims)
                    grid = torch.rand(shape, device="cuda") * 2.4 - 1.2
                    grid[0, ..., 0, 0] = float("nan")
                    grid[0, ..., 1, 0] = float("inf")
                    grid[0, ..., 2, 0] = -1e30
                    grid = grid.to(dtype).requires_grad_()
                    x.requires_grad_()
                    smooth = mode == "bilinear"
                    out = compiled.grid_sample(x, grid, mode, padding, False, smooth)
                    gx, gg = torch.autograd.grad(out.square().sum(), (x, grid),
                                                 create_graph=True)
                    torch.autograd.grad(gx.sum() + gg.nan_to_num().square().sum(), (x, grid))
                labels = torch.randint(0, 9, (2, 1, *([5, 6, 7][:dims])), device="cuda")
                compiled.grid_sample(labels, grid.detach().float(), "nearest", padding, True,
                                     False)
            # Channels-last and sliced maps take the other indexing paths.
            x = torch.randn(2, 6, *([5, 6, 7][:dims]), device="cuda")
            layout = torch.channels_last if dims == 2 else torch.channels_last_3d
            for view in (x[:, ::2], x.contiguous(memory_format=layout)):
                view = view.detach().requires_grad_()
                out = compiled.grid_sample(view, grid.detach().float(), "bilinear", "zeros",
                                           False, False)
                out.sum().backward()
torch.cuda.synchronize()
print("kernels ran:", which)
PY
    sanitizer="$(command -v compute-sanitizer || true)"
    if [ -z "$sanitizer" ]; then
        for home in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do
            if [ -n "$home" ] && [ -x "$home/bin/compute-sanitizer" ]; then
                sanitizer="$home/bin/compute-sanitizer"
                break
            fi
        done
    fi
    if [ -z "$sanitizer" ]; then
        echo "== compute-sanitizer not found (PATH, CUDA_HOME, /usr/local/cuda): FAILED" \
            | tee -a "$summary"
        exit 1
    fi
    # The caching allocator hides out-of-bounds accesses inside its blocks.
    export PYTORCH_NO_CUDA_MEMORY_CACHING=1
    step memcheck "$sanitizer" --tool memcheck --leak-check no --error-exitcode 1 \
        python "$out/sanitize_case.py" all
    step racecheck "$sanitizer" --tool racecheck --error-exitcode 1 \
        python "$out/sanitize_case.py" fps
    unset PYTORCH_NO_CUDA_MEMORY_CACHING
fi

if [ "$phase" != check ]; then
    # 3D first: the workloads the compiled kernels are built for.
    step bench_3d timeout 210 python -m benchmarks.grid_sample --device cuda --filter 3d \
        --out "$out/grid_sample-cuda-3d.json"
    step bench_2d timeout 180 python -m benchmarks.grid_sample --device cuda --filter 2d \
        --out "$out/grid_sample-cuda-2d.json"
fi
echo "phase $phase: all steps passed; logs in $out" | tee -a "$summary"
