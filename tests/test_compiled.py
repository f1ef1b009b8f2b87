"""The compiled (C++/CUDA) grid-sampling backend against F.grid_sample and the reference."""

import itertools
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from torchsample import _extension
from torchsample.ops import compiled, reference

# The compiled backend must really be built and active here: a failed build
# fails this module instead of skipping it.
_extension.load()
assert compiled.unavailable_reason() is None

OPS = torch.ops.torchsample
CUDA = pytest.mark.cuda
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CASES_2D = list(
    itertools.product(
        [2], ["nearest", "bilinear", "bicubic"], ["zeros", "border", "reflection"], [False, True]
    )
)
CASES_3D = list(
    itertools.product(
        [3], ["nearest", "bilinear"], ["zeros", "border", "reflection"], [False, True]
    )
)
ALL_CASES = CASES_2D + CASES_3D


def _case_id(case):
    dims, mode, padding, align = case
    return f"{dims}d-{mode}-{padding}-{'ac' if align else 'noac'}"


def make_inputs(
    dims, points=(3, 4), channels=3, batch=2, dtype=torch.float64, spread=1.15, seed=0, device="cpu"
):
    gen = torch.Generator().manual_seed(seed)
    spatial = (4, 5) if dims == 2 else (3, 4, 5)
    x = torch.randn(batch, channels, *spatial, generator=gen, dtype=dtype)
    grid_shape = (batch, *points, dims) if dims == 2 else (batch, 1, *points, dims)
    grid = (torch.rand(grid_shape, generator=gen, dtype=dtype) * 2 - 1) * spread
    return x.to(device), grid.to(device)


def compiled_sample(x, grid, mode="bilinear", padding="zeros", align=False, smoothstep=False):
    return compiled.grid_sample(x, grid, mode, padding, align, smoothstep)


def first_and_second(fn, x, grid, seed=1):
    """Output, (grad_x, grad_grid) and a second derivative mixing both."""
    x = x.detach().requires_grad_()
    grid = grid.detach().requires_grad_()
    out = fn(x, grid)
    gen = torch.Generator().manual_seed(seed)
    weights = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out)
    grads = torch.autograd.grad((out * weights).sum(), (x, grid), create_graph=True)
    directions = [torch.randn(g.shape, generator=gen, dtype=torch.float64).to(g) for g in grads]
    mixed = sum((g * v).sum() for g, v in zip(grads, directions))
    if not mixed.requires_grad:  # nearest: the grid gradient is identically zero
        seconds = (torch.zeros_like(x), torch.zeros_like(grid))
    else:
        seconds = torch.autograd.grad(mixed, (x, grid), allow_unused=True)
        seconds = tuple(torch.zeros_like(t) if s is None else s for s, t in zip(seconds, (x, grid)))
    return out, grads, seconds


@pytest.mark.parametrize("channels_last", [False, True], ids=["channels-first", "channels-last"])
@pytest.mark.parametrize("case", ALL_CASES, ids=_case_id)
def test_matches_native_forward_backward_double_backward(case, channels_last):
    dims, mode, padding, align = case
    x, grid = make_inputs(dims)
    if channels_last:
        x = x.contiguous(memory_format=compiled._CHANNELS_LAST[x.dim()])

    def native(a, g):
        return F.grid_sample(a, g, mode=mode, padding_mode=padding, align_corners=align)

    def ours(a, g):
        return compiled_sample(a, g, mode, padding, align)

    expected = first_and_second(native, x, grid)
    actual = first_and_second(ours, x, grid)
    for got, want in zip(
        (actual[0], *actual[1], *actual[2]), (expected[0], *expected[1], *expected[2])
    ):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_input_gradients_are_zero_where_no_point_reaches(dims, channels_last):
    """The CPU scatters zero their gradient buffers slab by slab as they go.

    Points sit in a thin band of a tall input, so most slabs receive nothing;
    buffers of the same size filled with NaN are freed just before, so that
    the allocator is likely to hand back dirty memory.
    """
    gen = torch.Generator().manual_seed(5)
    spatial = (31, 6) if dims == 2 else (29, 5, 6)
    x = torch.randn(2, 4, *spatial, generator=gen, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last if dims == 2 else torch.channels_last_3d)
    grid = torch.rand(2, 1, 50, dims, generator=gen, dtype=torch.float64) * 2 - 1
    grid[..., -1] = grid[..., -1] * 0.1 + 0.3  # the slowest axis: a band of a few indices
    if dims == 3:
        grid = grid.unsqueeze(1)

    def native(a, g):
        return F.grid_sample(a, g, mode="bilinear", padding_mode="zeros", align_corners=False)

    expected = first_and_second(native, x, grid)
    for _ in range(4):
        torch.full_like(x, math.nan)
    actual = first_and_second(compiled_sample, x, grid)
    reached = expected[1][0].ne(0).any(1).flatten(2).any(-1)  # (batch, slowest index)
    assert reached.any() and not reached.all()
    for got, want in zip((*actual[1], *actual[2]), (*expected[1], *expected[2])):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", ALL_CASES, ids=_case_id)
