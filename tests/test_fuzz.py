"""Property-based agreement of every backend with the float64 reference.

Hypothesis draws shapes (empty ones included), modes, padding, align_corners,
smoothstep, dtypes, memory layouts and coordinates (some snapped to pixel
centers and cell edges, some far outside the map). Every backend that says it
can serve a request must agree with the reference evaluated in float64, for
the output and for first and second derivatives.

``TORCHSAMPLE_FUZZ_PROFILE=thorough`` runs many more examples than CI does.
"""

import os

import pytest
import torch

# A test dependency, not a runtime one: machines without it (an offline GPU
# box running scripts/gpu_check.sh) skip this module instead of failing to
# collect the suite.
pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torchsample.ops import BACKENDS, reference

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("TORCHSAMPLE_FUZZ_PROFILE", "ci"))

#: Largest difference from the float64 reference, relative to the magnitude
#: of the values involved (see docs: Sampling, numerical accuracy).
TOLERANCE = {torch.float64: 1e-9, torch.float32: 2e-4}
LAYOUTS = ("contiguous", "channels_last", "transposed", "expanded")


@st.composite
def requests(draw):
    dims = draw(st.sampled_from([2, 3]))
    mode = draw(st.sampled_from(["nearest", "bilinear", "bicubic"][: 3 if dims == 2 else 2]))
    return {
        "dims": dims,
        "mode": mode,
        "padding": draw(st.sampled_from(["zeros", "border", "reflection"])),
        "align": draw(st.booleans()),
        "smoothstep": mode == "bilinear" and draw(st.booleans()),
        "batch": draw(st.integers(0, 2)),
        "channels": draw(st.integers(1, 4)),
        "spatial": draw(st.lists(st.integers(1, 5), min_size=dims, max_size=dims)),
        "points": draw(st.lists(st.integers(0, 4), min_size=dims, max_size=dims)),
        "dtype": draw(st.sampled_from([torch.float64, torch.float32])),
        "layout": draw(st.sampled_from(LAYOUTS)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def make_tensors(r, snap):
    gen = torch.Generator().manual_seed(r["seed"])
    input = torch.randn(
        r["batch"], r["channels"], *r["spatial"], dtype=torch.float64, generator=gen
    )
    grid = (
        torch.rand(r["batch"], *r["points"], r["dims"], dtype=torch.float64, generator=gen) * 3
        - 1.5
    )
    if snap:
        # Multiples of half a pixel: pixel centers and cell edges, where floor and
        # round meet their ties.
        snapped = torch.rand(grid.shape, generator=gen) < 0.3
        size = max(r["spatial"])
        grid = torch.where(snapped, torch.round(grid * size) / size, grid)
    return input, grid


def lay_out(t, layout):
    if layout == "channels_last" and t.dim() in (4, 5):
        fmt = torch.channels_last if t.dim() == 4 else torch.channels_last_3d
        return t.contiguous(memory_format=fmt)
    if layout == "transposed":
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "expanded" and t.shape[0] > 0:
        return t[:1].expand(t.shape)
    return t


def derivatives(backend, input, grid, r):
    input = input.detach().requires_grad_()
    grid = grid.detach().requires_grad_()
    out = backend.grid_sample(input, grid, r["mode"], r["padding"], r["align"], r["smoothstep"])
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    grad_input, grad_grid = torch.autograd.grad(
        out, (input, grid), weights, create_graph=True, allow_unused=True, materialize_grads=True
    )
    loss = (grad_grid * torch.cos(grid)).sum() + (grad_input * torch.sin(input)).sum()
    # With no outputs, or nothing left in the graph, second derivatives are zero.
    # (F.grid_sample's bicubic double backward also fails on empty tensors.)
    if out.numel() == 0 or not loss.requires_grad:
        return [out, grad_input, grad_grid, torch.zeros_like(input), torch.zeros_like(grid)]
    second = torch.autograd.grad(loss, (input, grid), allow_unused=True, materialize_grads=True)
    return [out, grad_input, grad_grid, *second]


def assert_agrees(actual, expected, dtype, what):
    tolerance = TOLERANCE[dtype]
    for name, a, e in zip(
        ("output", "grad_input", "grad_grid", "grad2_input", "grad2_grid"), actual, expected
    ):
        scale = 1 + e.abs().max().item() if e.numel() else 1
        torch.testing.assert_close(
            a.double(),
            e,
            rtol=tolerance,
            atol=tolerance * scale,
            equal_nan=True,
            msg=lambda m, name=name: f"{what} {name}: {m}",
        )


@pytest.mark.parametrize("name", list(BACKENDS))
@given(r=requests())
def test_backend_agrees_with_float64_reference(name, r):
    backend = BACKENDS[name]
    # At an exact tie a rounding difference moves floor/round to the other side
    # (a different one-sided derivative, a different nearest pixel). Float32
    # rounds differently from the float64 oracle, and F.grid_sample's vectorized
    # CPU kernel orders its arithmetic differently, so ties are only compared in
    # float64 between backends that share PyTorch's scalar arithmetic.
    snap = name != "native" and r["dtype"] == torch.float64
    input64, grid64 = make_tensors(r, snap=snap)
    input = lay_out(input64.to(r["dtype"]), r["layout"])
    grid = grid64.to(r["dtype"])
    args = (input, grid, r["mode"], r["padding"], r["align"], r["smoothstep"])
    if backend.unavailable_reason() or backend.unsupported_reason(*args):
        return
    # The reference sees exactly the values the backend sees, in float64.
    expected = derivatives(reference, input.double(), grid.double(), r)
    actual = derivatives(backend, input, grid, r)
    assert_agrees(actual, expected, r["dtype"], f"{name} on {r}")
