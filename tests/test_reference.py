"""The reference backend against F.grid_sample, and its smoothstep derivatives."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from torchsample.ops import reference

MODES_2D = ["nearest", "bilinear", "bicubic"]
MODES_3D = ["nearest", "bilinear"]
PADDINGS = ["zeros", "border", "reflection"]
CASES = [(2, m, p, a) for m, p, a in itertools.product(MODES_2D, PADDINGS, [False, True])] + [
    (3, m, p, a) for m, p, a in itertools.product(MODES_3D, PADDINGS, [False, True])
]


def make_inputs(dims, batch=2, channels=3, points=(4, 5), dtype=torch.float64, spread=1.3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    spatial = (5, 7) if dims == 2 else (4, 5, 6)
    input = torch.randn(batch, channels, *spatial, dtype=dtype, generator=gen)
    grid_shape = (batch, *points, dims) if dims == 2 else (batch, 2, *points, dims)
    # Reach past [-1, 1] so that every padding mode matters.
    grid = (torch.rand(grid_shape, dtype=dtype, generator=gen) * 2 - 1) * spread
    return input.requires_grad_(), grid.requires_grad_()


def derivatives(fn, input, grid):
    """Output, first derivatives, and second derivatives of a loss on the first ones."""
    out = fn(input, grid)
    grad_out = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    grad_input, grad_grid = torch.autograd.grad(out, (input, grid), grad_out, create_graph=True)
    # Weighted so a swapped or mis-scaled term cannot cancel out.
    loss = (grad_grid**2).sum() + (grad_input * torch.cos(input)).sum() + (grad_grid * grid).sum()
    second = torch.autograd.grad(loss, (input, grid), allow_unused=True, materialize_grads=True)
    return [out, grad_input, grad_grid, *second]


@pytest.mark.parametrize("dims,mode,padding,align", CASES)
def test_matches_native_to_second_order(dims, mode, padding, align):
    input, grid = make_inputs(dims)

    def native(i, g):
        return F.grid_sample(i, g, mode=mode, padding_mode=padding, align_corners=align)

    def ours(i, g):
        return reference.grid_sample(i, g, mode, padding, align, False)

    expected = derivatives(native, input, grid)
    actual = derivatives(ours, input, grid)
    names = ["output", "grad_input", "grad_grid", "grad2_input", "grad2_grid"]
    for name, e, a in zip(names, expected, actual):
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-9, msg=name)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("align", [False, True])
def test_smoothstep_gradcheck_and_gradgradcheck(dims, padding, align):
    input, grid = make_inputs(dims, batch=1, channels=2, points=(2, 3), spread=1.1)

    def fn(i, g):
        return reference.grid_sample(i, g, "bilinear", padding, align, True)

    assert torch.autograd.gradcheck(fn, (input, grid))
    assert torch.autograd.gradgradcheck(fn, (input, grid))


def test_smoothstep_replaces_linear_weight():
    # A 1x2 map whose value is the weight of its right pixel.
    input = torch.tensor([[[[0.0, 1.0]]]], dtype=torch.float64)
    x = torch.linspace(-0.5, 0.5, 11, dtype=torch.float64)  # between the two centers
    grid = torch.stack([x, torch.zeros_like(x)], -1).reshape(1, 1, -1, 2)
    t = x + 0.5
    linear = reference.grid_sample(input, grid, "bilinear", "zeros", False, False).flatten()
    smooth = reference.grid_sample(input, grid, "bilinear", "zeros", False, True).flatten()
    torch.testing.assert_close(linear, t)
    torch.testing.assert_close(smooth, t * t * (3 - 2 * t))


def test_smoothstep_gradient_vanishes_at_pixel_centers():
    input = torch.tensor([[[[0.0, 1.0, 5.0]]]], dtype=torch.float64)
    centers = torch.tensor([-2 / 3, 0.0, 2 / 3], dtype=torch.float64)
    grid = torch.stack([centers, torch.zeros_like(centers)], -1).reshape(1, 1, 3, 2)
    grid.requires_grad_()
    out = reference.grid_sample(input, grid, "bilinear", "border", False, True)
    (grad,) = torch.autograd.grad(out.sum(), grid)
    torch.testing.assert_close(grad, torch.zeros_like(grad))


HOSTILE = [float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 1.0, -1.0, 1 + 1e-7, -1 - 1e-7]


@pytest.mark.parametrize("mode", MODES_3D)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("align", [False, True])
def test_hostile_coordinates_match_native_scalar_kernel_3d(mode, padding, align):
    # PyTorch's 3D CPU kernel is the scalar one the reference follows step by step,
    # so they agree even for NaN and infinite coordinates.
    input = torch.randn(1, 2, 3, 4, 5, dtype=torch.float64)
    values = torch.tensor(HOSTILE, dtype=torch.float64)
    for axis in range(3):
        grid = torch.full((1, 1, 1, len(HOSTILE), 3), 0.3, dtype=torch.float64)
        grid[..., axis] = values
        expected = F.grid_sample(input, grid, mode=mode, padding_mode=padding, align_corners=align)
        actual = reference.grid_sample(input, grid, mode, padding, align, False)
        torch.testing.assert_close(actual, expected, equal_nan=True)


@pytest.mark.parametrize("mode", MODES_2D)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("align", [False, True])
def test_huge_and_edge_coordinates_match_native_2d(mode, padding, align):
    # PyTorch's vectorized 2D CPU kernel differs from its scalar kernels for
    # non-finite coordinates, and it does not reflect 1e30 with an exact fmod
    # (no reflection of such a value is meaningful), so those are left out here.
    limit = 1e3 if padding == "reflection" else float("inf")
    finite = [v for v in HOSTILE if abs(v) < limit]
    input = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    grid = torch.tensor([[(v, w) for v in finite for w in (0.3, v)]], dtype=torch.float64)
    grid = grid.reshape(1, 1, -1, 2)
    expected = F.grid_sample(input, grid, mode=mode, padding_mode=padding, align_corners=align)
    actual = reference.grid_sample(input, grid, mode, padding, align, False)
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64, torch.bool])
@pytest.mark.parametrize("dims", [2, 3])
def test_integer_maps_nearest_are_exact(dtype, dims):
    spatial = (3, 4) if dims == 2 else (2, 3, 4)
    labels = torch.randint(0, 200, (2, 1, *spatial)).to(dtype)
    as_float = labels.double()
    grid = make_inputs(dims)[1].detach()
    actual = reference.grid_sample(labels, grid, "nearest", "zeros", False, False)
    expected = F.grid_sample(
        as_float, grid, mode="nearest", padding_mode="zeros", align_corners=False
    )
    assert actual.dtype == dtype
    assert torch.equal(actual.double(), expected)


@pytest.mark.parametrize("dims", [2, 3])
def test_empty_batch_and_zero_points(dims):
    input, grid = make_inputs(dims)
    empty_batch = reference.grid_sample(input[:0], grid[:0], "bilinear", "zeros", False, False)
    assert empty_batch.shape == (0, 3, *grid.shape[1:-1])
    no_points = grid[:, :0]
    out = reference.grid_sample(input, no_points, "bilinear", "zeros", False, True)
    assert out.shape == (2, 3, *no_points.shape[1:-1])