def test_many_slabs_match_native(case):
    """Inputs tall enough that the CPU scatters split them into several slabs."""
    dims, mode, padding, align = case
    gen = torch.Generator().manual_seed(3)
    spatial = (23, 6) if dims == 2 else (17, 5, 6)
    x = torch.randn(2, 3, *spatial, generator=gen, dtype=torch.float64)
    grid_shape = (2, 40, 7, dims) if dims == 2 else (2, 1, 40, 7, dims)
    grid = (torch.rand(grid_shape, generator=gen, dtype=torch.float64) * 2 - 1) * 1.15

    def native(a, g):
        return F.grid_sample(a, g, mode=mode, padding_mode=padding, align_corners=align)

    expected = first_and_second(native, x, grid)
    actual = first_and_second(lambda a, g: compiled_sample(a, g, mode, padding, align), x, grid)
    for got, want in zip(
        (actual[0], *actual[1], *actual[2]), (expected[0], *expected[1], *expected[2])
    ):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("padding", ["border", "reflection"])
def test_bicubic_taps_spread_by_float_spacing(padding):
    """Bicubic taps of coordinates beyond float32 spacing 1 spread over the map.

    Reflecting such a coordinate's four taps one by one lands them anywhere;
    the CPU scatter must still add each one exactly once.  (The reference
    backend follows PyTorch's scalar kernel here; its vectorized 2D kernel
    reflects such coordinates differently.)
    """
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, 24, 9, generator=gen)
    huge = torch.logspace(6.5, 9, 400, dtype=torch.float64).float()
    sign = torch.randn(400, generator=gen).sign()
    grid = torch.stack([torch.rand(400, generator=gen) * 2 - 1, huge * sign], -1)
    grid = grid.view(1, 20, 20, 2)
    upstream = torch.randn(1, 2, 20, 20, generator=gen)

    def grads(fn):
        a = x.clone().requires_grad_()
        out = fn(a, grid)
        return (out, *torch.autograd.grad(out, a, upstream))

    # The grid gradient is left out: at these magnitudes it is rounding noise.
    want = grads(lambda a, g: reference.grid_sample(a, g, "bicubic", padding, False, False))
    got = grads(lambda a, g: compiled_sample(a, g, "bicubic", padding, False))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [False, True])
def test_smoothstep_matches_reference(dims, padding, align):
    x, grid = make_inputs(dims)

    def ref(a, g):
        return reference.grid_sample(a, g, "bilinear", padding, align, True)

    def ours(a, g):
        return compiled_sample(a, g, "bilinear", padding, align, True)

    expected = first_and_second(ref, x, grid)
    actual = first_and_second(ours, x, grid)
    for got, want in zip(
        (actual[0], *actual[1], *actual[2]), (expected[0], *expected[1], *expected[2])
    ):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_smoothstep_known_value():
    # One row [0, 1] sampled a quarter of the way: smoothstep(0.25) = 0.15625.
    row = torch.tensor([[[[0.0, 1.0]]]], dtype=torch.float64)
    grid = torch.tensor([[[[-0.5 + 0.25, 0.0]]]], dtype=torch.float64)  # pixel x = 0.25
    out = compiled_sample(row, grid, "bilinear", "border", False, True)
    assert out.item() == pytest.approx(0.15625, abs=1e-15)


@pytest.mark.parametrize("dims,mode", [(2, "bilinear"), (3, "bilinear"), (2, "bicubic")])
def test_gradcheck_and_gradgradcheck(dims, mode):
    x, grid = make_inputs(dims, points=(2, 2), channels=2, batch=1)
    x.requires_grad_()
    grid.requires_grad_()
    for smoothstep in [False, True] if mode == "bilinear" else [False]:
        for padding in ["zeros", "reflection"]:

            def fn(a, g, padding=padding, smoothstep=smoothstep):
                return compiled_sample(a, g, mode, padding, False, smoothstep)

            assert torch.autograd.gradcheck(fn, (x, grid))
            assert torch.autograd.gradgradcheck(fn, (x, grid))


def test_gradients_requested_one_input_at_a_time():
    # The backward skips gradients the engine will not use; each request must
    # still get exactly its own.
    x, grid = make_inputs(3)
    x.requires_grad_()
    grid.requires_grad_()
    weights = torch.randn(2, 3, 1, 3, 4, dtype=torch.float64)
    out = compiled_sample(x, grid, "bilinear", "border", False, True)
    (g_grid,) = torch.autograd.grad((out * weights).sum(), grid, retain_graph=True)
    (g_x,) = torch.autograd.grad((out * weights).sum(), x)
    want = reference.grid_sample(x, grid, "bilinear", "border", False, True)
    want_x, want_grid = torch.autograd.grad((want * weights).sum(), (x, grid))
    torch.testing.assert_close(g_x, want_x)
    torch.testing.assert_close(g_grid, want_grid)


