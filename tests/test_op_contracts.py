"""Direct calls of the registered ops with mismatched arguments raise, naming the argument.

``torch.ops.torchsample.*`` are public: opcheck, torch.compile and users call
them without the checks of ``ts.grid_sample``.  Every tensor argument the
kernels index with sizes taken from another must be checked against it; an
unchecked one is read out of bounds (scripts/sanitize_check.sh runs this file
under AddressSanitizer) or silently returns garbage.  Each case runs eagerly
(the kernels' checks in csrc/checks.h) and on fake tensors (the fakes' checks
in torchsample/ops/compiled.py), which must reject it with the same message.
"""

import contextlib

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import torchsample as ts
from torchsample.ops import compiled

assert compiled.unavailable_reason() is None
OPS = torch.ops.torchsample
F64 = torch.float64
MASK = [True, True, True]


def _x(*shape, dtype=F64, device="cpu"):
    return torch.randn(shape, dtype=dtype, device=device)


def _grid(*shape, dtype=F64, device="cpu"):
    return (torch.rand(shape, dtype=dtype) * 2 - 1).to(device)


X, GRID = _x(2, 3, 4, 5), _grid(2, 3, 4, 2)  # output (2, 3, 3, 4)
GO = _x(2, 3, 3, 4)
X3, GRID3 = _x(1, 2, 3, 4, 5), _grid(1, 2, 2, 2, 3)
# Another size than X with X's strides: a layout check that compares
# strides alone would let it through.
SAME_STRIDES = torch.empty_strided((2, 3, 4, 4), X.stride(), dtype=F64).normal_()


def forward(input=X, grid=GRID, interpolation=0, padding=0, smoothstep=False):
    return lambda: OPS.grid_sample(input, grid, interpolation, padding, False, smoothstep)


def backward(grad_output=GO, input=X, grid=GRID, interpolation=0):
    return lambda: OPS.grid_sample_backward(
        grad_output, input, grid, interpolation, 0, False, False, MASK
    )


def double_backward(
    gg_input=None, gg_grid=GRID, grad_output=GO, input=X, grid=GRID, tap_products=None
):
    return lambda: OPS.grid_sample_double_backward(
        gg_input, gg_grid, grad_output, input, grid, tap_products, 0, 0, False, False, MASK
    )


def fps(points=None, lengths=None, n_samples=2, starts=None, initial=None):
    points = torch.rand(2, 5, 3) if points is None else points
    lengths = torch.tensor([5, 5]) if lengths is None else lengths
    starts = torch.tensor([0, 0]) if starts is None else starts
    return lambda: OPS.farthest_point_sample(points, lengths, n_samples, starts, initial)


