"""Hostile values and layouts: every backend agrees and nothing crashes."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import torchsample as ts
from torchsample.ops import BACKENDS, reference

NON_FINITE = [float("nan"), float("inf"), -float("inf")]
HUGE_AND_EDGES = [1e30, -1e30, 1.0, -1.0, 1 + 1e-6, -1 - 1e-6, 1 - 1e-6]
MODES = {2: ["nearest", "bilinear", "bicubic"], 3: ["nearest", "bilinear"]}
REQUESTS = [
    (dims, mode, padding, align, smooth)
    for dims in (2, 3)
    for mode, padding, align in itertools.product(
        MODES[dims], ["zeros", "border", "reflection"], [False, True]
    )
    for smooth in ((False, True) if mode == "bilinear" else (False,))
]


def serving(input, grid, *args):
    """Backends that say they can serve this call."""
    return [
        (name, b)
        for name, b in BACKENDS.items()
        if not (b.unavailable_reason() or b.unsupported_reason(input, grid, *args))
    ]


def grid_with(values, dims, dtype=torch.float64):
    """One point per value on each axis in turn; the other axes at 0.3."""
    points = []
    for axis in range(dims):
        for v in values:
            p = [0.3] * dims
            p[axis] = v
            points.append(p)
    return torch.tensor(points, dtype=dtype).reshape(1, *([1] * (dims - 1)), -1, dims)


@pytest.mark.parametrize("dims,mode,padding,align,smooth", REQUESTS)
def test_coordinates_at_and_beyond_the_limits(dims, mode, padding, align, smooth):
    input = torch.randn(1, 3, *([4, 5, 6][:dims]), dtype=torch.float64).requires_grad_()
    grid = grid_with(NON_FINITE + HUGE_AND_EDGES, dims).requires_grad_()
    args = (mode, padding, align, smooth)
    expected = reference.grid_sample(input, grid, *args)
    expected_grads = torch.autograd.grad(
        expected.nan_to_num().sum(), (input, grid), allow_unused=True, materialize_grads=True
    )
    for name, backend in serving(input, grid, *args):
        out = backend.grid_sample(input, grid, *args)
        if name == "native":
            # F.grid_sample's kernels disagree with each other on non-finite
            # coordinates (see docs/accuracy.rst), and its 2D CPU kernel does not
            # reflect 1e30 with an exact fmod: compare the other coordinates.
            limit = 1e3 if padding == "reflection" else float("inf")
            finite = (grid.abs() < limit).all(-1).unsqueeze(1)
            torch.testing.assert_close(
                out[finite.expand_as(out)], expected[finite.expand_as(out)], equal_nan=True
            )
            continue
        torch.testing.assert_close(out, expected, equal_nan=True, msg=name)
        grads = torch.autograd.grad(
            out.nan_to_num().sum(), (input, grid), allow_unused=True, materialize_grads=True
        )
        for what, g, e in zip(("grad_input", "grad_grid"), grads, expected_grads):
            torch.testing.assert_close(g, e, equal_nan=True, msg=f"{name} {what}")


@pytest.mark.parametrize(
    "input_shape,grid_shape",
    [
        ((0, 3, 4, 5), (0, 2, 2, 2)),  # empty batch
        ((2, 3, 4, 5), (2, 0, 7, 2)),  # zero points
        ((2, 0, 4, 5), (2, 3, 3, 2)),  # zero channels
        ((2, 3, 1, 1), (2, 3, 3, 2)),  # one pixel
        ((2, 3, 1, 6), (2, 3, 3, 2)),  # one row
        ((0, 2, 3, 4, 5), (0, 1, 2, 2, 3)),
        ((1, 2, 3, 4, 5), (1, 0, 2, 2, 3)),
        ((1, 0, 3, 4, 5), (1, 1, 2, 2, 3)),
        ((1, 2, 1, 1, 1), (1, 1, 2, 2, 3)),
    ],
)
def test_degenerate_shapes(input_shape, grid_shape):
    gen = torch.Generator().manual_seed(0)
    input = torch.randn(input_shape, dtype=torch.float64, generator=gen).requires_grad_()
    grid = torch.rand(grid_shape, dtype=torch.float64, generator=gen) * 2.4 - 1.2
    grid.requires_grad_()
    for smooth in (False, True):
        args = ("bilinear", "border", False, smooth)
        expected = reference.grid_sample(input, grid, *args)
        for name, backend in serving(input, grid, *args):
            out = backend.grid_sample(input, grid, *args)
            assert out.shape == (input_shape[0], input_shape[1], *grid_shape[1:-1])
            torch.testing.assert_close(out, expected, msg=name)
            grads = torch.autograd.grad(
                out.sum(), (input, grid), allow_unused=True, materialize_grads=True
            )
            assert grads[0].shape == input.shape and grads[1].shape == grid.shape


LAYOUTS = {
    "channels_last": lambda t: t.contiguous(memory_format=torch.channels_last),
    "transposed": lambda t: t.transpose(-1, -2).contiguous().transpose(-1, -2),
    "sliced": lambda t: torch.cat([t, t], -1)[..., ::2],
    "expanded": lambda t: t[:1].expand(t.shape),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_memory_layouts(layout):
    gen = torch.Generator().manual_seed(0)
    input = torch.randn(3, 4, 6, 7, dtype=torch.float64, generator=gen)
    grid = torch.rand(3, 5, 4, 2, dtype=torch.float64, generator=gen) * 2 - 1
    strided = LAYOUTS[layout](input).requires_grad_()
    dense = strided.detach().contiguous().requires_grad_()
    grid_strided = LAYOUTS["transposed"](grid).requires_grad_()
    for smooth in (False, True):
        args = ("bilinear", "zeros", True, smooth)
        expected = reference.grid_sample(dense, grid_strided.detach(), *args)
        for name, backend in serving(strided, grid_strided, *args):
            out = backend.grid_sample(strided, grid_strided, *args)
            torch.testing.assert_close(out, expected, msg=f"{name} {layout}")
            (grad_input,) = torch.autograd.grad(out.sum(), strided)
            (expected_grad,) = torch.autograd.grad(
                reference.grid_sample(dense, grid_strided.detach(), *args).sum(), dense
            )
            torch.testing.assert_close(grad_input, expected_grad, msg=f"{name} {layout}")


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int64, torch.bool])
def test_integer_maps_through_every_backend(dtype):
    labels = torch.randint(0, 2, (2, 1, 5, 6)).to(dtype)
    grid = torch.rand(2, 3, 4, 2, dtype=torch.float32) * 2.4 - 1.2
    expected = F.grid_sample(labels.double(), grid.double(), mode="nearest", align_corners=False)
    out = ts.grid_sample(labels, grid, mode="nearest")
    assert out.dtype == dtype and torch.equal(out.double(), expected)
    for name, backend in serving(labels, grid, "nearest", "zeros", False, False):
        out = backend.grid_sample(labels, grid, "nearest", "zeros", False, False)
        assert out.dtype == dtype and torch.equal(out.double(), expected), name


def test_mixed_float_dtypes_are_a_clear_error():
    with pytest.raises(TypeError, match="input torch.float16 and grid torch.float32; cast"):
        ts.grid_sample(torch.zeros(1, 1, 2, 2, dtype=torch.float16), torch.zeros(1, 1, 1, 2))