def test_third_order_names_reference_backend():
    x, grid = make_inputs(2)
    grid.requires_grad_()
    out = compiled_sample(x, grid, "bilinear", "zeros", False, True)
    (g,) = torch.autograd.grad(out.sum(), grid, create_graph=True)
    (gg,) = torch.autograd.grad(g.pow(2).sum(), grid, create_graph=True)
    with pytest.raises(RuntimeError, match="TORCHSAMPLE_BACKEND=reference"):
        torch.autograd.grad(gg.sum(), grid)


def _opcheck_samples():
    for dims, mode, padding, align in [
        (2, 0, 0, False),
        (2, 2, 2, True),
        (3, 0, 1, True),
        (3, 1, 2, False),
    ]:
        x, grid = make_inputs(dims, points=(2, 3), channels=2)
        smooth = mode == 0 and dims == 3
        args = (mode, padding, align, smooth)
        out = OPS.grid_sample(x, grid, *args)
        go = torch.randn_like(out)
        yield dims, x, grid, go, args


@pytest.mark.parametrize("sample", list(range(4)))
def test_opcheck_every_op(sample):
    _, x, grid, go, args = list(_opcheck_samples())[sample]
    xr = x.clone().requires_grad_()
    gr = grid.clone().requires_grad_()
    torch.library.opcheck(OPS.grid_sample, (xr, gr, *args))
    torch.library.opcheck(OPS.grid_sample_backward, (go, xr, gr, *args, [True, True, False]))
    torch.library.opcheck(OPS.grid_sample_backward, (go, x, grid, *args, [False, True, True]))
    *_, products = OPS.grid_sample_backward(go, x, grid, *args, [False, True, True])
    gg_x, gg_g = torch.randn_like(x), torch.randn_like(grid)
    torch.library.opcheck(
        OPS.grid_sample_double_backward,
        (gg_x, gg_g, go, x, grid, None, *args, [True, True, True]),
    )
    torch.library.opcheck(
        OPS.grid_sample_double_backward,
        (None, gg_g, go, x, grid, products, *args, [False, True, True]),
    )


@pytest.mark.parametrize("case", ALL_CASES, ids=_case_id)
def test_double_backward_with_and_without_tap_products(case):
    dims, mode, padding, align = case
    x, grid = make_inputs(dims, spread=1.6)
    args = (compiled._INTERPOLATION[mode], compiled._PADDING[padding], align, False)
    go = torch.randn(OPS.grid_sample(x, grid, *args).shape, dtype=x.dtype)
    _, _, products = OPS.grid_sample_backward(go, x, grid, *args, [False, True, True])
    taps = {"nearest": 1, "bilinear": 2, "bicubic": 4}[mode] ** dims
    assert products.shape == (grid.shape[0], grid[..., 0].numel() // grid.shape[0], taps)
    gg_x, gg_g = torch.randn_like(x), torch.randn_like(grid)
    for gg in [(None, gg_g), (gg_x, gg_g)]:
        mask = [True, True, True]
        given = OPS.grid_sample_double_backward(*gg, go, x, grid, products, *args, mask)
        recomputed = OPS.grid_sample_double_backward(*gg, go, x, grid, None, *args, mask)
        for a, b in zip(given, recomputed):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def _eikonal_loss(x, grid):
    out = compiled_sample(x, grid, "bilinear", "border", False, True)
    (g,) = torch.autograd.grad(out.sum(), grid, create_graph=True)
    return ((g.norm(dim=-1) - 1) ** 2).mean()


def test_torch_compile_fullgraph_double_backward():
    x, grid = make_inputs(3, points=(16, 64), channels=8)
    # The traced graph includes the channels-last copy op.
    assert compiled._prefers_channels_last(x, grid, "bilinear")
    x.requires_grad_()
    grid.requires_grad_()
    eager = _eikonal_loss(x, grid)
    expected = torch.autograd.grad(eager, (x, grid))
    compiled_loss = torch.compile(_eikonal_loss, fullgraph=True, backend="aot_eager")
    # Tracing torch.autograd.grad inside the graph is opt-in.
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        loss = compiled_loss(x, grid)
    got = torch.autograd.grad(loss, (x, grid))
    torch.testing.assert_close(loss, eager)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


HOSTILE = [
    float("nan"),
    float("inf"),
    -float("inf"),
    1e30,
    -1e30,
    1.0,
    -1.0,
    1.0 + 1e-7,
    -1.0 - 1e-7,
    0.0,
]


@pytest.mark.parametrize("case", ALL_CASES, ids=_case_id)
def test_hostile_coordinates(case):
    dims, mode, padding, align = case
    x, _ = make_inputs(dims, channels=2, batch=1)
    values = torch.tensor(HOSTILE, dtype=torch.float64)
    # Every hostile value on every axis, paired with ordinary values elsewhere.
    coords = torch.cartesian_prod(*[values] * dims)
    grid = coords.view(1, 1, -1, dims) if dims == 2 else coords.view(1, 1, 1, -1, dims)
    out = compiled_sample(x, grid, mode, padding, align)
    assert out.shape == (1, 2, *grid.shape[1:-1])
    # F.grid_sample's own 2D and 3D CPU kernels disagree on NaN and infinite
    # coordinates, so those only have to stay in bounds; finite coordinates,
    # however extreme, must match it, except that its vectorized 2D kernel
    # reflects 1e30 without an exact fmod (we follow its exact 3D kernel).
    limit = 1e3 if padding == "reflection" else math.inf
    finite = (coords.abs() < limit).all(dim=-1)
    want = F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=align)
    got_flat, want_flat = out.reshape(2, -1), want.reshape(2, -1)
    torch.testing.assert_close(got_flat[:, finite], want_flat[:, finite], rtol=1e-12, atol=1e-12)
    if mode != "bicubic":
        # Linear and nearest results are convex combinations of input values
        # (or zero): anything else would be an out-of-bounds read.
        lo, hi = x.min().item(), x.max().item()
        bounded = got_flat[:, ~finite]
        assert bool(((bounded >= min(lo, 0.0)) & (bounded <= max(hi, 0.0))).all())
    grid.requires_grad_()
    xg = x.clone().requires_grad_()
    out = compiled_sample(xg, grid, mode, padding, align)
    gx, gg = torch.autograd.grad(out.sum(), (xg, grid))
    assert gx.shape == x.shape and gg.shape == grid.shape
    if mode != "bicubic":
        assert bool(torch.isfinite(gx).all())
        # Each point spreads exactly its total weight (<= 1 per channel).
        assert gx.sum().item() <= coords.shape[0] * 2 + 1e-9


