"""Measured accuracy of each backend in reduced precision against float64.

The bounds are the ones documented in docs/accuracy.rst (keep them in step):
the largest error of the output and of both gradients, relative to the
largest magnitude of the float64 value, on a representative case with
coordinates spread over and slightly beyond the map.
"""

import pytest
import torch

from torchsample.ops import BACKENDS, reference

FLOAT32 = {"output": 1e-5, "grad_input": 1e-5, "grad_grid": 1e-5}
# Half types: the compiled kernels accumulate in float32; native and reference
# compute the source index itself in half precision, so their grid gradient
# carries no usable accuracy.
BOUNDS = {
    ("compiled", torch.float32): FLOAT32,
    ("compiled", torch.float16): {"output": 1e-3, "grad_input": 1e-3, "grad_grid": 1e-3},
    ("compiled", torch.bfloat16): {"output": 1e-2, "grad_input": 1e-2, "grad_grid": 1e-2},
    ("native", torch.float32): FLOAT32,
    ("native", torch.float16): {"output": 5e-2, "grad_input": 5e-2, "grad_grid": 2.0},
    ("native", torch.bfloat16): {"output": 0.3, "grad_input": 0.2, "grad_grid": 3.0},
    ("reference", torch.float32): FLOAT32,
    ("reference", torch.float16): {"output": 5e-2, "grad_input": 5e-2, "grad_grid": 2.0},
    ("reference", torch.bfloat16): {"output": 0.3, "grad_input": 0.2, "grad_grid": 3.0},
}


def relative_errors(name, dtype, dims, smoothstep):
    gen = torch.Generator().manual_seed(0)
    spatial = (32, 32) if dims == 2 else (16, 16, 16)
    input = torch.randn(2, 4, *spatial, dtype=torch.float64, generator=gen).to(dtype)
    grid = torch.rand(2, *([1] * (dims - 1)), 512, dims, dtype=torch.float64, generator=gen)
    grid = (grid * 2.2 - 1.1).to(dtype)
    backend = BACKENDS[name]
    args = ("bilinear", "border", False, smoothstep)
    if backend.unavailable_reason() or backend.unsupported_reason(input, grid, *args):
        pytest.skip(f"{name} does not serve {dtype} with smoothstep={smoothstep}")

    def run(fn, i, g):
        i, g = i.detach().requires_grad_(), g.detach().requires_grad_()
        out = fn(i, g, *args)
        weights = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).reshape(out.shape)
        grads = torch.autograd.grad(out, (i, g), weights.to(out.dtype))
        return [out.double(), *(t.double() for t in grads)]

    # The oracle sees the same rounded inputs, so only the arithmetic differs.
    expected = run(reference.grid_sample, input.double(), grid.double())
    actual = run(backend.grid_sample, input, grid)
    return {
        what: ((a - e).abs().max() / e.abs().max()).item()
        for what, a, e in zip(("output", "grad_input", "grad_grid"), actual, expected)
    }


CASES = [
    (name, dtype, dims, smoothstep)
    for name, dtype in BOUNDS
    for dims in (2, 3)
    for smoothstep in ((False,) if name == "native" else (False, True))
]


@pytest.mark.parametrize("name,dtype,dims,smoothstep", CASES)
def test_error_within_documented_bound(name, dtype, dims, smoothstep):
    errors = relative_errors(name, dtype, dims, smoothstep)
    bounds = BOUNDS[name, dtype]
    for what, error in errors.items():
        assert error <= bounds[what], f"{name} {dtype} {what}: {error:.2e} > {bounds[what]:.0e}"
