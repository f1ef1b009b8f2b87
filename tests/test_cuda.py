"""The CUDA kernels on the layouts and sizes users have (``scripts/gpu_check.sh`` runs these).

Each test compares the compiled CUDA kernels with ``F.grid_sample`` on the
same GPU and with the compiled CPU kernels. Everything here needs a CUDA
GPU and a build with CUDA kernels, and is skipped without one.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

import torchsample as ts
from torchsample.ops import compiled

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def ours(x, grid, mode="bilinear", padding="zeros", align=False, smoothstep=False):
    return compiled.grid_sample(x, grid, mode, padding, align, smoothstep)


def native(x, grid, mode="bilinear", padding="zeros", align=False, smoothstep=False):
    assert not smoothstep
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=align)


def with_grads(fn, x, grid, **options):
    """Output and gradients for a fixed upstream gradient drawn on the CPU."""
    x = x.detach().requires_grad_()
    grid = grid.detach().requires_grad_()
    out = fn(x, grid, **options)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out)
    grad_x, grad_grid = torch.autograd.grad((out * weights).sum(), (x, grid))
    return out, grad_x, grad_grid


def assert_all_close(actual, expected, tol):
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a.cpu(), e.cpu(), rtol=tol, atol=tol)


def random_case(dims, channels=3, points=200, batch=2, spread=1.2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    spatial = (9, 11) if dims == 2 else (5, 7, 6)
    x = torch.randn(batch, channels, *spatial, generator=gen)
    grid_shape = (batch, 1, points, dims) if dims == 2 else (batch, 1, 1, points, dims)
    grid = (torch.rand(grid_shape, generator=gen) * 2 - 1) * spread
    return x, grid


MODES = [(2, m) for m in ("nearest", "bilinear", "bicubic")] + [
    (3, m) for m in ("nearest", "bilinear")
]


@pytest.mark.parametrize(
    "dims, mode, padding, align",
    [
        (d, m, p, a)
        for (d, m), p, a in itertools.product(
            MODES, ("zeros", "border", "reflection"), (False, True)
        )
    ],
)
def test_matches_native_on_the_gpu(dims, mode, padding, align):
    x, grid = random_case(dims)
    options = {"mode": mode, "padding": padding, "align": align}
    expected = with_grads(native, x.cuda(), grid.cuda(), **options)
    actual = with_grads(ours, x.cuda(), grid.cuda(), **options)
    # Nearest has no gradient w.r.t. the grid; bicubic sums 16 taps in float32.
    assert_all_close(actual, expected, tol=1e-4)


LAYOUTS = ["contiguous", "channels_last", "channel_slice", "transposed", "expanded"]


def in_layout(name, x):
    """``x``'s values in one of the layouts users pass, on ``x``'s device.

    Built on each device from a contiguous tensor: copying a view to another
    device may make it contiguous, which would test the wrong layout.
    """
    if name == "contiguous":
        return x
    if name == "channels_last":
        return x.contiguous(
            memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d
        )
    if name == "channel_slice":  # non-contiguous
        return torch.cat([x, torch.zeros_like(x)], dim=1)[:, : x.shape[1]]
    if name == "transposed":
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)
    assert name == "expanded"  # stride 0 over the batch
    return x[:1].expand_as(x)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_match_the_cpu_kernels_and_native(dims, layout):
    x, grid = random_case(dims, channels=5)
    on_cpu, on_gpu = in_layout(layout, x), in_layout(layout, x.cuda())
    assert on_gpu.stride() == on_cpu.stride()
    expected_cpu = with_grads(ours, on_cpu, grid, padding="border", smoothstep=True)
    actual = with_grads(ours, on_gpu, grid.cuda(), padding="border", smoothstep=True)
    assert_all_close(actual, expected_cpu, tol=1e-4)
    expected_native = with_grads(native, on_gpu, grid.cuda(), padding="border")
    actual = with_grads(ours, on_gpu, grid.cuda(), padding="border")
    assert_all_close(actual, expected_native, tol=1e-4)


@pytest.mark.parametrize("dims", [2, 3])
def test_second_derivatives_match_the_cpu_kernels(dims):
    x, grid = random_case(dims, channels=4, points=64)
    results = []
    for device in ("cpu", "cuda"):
        a = x.double().to(device).requires_grad_()
        g = grid.double().to(device).requires_grad_()
        out = ours(a, g, padding="zeros", smoothstep=True)
        (grad_grid,) = torch.autograd.grad(out.square().sum(), g, create_graph=True)
        loss = (grad_grid.norm(dim=-1) - 1).square().mean()
        results.append(torch.autograd.grad(loss, (a, g)))
    assert_all_close(results[1], results[0], tol=1e-9)


@pytest.mark.parametrize("shape", [(0, 3, 2), (2, 0, 2)])
def test_empty_batch_and_zero_points(shape):
    batch, points, _ = shape
    x = torch.randn(batch, 4, 6, 7, device="cuda", requires_grad=True)
    grid = torch.zeros(batch, 1, points, 2, device="cuda", requires_grad=True)
    out = ours(x, grid)
    assert out.shape == (batch, 4, 1, points)
    out.sum().backward()
    assert x.grad.abs().sum() == 0 and grid.grad.shape == grid.shape


def test_large_map_needs_64_bit_indexing():
    # 2^31 + elements: offsets past int32 must not wrap around.
    side = 46_400
    x = torch.zeros(1, 1, side, side, device="cuda")
    x[0, 0, -1, -1] = 7.0
    x[0, 0, 0, 0] = 3.0
    grid = torch.tensor([[[[1.0, 1.0], [-1.0, -1.0], [0.0, 0.0]]]], device="cuda")
    actual = ours(x, grid, align=True)
    torch.testing.assert_close(actual, native(x, grid, align=True))
    assert actual.flatten().tolist() == [7.0, 3.0, 0.0]


def test_deterministic_mode_is_honoured():
    # Many points on few pixels: float atomics would add in a varying order.
    x = torch.randn(1, 8, 4, 4, device="cuda")
    grid = torch.rand(1, 1, 1 << 16, 2, device="cuda") * 2 - 1
    torch.use_deterministic_algorithms(True)
    try:
        runs = [with_grads(ours, x, grid) for _ in range(2)]
    except RuntimeError as error:
        # Alerting, as ATen's grid sampler does, is the other correct answer.
        assert "deterministic" in str(error)
        return
    finally:
        torch.use_deterministic_algorithms(False)
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("start_index", [0, 5])
def test_farthest_point_sample_matches_the_cpu_kernel(start_index):
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(3, 2000, 3, generator=gen)
    lengths = torch.tensor([2000, 1500, 37])
    cpu = ts.points.farthest_point_sample(points, 30, lengths=lengths, start_index=start_index)
    gpu = ts.points.farthest_point_sample(
        points.cuda(), 30, lengths=lengths.cuda(), start_index=start_index
    )
    assert torch.equal(gpu[1].cpu(), cpu[1])
    torch.testing.assert_close(gpu[0].cpu(), cpu[0])


def test_cuda_requests_are_served_by_the_compiled_backend():
    x, grid = random_case(2)
    assert ts.which_backend(x.cuda(), grid.cuda()).name == "compiled"