def _layout_view(layout, dims):
    memory_format = torch.channels_last if dims == 2 else torch.channels_last_3d
    return {
        "channels_last": lambda a: a.contiguous(memory_format=memory_format),
        "transposed": lambda a: a.transpose(-1, -2).contiguous().transpose(-1, -2),
        "sliced": lambda a: torch.cat([a, a], dim=1)[:, ::2],
        "expanded": lambda a: a[:1].expand_as(a),
    }[layout]


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("layout", ["channels_last", "transposed", "sliced", "expanded"])
def test_strided_inputs(dims, layout):
    x, grid = make_inputs(dims, channels=4)
    view = _layout_view(layout, dims)
    transposed_grid = grid.transpose(1, 2).contiguous().transpose(1, 2)
    for g in (grid, transposed_grid):
        want = first_and_second(lambda a, b: F.grid_sample(view(a), b, align_corners=False), x, g)
        got = first_and_second(lambda a, b: compiled_sample(view(a), b), x, g)
        for a, b in zip((got[0], *got[1], *got[2]), (want[0], *want[1], *want[2])):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("layout", ["channels_last", "transposed", "sliced", "expanded"])
def test_ops_read_any_strides(dims, layout):
    # The ops themselves, without the wrapper's channels-last copy.
    x, grid = make_inputs(dims, channels=4)
    strided = _layout_view(layout, dims)(x)
    dense = strided.contiguous()
    args = (0, 2, False, True)
    out = OPS.grid_sample(strided, grid, *args)
    torch.testing.assert_close(out, OPS.grid_sample(dense, grid, *args), rtol=0, atol=0)
    go = torch.randn_like(out).transpose(-1, -2).contiguous().transpose(-1, -2)
    for got, want in zip(
        OPS.grid_sample_backward(go, strided, grid, *args, [True, True, True]),
        OPS.grid_sample_backward(go, dense, grid, *args, [True, True, True]),
    ):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    gg_x, gg_g = torch.randn_like(dense).transpose(0, 1).contiguous().transpose(0, 1), grid * 0.5
    mask = [True, True, True]
    for got, want in zip(
        OPS.grid_sample_double_backward(gg_x, gg_g, go, strided, grid, None, *args, mask),
        OPS.grid_sample_double_backward(gg_x, gg_g, go, dense, grid, None, *args, mask),
    ):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dims", [2, 3])
def test_channels_last_copy_op(dims):
    x, _ = make_inputs(dims, channels=3)
    copy = OPS.channels_last_copy(x)
    assert copy.is_contiguous(memory_format=compiled._CHANNELS_LAST[x.dim()])
    assert copy.data_ptr() != x.data_ptr()
    torch.testing.assert_close(copy, x, rtol=0, atol=0)
    torch.autograd.gradcheck(OPS.channels_last_copy, (x.clone().requires_grad_(),))
    torch.library.opcheck(OPS.channels_last_copy, (x.clone().requires_grad_(),))
    with pytest.raises(RuntimeError, match=r"expected a 4D or 5D feature map, got shape \[2, 3\]"):
        OPS.channels_last_copy(torch.zeros(2, 3))