# (id, call, message pattern).  Shapes print as [a, b, ...] in both the
# kernels' and the fakes' messages.
CASES = [
    ("fwd-input-3d", forward(input=_x(3, 4, 5)), r"input must be 4D or 5D, got 3D"),
    ("fwd-grid-dims", forward(grid=_grid(2, 12, 2)), r"grid must have 4 dimensions like input"),
    ("fwd-grid-batch", forward(grid=_grid(1, 3, 4, 2)), r"grid batch 1 differs from input batch 2"),
    ("fwd-grid-last", forward(grid=_grid(2, 3, 4, 3)), r"grid last dim must be 2"),
    (
        "fwd-grid-int",
        forward(input=X.long(), grid=GRID.long(), interpolation=1),
        r"grid must be floating point",
    ),
    ("fwd-dtypes", forward(grid=GRID.float()), r"input and grid dtypes differ"),
    ("fwd-int-bilinear", forward(input=X.long()), r"integer input needs nearest"),
    ("fwd-interpolation", forward(interpolation=3), r"unknown interpolation 3"),
    ("fwd-padding", forward(padding=-1), r"unknown padding -1"),
    ("fwd-bicubic-3d", forward(input=X3, grid=GRID3, interpolation=2), r"bicubic needs a 4D"),
    (
        "fwd-smoothstep-nearest",
        forward(interpolation=1, smoothstep=True),
        r"smoothstep needs bilinear",
    ),
    (
        "fwd-empty-height",
        forward(input=_x(2, 3, 0, 5)),
        r"non-empty spatial dimensions, got shape \[2, 3, 0, 5\]",
    ),
    (
        "fwd-empty-depth-no-points",
        forward(input=_x(1, 2, 0, 4, 5), grid=_grid(1, 0, 2, 2, 3)),
        r"non-empty spatial dimensions",
    ),
    (
        "bwd-grad-output-channels",
        backward(grad_output=_x(2, 1, 3, 4)),
        r"grad_output must have shape \[2, 3, 3, 4\] .*got \[2, 1, 3, 4\]",
    ),
    (
        "bwd-grad-output-batch",
        backward(grad_output=_x(1, 3, 3, 4)),
        r"grad_output must have shape \[2, 3, 3, 4\] .*got \[1, 3, 3, 4\]",
    ),
    (
        "bwd-grad-output-more-points",
        backward(grad_output=_x(2, 3, 3, 5)),
        r"grad_output must have shape \[2, 3, 3, 4\] .*got \[2, 3, 3, 5\]",
    ),
    (
        "bwd-grad-output-flat",
        backward(grad_output=_x(2, 3, 12)),
        r"grad_output must have shape \[2, 3, 3, 4\] .*got \[2, 3, 12\]",
    ),
    ("bwd-grad-output-dtype", backward(grad_output=GO.float()), r"grad_output must have dtype"),
    (
        "bwd-grad-output-meta",
        backward(grad_output=GO.to("meta")),
        r"grad_output must be on cpu like the other arguments, got meta",
    ),
    ("bwd-int-input", backward(input=X.long(), interpolation=1), r"input must be floating point"),
    ("bwd-grid-batch", backward(grid=_grid(1, 3, 4, 2)), r"grid batch 1 differs"),
    (
        "dbl-gg-grid-points",
        double_backward(gg_grid=_grid(2, 3, 3, 2)),
        r"grad_grad_grid must have shape \[2, 3, 4, 2\] .*got \[2, 3, 3, 2\]",
    ),
    (
        "dbl-gg-grid-batch",
        double_backward(gg_grid=_grid(1, 3, 4, 2)),
        r"grad_grad_grid must have shape \[2, 3, 4, 2\] .*got \[1, 3, 4, 2\]",
    ),
    ("dbl-gg-grid-dtype", double_backward(gg_grid=GRID.float()), r"grad_grad_grid must have dtype"),
    (
        "dbl-gg-input-same-strides",
        double_backward(gg_input=SAME_STRIDES),
        r"grad_grad_input must have shape \[2, 3, 4, 5\] .*got \[2, 3, 4, 4\]",
    ),
    ("dbl-gg-input-dtype", double_backward(gg_input=X.float()), r"grad_grad_input must have dtype"),
    (
        "dbl-gg-input-meta",
        double_backward(gg_input=X.to("meta")),
        r"grad_grad_input must be on cpu",
    ),
    (
        "dbl-grad-output-channels",
        double_backward(grad_output=_x(2, 2, 3, 4)),
        r"grad_output must have shape \[2, 3, 3, 4\] .*got \[2, 2, 3, 4\]",
    ),
    (
        "dbl-grad-output-meta",
        double_backward(grad_output=GO.to("meta")),
        r"grad_output must be on cpu",
    ),
    (
        "dbl-tap-products-shape",
        double_backward(tap_products=torch.zeros(2, 12, 3, dtype=F64)),
        r"tap_products must have shape \[2, 12, 4\] .*got \[2, 12, 3\]",
    ),
    (
        "dbl-tap-products-dtype",
        double_backward(tap_products=torch.zeros(2, 12, 4)),
        r"tap_products must have dtype",
    ),
    (
        "clc-3d",
        lambda: OPS.channels_last_copy(_x(2, 3, 4)),
        r"expected a 4D or 5D feature map, got shape \[2, 3, 4\]",
    ),
    ("fps-points-2d", fps(points=torch.rand(2, 5, 2)), r"points must be \(b, n, 3\)"),
    (
        "fps-points-int",
        fps(points=torch.ones(2, 5, 3, dtype=torch.long)),
        r"points must be float32 or float64",
    ),
    ("fps-n-samples", fps(n_samples=0), r"n_samples must be >= 1, got 0"),
    (
        "fps-lengths-batch",
        fps(lengths=torch.tensor([5])),
        r"lengths must have shape \[2\] .*got \[1\]",
    ),
    (
        "fps-lengths-int32",
        fps(lengths=torch.tensor([5, 5], dtype=torch.int32)),
        r"lengths must have dtype Long|lengths must have dtype torch.int64",
    ),
    (
        "fps-lengths-meta",
        fps(lengths=torch.tensor([5, 5], device="meta")),
        r"lengths must be on cpu",
    ),
    (
        "fps-starts-batch",
        fps(starts=torch.tensor([0, 0, 0])),
        r"start_indices must have shape \[2\]",
    ),
    (
        "fps-initial-shape",
        fps(initial=torch.zeros(2, 4)),
        r"initial_distances must have shape \[2, 5\] .*got \[2, 4\]",
    ),
    (
        "fps-initial-dtype",
        fps(initial=torch.zeros(2, 5, dtype=F64)),
        r"initial_distances must have dtype",
    ),
]

