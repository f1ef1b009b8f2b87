#!/usr/bin/env bash
# Check torchsample's CUDA kernels on a machine with a CUDA GPU and a CUDA
# build of torch already installed.  Usage: scripts/gpu_check.sh OUTDIR
#
# Steps (each logged to OUTDIR/<step>.log, a summary to OUTDIR/summary.txt):
#   1. install the package without touching dependencies,
#   2. build the extension with its CUDA sources,
#   3. run the CUDA tests,
#   4. run a small case of every kernel under compute-sanitizer (memcheck,
#      then racecheck),
#   5. run the grid-sample benchmark harness on the GPU.
# The script stops at the first failing step and says which.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
summary="$out/summary.txt"
cd "$repo"
: > "$summary"

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

step install python -m pip install --no-deps -e .
step build python -m torchsample.build
grep -q "CPU and CUDA" "$out/build.log" || {
    echo "   the extension was built without CUDA sources" | tee -a "$summary"
    exit 1
}
step cuda_tests python -m pytest -q -m cuda tests/

cat > "$out/sanitize_case.py" <<'PY'
"""Every grid-sample kernel once, small, on the GPU (for compute-sanitizer)."""
import torch
from torchsample.ops import compiled

torch.manual_seed(0)
for dims, modes in ((2, ("nearest", "bilinear", "bicubic")), (3, ("nearest", "bilinear"))):
    for mode in modes:
        for padding in ("zeros", "border", "reflection"):
            for dtype in (torch.float32, torch.float16):
                x = torch.randn(2, 3, *([5, 6, 7][:dims]), device="cuda", dtype=dtype)
                grid = torch.rand(2, *([1] * (dims - 2)), 9, 4, dims, device="cuda") * 2.4 - 1.2
                grid[0, ..., 0, 0] = float("nan")
                grid[0, ..., 1, 0] = float("inf")
                grid[0, ..., 2, 0] = -1e30
                grid = grid.to(dtype)
                x.requires_grad_()
                grid.requires_grad_()
                smooth = mode == "bilinear"
                out = compiled.grid_sample(x, grid, mode, padding, False, smooth)
                gx, gg = torch.autograd.grad(out.square().sum(), (x, grid), create_graph=True)
                torch.autograd.grad(gx.sum() + gg.nan_to_num().square().sum(), (x, grid))
            labels = torch.randint(0, 9, (2, 1, *([5, 6, 7][:dims])), device="cuda")
            compiled.grid_sample(labels, grid.detach().float(), "nearest", padding, True, False)
torch.cuda.synchronize()
print("all kernels ran")
PY
sanitizer="$(command -v compute-sanitizer || true)"
if [ -z "$sanitizer" ] && [ -n "${CUDA_HOME:-}" ]; then
    sanitizer="$CUDA_HOME/bin/compute-sanitizer"
fi
if [ -x "${sanitizer:-/nonexistent}" ]; then
    step memcheck "$sanitizer" --tool memcheck --error-exitcode 1 python "$out/sanitize_case.py"
    step racecheck "$sanitizer" --tool racecheck --error-exitcode 1 python "$out/sanitize_case.py"
else
    echo "== compute-sanitizer not found; memcheck and racecheck NOT run" | tee -a "$summary"
fi

step benchmark python -m benchmarks.grid_sample --device cuda --out "$out/grid_sample-cuda.json"
echo "all steps passed; logs in $out" | tee -a "$summary"