@pytest.mark.parametrize(
    "dtype", [torch.bool, torch.int8, torch.float16, torch.float32, torch.int64, torch.complex128]
)
def test_channels_last_copy_of_every_element_size(dtype):
    """Contiguous inputs are transposed blockwise by element size; others copied."""
    gen = torch.Generator().manual_seed(2)
    # 3 * 70 * 5 = 1050 positions: blocks of positions do not divide them.
    values = torch.randn(2, 6, 3, 70, 5, generator=gen, dtype=torch.float64) * 50
    x = values.to(dtype) if dtype != torch.complex128 else torch.complex(values, -values)
    for source in (x, x[:, ::2], x.transpose(3, 4).contiguous().transpose(3, 4), x[:, :1]):
        copy = OPS.channels_last_copy(source)
        assert copy.is_contiguous(memory_format=torch.channels_last_3d)
        assert torch.equal(copy, source)
    image = x[:, :, 0].contiguous()
    assert torch.equal(OPS.channels_last_copy(image), image)


def test_large_volume_through_the_channels_last_copy():
    # Over 4 MB: the copy and the input gradients take the huge-page path,
    # and this many points make the wrapper choose the copy.
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 48, 48, 48, generator=gen, dtype=torch.float64)
    grid = torch.rand(1, 4096, 1, 1, 3, generator=gen, dtype=torch.float64) * 2.2 - 1.1
    assert compiled._prefers_channels_last(x, grid, "bilinear")
    got = first_and_second(lambda a, b: compiled_sample(a, b, "bilinear", "zeros", False), x, grid)
    want = first_and_second(lambda a, b: F.grid_sample(a, b, align_corners=False), x, grid)
    for a, b in zip((got[0], *got[1], *got[2]), (want[0], *want[1], *want[2])):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_small_calls_read_the_map_in_place():
    # The copy pays for itself from CHANNELS_LAST_FROM_POINT_CHANNELS on; below,
    # the kernels read the channels-first map as it is.
    x = torch.zeros(1, 4, 16, 16)
    points = compiled.CHANNELS_LAST_FROM_POINT_CHANNELS // 4
    grid = torch.zeros(1, points, 1, 2)
    assert compiled._prefers_channels_last(x, grid, "bicubic")
    assert not compiled._prefers_channels_last(x, grid[:, 1:], "bicubic")
    # Maps much larger than the work on them are not copied either...
    assert not compiled._prefers_channels_last(torch.zeros(1, 4, 512, 512), grid, "bicubic")
    # ... nor those already channels last, on one channel, or integer...
    assert not compiled._prefers_channels_last(
        x.contiguous(memory_format=torch.channels_last), grid, "bicubic"
    )
    assert not compiled._prefers_channels_last(
        torch.zeros(1, 1, 16, 16), torch.zeros(1, 4096, 1, 2), "bicubic"
    )
    assert not compiled._prefers_channels_last(x.long(), grid, "nearest")
    # ... nor bilinear calls on few channels, which the block kernels serve...
    assert not compiled._prefers_channels_last(x, grid, "bilinear")
    five = torch.zeros(1, compiled.BLOCK_KERNEL_MAX_CHANNELS + 1, 16, 16)
    assert compiled._prefers_channels_last(five, grid, "bilinear")
    # ... unless a gradient copy per extra thread would outweigh the scatter:
    # the backward passes then take the per-point stencils, which read the copy.
    large = torch.zeros(1, 4, 128, 128)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert compiled._prefers_channels_last(large, grid, "bilinear")
        torch.set_num_threads(1)
        assert not compiled._prefers_channels_last(large, grid, "bilinear")
    finally:
        torch.set_num_threads(threads)


def test_direct_op_on_channels_last_returns_matching_layout():
    x, grid = make_inputs(2, channels=4)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    go = torch.randn(2, 4, 3, 4, dtype=torch.float64)
    gx, gg, _ = OPS.grid_sample_backward(go, x_cl, grid, 0, 0, False, False, [True, True, False])
    gx_ref, gg_ref, _ = OPS.grid_sample_backward(
        go, x, grid, 0, 0, False, False, [True, True, False]
    )
    assert gx.stride() == x_cl.stride()
    torch.testing.assert_close(gx, gx_ref)
    torch.testing.assert_close(gg, gg_ref)


@pytest.mark.parametrize("dims", [2, 3])
def test_empty_batch_and_zero_points(dims):
    x, grid = make_inputs(dims)
    empty_batch_x, empty_batch_grid = x[:0], grid[:0]
    zero_points = grid[:, :0]
    for a, g in [(empty_batch_x, empty_batch_grid), (x, zero_points), (x[:, :0], grid)]:
        a = a.clone().requires_grad_()
        g = g.clone().requires_grad_()
        out = compiled_sample(a, g, "bilinear", "zeros", False, True)
        assert out.shape == (a.shape[0], a.shape[1], *g.shape[1:-1])
        (gx, gg) = torch.autograd.grad(out.sum(), (a, g), create_graph=True, allow_unused=True)
        assert gx.shape == a.shape and gg.shape == g.shape
        assert not gx.any() and not gg.any()


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64, torch.bool])
@pytest.mark.parametrize("dims", [2, 3])
def test_integer_nearest_exact(dtype, dims):
    x, grid = make_inputs(dims)
    labels = (x * 1000).to(torch.int64) % (2 if dtype == torch.bool else 200)
    labels = labels.to(dtype)
    out = compiled_sample(labels, grid, "nearest", "zeros", False)
    assert out.dtype == dtype
    want = F.grid_sample(labels.double(), grid, mode="nearest", align_corners=False)
    assert torch.equal(out, want.to(dtype))