# Values of lengths and start indices: the kernels check them; a fake cannot.
VALUE_CASES = [
    (
        "fps-length-over-n",
        fps(lengths=torch.tensor([5, 6])),
        r"cloud 1 has length 6, needs between n_samples=2 and n=5",
    ),
    ("fps-length-under-n-samples", fps(lengths=torch.tensor([1, 5])), r"cloud 0 has length 1"),
    (
        "fps-start-past-length",
        fps(lengths=torch.tensor([5, 3]), starts=torch.tensor([0, 3])),
        r"start index 3 out of range for cloud 1 of length 3",
    ),
    ("fps-start-negative", fps(starts=torch.tensor([-1, 0])), r"start index -1 out of range"),
    (
        "fps-initial-nan",
        fps(initial=torch.tensor([[0.0, 1, 2, 3, 4], [1, float("nan"), 1, 1, 1]])),
        r"initial_distances must not be NaN",
    ),
]


@pytest.mark.parametrize(
    "call,message", [c[1:] for c in CASES + VALUE_CASES], ids=[c[0] for c in CASES + VALUE_CASES]
)
def test_kernels_reject_mismatched_arguments(call, message):
    with pytest.raises(RuntimeError, match=message):
        call()


def _with_converted_tensors(call, convert, context=None):
    """Run ``call`` with each tensor bound in its closure replaced by ``convert(tensor)``."""
    cells = call.__closure__ or ()
    originals = [cell.cell_contents for cell in cells]
    try:
        for cell in cells:
            if isinstance(cell.cell_contents, torch.Tensor):
                cell.cell_contents = convert(cell.cell_contents)
        with context or contextlib.nullcontext():
            return call()
    finally:
        for cell, original in zip(cells, originals):
            cell.cell_contents = original


def _on_fake_tensors(call):
    mode = FakeTensorMode()
    return _with_converted_tensors(call, mode.from_tensor, mode)


@pytest.mark.parametrize("call,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fakes_reject_mismatched_arguments(call, message):
    with pytest.raises(RuntimeError, match=message):
        _on_fake_tensors(call)


# channels_last_copy has CPU kernels only.
CUDA_CASES = [c for c in CASES + VALUE_CASES if not c[0].startswith("clc-")]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(
    "call,message", [c[1:] for c in CUDA_CASES], ids=[c[0] for c in CUDA_CASES]
)
def test_cuda_kernels_reject_mismatched_arguments(call, message):
    # The same calls with every CPU tensor on the GPU: the CUDA kernels share
    # the checks (csrc/checks.h), FPS lengths and start indices included.
    def to_gpu(t):
        return t if t.device.type == "meta" else t.cuda()

    with pytest.raises(RuntimeError, match=message.replace("on cpu", "on cuda:0")):
        _with_converted_tensors(call, to_gpu)
        torch.cuda.synchronize()


def test_valid_calls_pass_both_checks():
    for call in (forward(), backward(), double_backward(gg_input=X), fps()):
        eager = call()
        fake = _on_fake_tensors(call)
        for e, f in zip(
            eager if isinstance(eager, tuple) else (eager,),
            fake if isinstance(fake, tuple) else (fake,),
        ):
            assert e.shape == f.shape and e.dtype == f.dtype


@pytest.mark.parametrize("backend", ["compiled", "native", "reference"])
@pytest.mark.parametrize("shape", [(1, 2, 0, 4), (1, 2, 3, 0), (1, 2, 0, 3, 4)])
def test_empty_spatial_dimension_is_one_error_on_every_backend(monkeypatch, backend, shape):
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", backend)
    grid = torch.zeros(1, 2, 2, len(shape) - 2) if len(shape) == 4 else torch.zeros(1, 1, 2, 2, 3)
    with pytest.raises(
        ValueError, match=r"input must have non-empty spatial dimensions, got shape"
    ):
        ts.grid_sample(torch.zeros(shape), grid)