def test_integer_input_refused_for_bilinear():
    x, grid = make_inputs(2)
    reason = compiled.unsupported_reason(x.long(), grid, "bilinear", "zeros", False, False)
    assert "nearest" in reason


@pytest.mark.parametrize(
    "dtype,tol", [(torch.float32, 1e-5), (torch.float16, 2e-2), (torch.bfloat16, 8e-2)]
)
def test_reduced_precision_close_to_float64(dtype, tol):
    x, grid = make_inputs(3, channels=8)
    exact = first_and_second(
        lambda a, g: compiled_sample(a, g, "bilinear", "border", False, True), x, grid
    )
    low = first_and_second(
        lambda a, g: compiled_sample(a, g, "bilinear", "border", False, True),
        x.to(dtype),
        grid.to(dtype),
    )
    for got, want in zip((low[0], *low[1], *low[2]), (exact[0], *exact[1], *exact[2])):
        assert got.dtype == dtype
        scale = want.abs().max().item() + 1
        assert (got.double() - want).abs().max().item() <= tol * scale


def one_and_two_threads(x, grid):
    """first_and_second of the compiled backend at one thread, then at two or more."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = first_and_second(lambda a, g: compiled_sample(a, g), x, grid)
        torch.set_num_threads(max(2, threads))
        parallel = first_and_second(lambda a, g: compiled_sample(a, g), x, grid)
    finally:
        torch.set_num_threads(threads)
    return serial, parallel


def test_parallel_result_independent_of_thread_count():
    x, grid = make_inputs(3, points=(64, 64), channels=5, batch=1)
    x.requires_grad_()
    grid.requires_grad_()
    serial, parallel = one_and_two_threads(x, grid)
    for a, b in zip((serial[0], *serial[1], *serial[2]), (parallel[0], *parallel[1], *parallel[2])):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_known_values_bilinear_corners_and_midpoints():
    image = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
    # align_corners=True: corners, the middle and the top edge's midpoint.
    grid = torch.tensor(
        [[[[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [0.0, -1.0]]]], dtype=torch.float64
    )
    out = compiled_sample(image, grid, "bilinear", "zeros", True)
    assert out.flatten().tolist() == [1.0, 4.0, 2.5, 1.5]
    assert not math.isnan(out.sum().item())


@CUDA
@needs_gpu
@pytest.mark.parametrize("case", ALL_CASES, ids=_case_id)
def test_cuda_matches_cpu(case):
    dims, mode, padding, align = case
    x, grid = make_inputs(dims)
    smooth = mode == "bilinear"

    def ours(a, g):
        return compiled_sample(a, g, mode, padding, align, smooth)

    cpu = first_and_second(ours, x, grid)
    gpu = first_and_second(ours, x.cuda(), grid.cuda())
    for a, b in zip((gpu[0], *gpu[1], *gpu[2]), (cpu[0], *cpu[1], *cpu[2])):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-9, atol=1e-9)


@CUDA
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_reduced_precision_and_hostile(dtype):
    x, grid = make_inputs(3, channels=8)
    grid[0, 0, 0, 0] = float("nan")
    grid[0, 0, 0, 1] = 1e30
    grid[1, 0, 0, 0] = -float("inf")
    out_gpu = compiled_sample(x.cuda().to(dtype), grid.cuda().to(dtype), "bilinear", "border")
    out_cpu = compiled_sample(x.to(dtype), grid.to(dtype), "bilinear", "border")
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=2e-2, atol=2e-2)


@CUDA
@needs_gpu
def test_cuda_integer_nearest():
    x, grid = make_inputs(2)
    labels = (x * 100).to(torch.int32)
    out = compiled_sample(labels.cuda(), grid.cuda(), "nearest", "zeros", False)
    assert torch.equal(out.cpu(), compiled_sample(labels, grid, "nearest", "zeros", False))


@CUDA
@needs_gpu
def test_cuda_input_gradients_alert_in_deterministic_mode():
    x, grid = make_inputs(2)
    x, grid = x.cuda().requires_grad_(), grid.cuda().requires_grad_()
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        out = compiled_sample(x, grid, "bilinear", "zeros", False, True)
        # The grid gradient alone is written once per point: deterministic.
        (g,) = torch.autograd.grad(out.sum(), grid, create_graph=True)
        with pytest.raises(RuntimeError, match="grid_sample_double_backward \\(CUDA\\)"):
            torch.autograd.grad(g.square().sum(), x)
        with pytest.raises(RuntimeError, match="grid_sample_backward \\(CUDA\\)"):
            torch.autograd.grad(out.sum(), x)
    finally:
        torch.use_deterministic_algorithms(previous)


class _RecordMasks(torch.utils._python_dispatch.TorchDispatchMode):
    """The output_mask each backward op is called with, by op name."""

    def __init__(self):
        super().__init__()
        self.masks = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split(".")[0]
        if name in ("grid_sample_backward", "grid_sample_double_backward"):
            self.masks.append((name, list(args[-1])))
        return func(*args, **(kwargs or {}))


def test_backward_computes_only_the_gradients_the_engine_will_use():
    # The autograd formulas (csrc/grid_sample_autograd.cpp) ask the engine
    # which inputs' producers it will run: the map requires grad, but a loss
    # on the grid gradient alone needs no map gradient (a full-size scatter).
    x, grid = make_inputs(2)
    x.requires_grad_()
    grid.requires_grad_()
    with _RecordMasks() as first_order:
        (ours,) = torch.autograd.grad(compiled_sample(x, grid).sum(), grid)
        compiled_sample(x, grid).sum().backward()
    (expected,) = torch.autograd.grad(F.grid_sample(x, grid, align_corners=False).sum(), grid)
    torch.testing.assert_close(ours, expected)
    assert first_order.masks == [
        ("grid_sample_backward", [False, True, False]),
        ("grid_sample_backward", [True, True, False]),
    ]
    # Under create_graph the tap products are kept for the double backward,
    # which again computes only what the second pass asks for.
    with _RecordMasks() as second_order:
        out = compiled_sample(x, grid, smoothstep=True)
        (g,) = torch.autograd.grad(out.sum(), grid, create_graph=True)
        torch.autograd.grad(g.square().sum(), grid)
    assert second_order.masks == [
        ("grid_sample_backward", [False, True, True]),
        ("grid_sample_double_backward", [False, False, True]),
    ]


# Bilinear calls with up to BLOCK_KERNEL_MAX_CHANNELS channels take the CPU
# kernels' block path (csrc/cpu/linear_block.h); one channel more takes the
# per-point stencils.  Both must give the reference's values to second order.
BLOCK = compiled.BLOCK_KERNEL_MAX_CHANNELS


@pytest.mark.parametrize("channels", [1, BLOCK, BLOCK + 1])
@pytest.mark.parametrize("smoothstep", [False, True], ids=["linear", "smoothstep"])
@pytest.mark.parametrize("align", [False, True], ids=["align0", "align1"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("dims", [2, 3])
def test_block_path_matches_reference_to_second_order(dims, padding, align, smoothstep, channels):
    x, grid = make_inputs(dims, points=(5, 7), channels=channels, spread=1.4)
    flat = grid.view(grid.shape[0], -1, dims)
    flat[0, 0] = float("nan")
    flat[0, 1, 0] = float("inf")
    flat[1, 2] = 1.0  # on the last pixel (align_corners=True)
    flat[1, 3] = -1.0
    got = first_and_second(
        lambda a, g: compiled_sample(a, g, "bilinear", padding, align, smoothstep), x, grid
    )
    want = first_and_second(
        lambda a, g: reference.grid_sample(a, g, "bilinear", padding, align, smoothstep), x, grid
    )
    for a, b in zip((got[0], *got[1], *got[2]), (want[0], *want[1], *want[2])):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, equal_nan=True)


@pytest.mark.parametrize("dims", [2, 3])
def test_block_path_reads_channels_last_and_nan_maps_as_the_reference_does(dims):
    # Taps outside the input read nothing: a NaN or inf stored at the map's
    # first element (where the block path points outside taps) must not leak
    # into points whose taps all lie outside.  (F.grid_sample's double
    # backward does leak it there, so the reference is the oracle.)
    x, grid = make_inputs(dims, points=(4, 6), channels=2, spread=3.0)
    x = x.clone()
    x.view(-1)[0] = float("nan")
    x.view(-1)[1] = float("inf")
    want = first_and_second(
        lambda a, g: reference.grid_sample(a, g, "bilinear", "zeros", False, False), x, grid
    )
    assert int(torch.isnan(want[0]).sum()) < want[0].numel() // 2
    for layout in (x, x.contiguous(memory_format=compiled._CHANNELS_LAST[x.dim()])):
        got = first_and_second(
            lambda a, g: compiled_sample(a, g, "bilinear", "zeros"), layout, grid
        )
        for a, b in zip((got[0], *got[1], *got[2]), (want[0], *want[1], *want[2])):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, equal_nan=True)


def test_block_path_scatter_in_parts_matches_one_part():
    # Enough points for each thread to scatter into a copy of its own (the
    # parts are summed at the end): the gradients equal a one-thread run's up
    # to rounding, and F.grid_sample's.
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 3, 24, 20, generator=gen, dtype=torch.float64)
    grid = torch.rand(1, 1 << 15, 1, 2, generator=gen, dtype=torch.float64) * 2.2 - 1.1
    serial, parallel = one_and_two_threads(x, grid)
    want = first_and_second(lambda a, g: F.grid_sample(a, g, align_corners=False), x, grid)
    for a, b, c in zip(
        (serial[0], *serial[1], *serial[2]),
        (parallel[0], *parallel[1], *parallel[2]),
        (want[0], *want[1], *want[2]),
    ):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(a, c, rtol=1e-10, atol=1e-10)


def test_block_path_tap_products_serve_the_stencil_path_and_back():
    # The backward's tap products are stored in the stencils' order on both
    # paths (taps outside the input dropped), so a double backward reads them
    # whichever path wrote them.  Products add over channels: those of
    # BLOCK + 1 channels (stencil path) are those of the first BLOCK channels
    # plus those of the last one (block path).
    x, grid = make_inputs(2, points=(6, 9), channels=BLOCK + 1, spread=1.3)
    ops = torch.ops.torchsample
    upstream = torch.randn(x.shape[0], x.shape[1], *grid.shape[1:-1], dtype=x.dtype)
    direction = torch.randn_like(grid)

    def products(channels):
        xs, up = x[:, channels].contiguous(), upstream[:, channels].contiguous()
        mask = [False, True, True]
        _, _, given = ops.grid_sample_backward(up, xs, grid, 0, 0, False, False, mask)
        with_given = ops.grid_sample_double_backward(
            None, direction, up, xs, grid, given, 0, 0, False, False, [True, True, True]
        )
        computed = ops.grid_sample_double_backward(
            None, direction, up, xs, grid, None, 0, 0, False, False, [True, True, True]
        )
        for a, b in zip(with_given, computed):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        return given

    whole = products(slice(0, BLOCK + 1))
    parts = products(slice(0, BLOCK)) + products(slice(BLOCK, BLOCK + 1))
    torch.testing.assert_close(whole, parts, rtol=1e-12, atol=1e-12)


_BLOCK_RESULTS = """
import sys, torch
from torchsample.ops import compiled
torch.set_num_threads(1)
gen = torch.Generator().manual_seed(5)
results = []
for dims in (2, 3):
    for dtype in (torch.float32, torch.float64):
        spatial = (9, 7) if dims == 2 else (5, 6, 7)
        shape = (2, 37, *([1] * (dims - 1)), dims)
        x = torch.randn(2, 3, *spatial, generator=gen, dtype=dtype).requires_grad_()
        grid = (torch.rand(shape, generator=gen, dtype=dtype) * 2.4 - 1.2).requires_grad_()
        for padding in ("zeros", "border", "reflection"):
            for align in (False, True):
                for smooth in (False, True):
                    out = compiled.grid_sample(x, grid, "bilinear", padding, align, smooth)
                    gx, gg = torch.autograd.grad(out.square().sum(), (x, grid), create_graph=True)
                    loss = gg.square().sum() + gx.square().sum()
                    results += [out, gx, gg, *torch.autograd.grad(loss, (x, grid))]
torch.save([r.detach() for r in results], sys.argv[1])
"""


def _cpu_has_avx2():
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2" in f.read()
    except OSError:
        return False


@pytest.mark.skipif(not _cpu_has_avx2(), reason="the AVX2 variant needs an x86-64 CPU with AVX2")
def test_block_path_avx2_and_portable_code_agree_bit_for_bit(tmp_path):
    # On x86-64 the block stencils are also compiled for AVX2, without fused
    # multiply-adds; TORCHSAMPLE_NO_AVX2 keeps the portable code.
    results = {}
    for flag in ("0", "1"):
        path = tmp_path / f"no_avx2_{flag}.pt"
        done = subprocess.run(
            [sys.executable, "-c", _BLOCK_RESULTS, str(path)],
            check=False,
            env={**os.environ, "TORCHSAMPLE_NO_AVX2": flag},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        results[flag] = torch.load(path)
    assert len(results["0"]) == len(results["1"]) == 2 * 2 * 3 * 2 * 2 * 5
    for a, b in zip(results["0"], results["1"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("channels_last", [False, True], ids=["channels-first", "channels-last"])
def test_block_forward_with_stencil_backward_on_a_map_larger_than_the_work(channels_last):
    # A map far larger than the scatter into it: at two threads the forward
    # takes the block path and the passes that scatter take the per-point
    # stencils (tap products handed between them in one layout).
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 3, 24, 26, 28, generator=gen, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    grid = torch.rand(1, 300, 1, 1, 3, generator=gen, dtype=torch.float64) * 2.2 - 1.1
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        got = first_and_second(lambda a, g: compiled_sample(a, g, "bilinear", "border"), x, grid)
    finally:
        torch.set_num_threads(threads)
    want = first_and_second(
        lambda a, g: reference.grid_sample(a, g, "bilinear", "border", False, False), x, grid
    )
    for a, b in zip((got[0], *got[1], *got[2]), (want[0], *want[1], *want[2])):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
