"""Compiled (C++/CUDA) grid-sampling backend.

The kernels live in ``torchsample/csrc`` and are registered as
``torch.ops.torchsample.grid_sample``, ``grid_sample_backward`` and
``grid_sample_double_backward``, with ``channels_last_copy`` for the CPU
kernels' preferred input layout.  The extension also registers their
autograd (``csrc/grid_sample_autograd.cpp``), chaining the three ops, so
first and second derivatives are analytic kernels for every mode, bicubic
included, and a third derivative raises an error that points to the
reference backend.  This module adds the fake (meta) implementations that
tracing and ``torch.compile`` need, and the Python side of a call.
"""

from __future__ import annotations

import math
import threading

import torch

from torchsample import _extension

# It uses this module's helpers at call time only, so the circular import is safe.
from . import compiled_multires

_INTERPOLATION = {"bilinear": 0, "nearest": 1, "bicubic": 2}
_PADDING = {"zeros": 0, "border": 1, "reflection": 2}
_KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INTEGER_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)

_registered = False
_register_lock = threading.Lock()


def unavailable_reason(device_type: str = "cpu") -> str | None:
    """None when the compiled ops are built and have kernels for ``device_type``, else why not.

    Builds the extension on first call; never raises.  CUDA kernels exist
    only where the extension was built with a CUDA toolkit (see
    :func:`torchsample._extension.build_info`).

    Examples
    --------
    >>> from torchsample.ops import compiled
    >>> compiled.unavailable_reason() is None
    True
    >>> import torch
    >>> torch.version.cuda is not None or "without CUDA kernels" in compiled.unavailable_reason("cuda")
    True
    """
    if not _registered:  # once registered, the extension is loaded for good
        reason = _extension.unavailable_reason()
        if reason is not None:
            return reason
        _register()
    if device_type == "cuda":
        info = _extension.build_info()
        if not info["cuda"]:
            return f"the extension was built without CUDA kernels: {info['no_cuda_reason']}"
    return None


def unsupported_reason(input, grid, mode, padding_mode, align_corners, smoothstep) -> str | None:
    """None when the compiled kernels can serve this call, otherwise why not.

    Examples
    --------
    >>> import torch
    >>> from torchsample.ops import compiled
    >>> x = torch.zeros(1, 1, 4, 4)
    >>> compiled.unsupported_reason(x, torch.zeros(1, 2, 2, 2), "bilinear", "zeros", False, True)
    >>> compiled.unsupported_reason(x.bool(), torch.zeros(1, 2, 2, 2), "bilinear", "zeros",
    ...                             False, False)
    'the compiled backend samples integer input with mode="nearest" only, got bilinear'
    """
    if not (input.is_cpu or input.is_cuda):
        return f"the compiled backend runs on CPU and CUDA, got device {input.device}"
    if input.dtype in _INTEGER_DTYPES:
        if mode != "nearest":
            return (
                f'the compiled backend samples integer input with mode="nearest" only, got {mode}'
            )
    elif input.dtype not in _KERNEL_DTYPES:
        return f"the compiled backend has no kernels for dtype {input.dtype}"
    if grid.dtype not in _KERNEL_DTYPES:
        return f"the compiled backend has no kernels for grid dtype {grid.dtype}"
    return None


def grid_sample(input, grid, mode, padding_mode, align_corners, smoothstep):
    """Sample ``input`` at ``grid`` with the compiled kernels (arguments already checked).

    Parameters
    ----------
    input : torch.Tensor
        Feature map.
    grid : torch.Tensor
        Normalized coordinates, last dimension (x, y) or (x, y, z).
    mode : str
        ``"nearest"``, ``"bilinear"`` or ``"bicubic"``.
    padding_mode : str
        ``"zeros"``, ``"border"`` or ``"reflection"``.
    align_corners : bool
        Whether -1 and 1 are the centers of the corner pixels.
    smoothstep : bool
        Replace each linear weight ``t`` by ``t * t * (3 - 2 * t)``.

    Returns
    -------
    torch.Tensor
        Sampled features.

    Shape
    -----
    - input: ``(b, c, h, w)`` or ``(b, c, d, h, w)``
    - grid: ``(b, *points, 2)`` or ``(b, *points, 3)``
    - output: ``(b, c, *points)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.ops import compiled
    >>> image = torch.arange(4.0).view(1, 1, 2, 2)
    >>> centre = torch.zeros(1, 1, 1, 2)
    >>> compiled.grid_sample(image, centre, "bilinear", "zeros", False, False)
    tensor([[[[1.5000]]]])
    """
    _register()
    if _prefers_channels_last(input, grid, mode):
        # Done here rather than in the kernels so that autograd saves the
        # transposed copy once for backward and double backward.
        input = torch.ops.torchsample.channels_last_copy.default(input)
    # Leaves get a view, a node the engine can report on (see _engine_mask).
    input, grid = _non_leaf(input), _non_leaf(grid)
    return torch.ops.torchsample.grid_sample.default(
        input, grid, _INTERPOLATION[mode], _PADDING[padding_mode], align_corners, smoothstep
    )


def unsupported_multires_reason(coords, tables) -> str | None:
    """None when the compiled kernels can encode with these MultiResGrid tables, else why not."""
    return compiled_multires.unsupported_reason(coords, tables)


def multires_encode(coords, tables, resolutions, smoothstep):
    """Every level of a MultiResGrid in one op (see :mod:`.compiled_multires`)."""
    return compiled_multires.encode(coords, tables, resolutions, smoothstep)


def unsupported_fps_reason(points) -> str | None:
    """None when the compiled kernels can sample these points, otherwise why not."""
    if points.device.type not in ("cpu", "cuda"):
        return f"the compiled backend runs on CPU and CUDA, got device {points.device}"
    if points.dtype not in (torch.float32, torch.float64):
        return f"the compiled backend has FPS kernels for float32 and float64, got {points.dtype}"
    return None


def farthest_point_sample(points, lengths, n_samples, start_indices, initial_distances=None):
    """Farthest point sampling indices by the compiled kernels (arguments already checked).

    See ``csrc/fps.cpp`` for the definition; the reference backend computes
    the same indices.
    """
    _register()
    return torch.ops.torchsample.farthest_point_sample(
        points, lengths, n_samples, start_indices, initial_distances
    )


_CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def _non_leaf(t: torch.Tensor) -> torch.Tensor:
    return t.view_as(t) if t.is_leaf and t.requires_grad else t


# The transposed copy costs an op call and an allocation, which reads with
# channels last only earn back on calls with at least this many
# point-channels (docs/performance.rst, "Where each backend is slower").
CHANNELS_LAST_FROM_POINT_CHANNELS = 1 << 12

# Bilinear calls with up to this many channels take the CPU kernels' block
# path, which reads each channel plane in place (csrc/cpu/grid_sample_kernel.cpp,
# kBlockMaxChannels).
BLOCK_KERNEL_MAX_CHANNELS = 4


def _prefers_channels_last(input: torch.Tensor, grid: torch.Tensor, mode: str) -> bool:
    """Whether the CPU kernels should read a channels-last copy of ``input``.

    Each sample reads every channel at a few pixels: with channels last those
    reads are contiguous instead of one cache line per channel.  The copy is
    worth it unless the call is small, the input is much larger than the
    work on it, or the call takes the block path throughout (few channels,
    bilinear, a map small enough for per-thread gradient copies).
    """
    channels = input.shape[1]
    point_channels = grid.numel() // grid.shape[-1] * channels
    if point_channels < CHANNELS_LAST_FROM_POINT_CHANNELS or channels < 2 or not input.is_cpu:
        return False
    if mode == "bilinear" and channels <= BLOCK_KERNEL_MAX_CHANNELS:
        # The block path scatters in one part per thread where a copy of the
        # map per extra thread costs less than the scatter; elsewhere its
        # backward passes go to the per-point stencils, which want the copy
        # (grid_sample_kernel.cpp, block_path_scatters).
        corners = 1 << (input.dim() - 2)
        extra_threads = torch.get_num_threads() - 1
        if extra_threads * input.numel() <= point_channels * corners:
            return False
    if not input.is_floating_point() or input.is_contiguous(
        memory_format=_CHANNELS_LAST[input.dim()]
    ):
        return False
    return input.numel() <= 32 * point_channels


def _empty(like: torch.Tensor) -> torch.Tensor:
    return like.new_empty((0,))


# The fakes check what the kernels check (csrc/checks.h), with the same
# messages: a traced call must fail where an eager one would, and a meta
# tensor among real ones dispatches here instead of to a kernel.


def _check_matches(op, name, t, shape, dtype, like, what):
    torch._check(
        t.dim() == len(shape) and all(a == b for a, b in zip(t.shape, shape)),
        lambda: f"{op}: {name} must have shape {list(shape)} ({what}), got {list(t.shape)}",
    )
    torch._check(
        t.dtype == dtype,
        lambda: f"{op}: {name} must have dtype {dtype} ({what}), got {t.dtype}",
    )
    torch._check(
        t.device == like.device,
        lambda: f"{op}: {name} must be on {like.device} like the other arguments, got {t.device}",
    )


def _check_grid_sample_args(op, input, grid, interpolation, padding, smoothstep):
    torch._check(
        input.dim() in (4, 5),
        lambda: f"{op}: input must be 4D or 5D, got {input.dim()}D of shape {list(input.shape)}",
    )
    torch._check(
        grid.dim() == input.dim(),
        lambda: (
            f"{op}: grid must have {input.dim()} dimensions like input, "
            f"got shape {list(grid.shape)}"
        ),
    )
    torch._check(
        grid.shape[0] == input.shape[0],
        lambda: f"{op}: grid batch {grid.shape[0]} differs from input batch {input.shape[0]}",
    )
    torch._check(
        grid.shape[-1] == input.dim() - 2,
        lambda: f"{op}: grid last dim must be {input.dim() - 2}, got shape {list(grid.shape)}",
    )
    torch._check(
        grid.is_floating_point(), lambda: f"{op}: grid must be floating point, got {grid.dtype}"
    )
    torch._check(
        not input.is_floating_point() or input.dtype == grid.dtype,
        lambda: f"{op}: input and grid dtypes differ ({input.dtype} vs {grid.dtype})",
    )
    torch._check(
        input.is_floating_point() or interpolation == _INTERPOLATION["nearest"],
        lambda: f"{op}: integer input needs nearest interpolation",
    )
    torch._check(
        interpolation in _INTERPOLATION.values(),
        lambda: f"{op}: unknown interpolation {interpolation}",
    )
    torch._check(padding in _PADDING.values(), lambda: f"{op}: unknown padding {padding}")
    torch._check(
        interpolation != _INTERPOLATION["bicubic"] or input.dim() == 4,
        lambda: f"{op}: bicubic needs a 4D input",
    )
    torch._check(
        not smoothstep or interpolation == _INTERPOLATION["bilinear"],
        lambda: f"{op}: smoothstep needs bilinear interpolation",
    )
    torch._check(
        input.device == grid.device,
        lambda: f"{op}: input and grid must be on one device, got {input.device} and {grid.device}",
    )
    for size in input.shape[2:]:
        torch._check(
            size > 0,
            lambda: (
                f"{op}: input must have non-empty spatial dimensions, got shape {list(input.shape)}"
            ),
        )


def _check_backward_args(op, grad_output, input, grid, interpolation, padding, smoothstep):
    _check_grid_sample_args(op, input, grid, interpolation, padding, smoothstep)
    torch._check(
        input.is_floating_point(), lambda: f"{op}: input must be floating point, got {input.dtype}"
    )
    _check_matches(
        op,
        "grad_output",
        grad_output,
        _output_shape(input, grid),
        input.dtype,
        input,
        "batch and channels of input, points of grid, dtype of input",
    )


def _output_shape(input, grid):
    return (input.shape[0], input.shape[1], *grid.shape[1:-1])


def _fake_grid_sample(input, grid, interpolation, padding, align_corners, smoothstep):
    _check_grid_sample_args(
        "torchsample::grid_sample", input, grid, interpolation, padding, smoothstep
    )
    return input.new_empty(_output_shape(input, grid))


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _taps_per_point(interpolation: int, dims: int) -> int:
    per_axis = {0: 2, 1: 1, 2: 4}[interpolation]
    return per_axis**dims


def _points(grid: torch.Tensor):
    return math.prod(grid.shape[1:-1])


def _fake_backward(
    grad_output, input, grid, interpolation, padding, align_corners, smoothstep, output_mask
):
    _check_backward_args(
        "torchsample::grid_sample_backward",
        grad_output,
        input,
        grid,
        interpolation,
        padding,
        smoothstep,
    )
    grad_input = torch.empty_like(input) if output_mask[0] else _empty(input)
    grad_grid = grid.new_empty(grid.shape) if output_mask[1] else _empty(grid)
    dtype = _accumulation_dtype(input.dtype)
    if output_mask[2] and input.device.type == "cpu":  # the CUDA kernels return none
        shape = (grid.shape[0], _points(grid), _taps_per_point(interpolation, input.dim() - 2))
        tap_products = input.new_empty(shape, dtype=dtype)
    else:
        tap_products = input.new_empty((0,), dtype=dtype)
    return grad_input, grad_grid, tap_products


def _fake_double_backward(
    grad_grad_input,
    grad_grad_grid,
    grad_output,
    input,
    grid,
    tap_products,
    interpolation,
    padding,
    align_corners,
    smoothstep,
    output_mask,
):
    op = "torchsample::grid_sample_double_backward"
    _check_backward_args(op, grad_output, input, grid, interpolation, padding, smoothstep)
    if grad_grad_input is not None:
        _check_matches(
            op,
            "grad_grad_input",
            grad_grad_input,
            input.shape,
            input.dtype,
            input,
            "shape and dtype of input",
        )
    if grad_grad_grid is not None:
        _check_matches(
            op,
            "grad_grad_grid",
            grad_grad_grid,
            grid.shape,
            grid.dtype,
            input,
            "shape and dtype of grid",
        )
    if tap_products is not None and tap_products.numel() > 0:
        taps = _taps_per_point(interpolation, input.dim() - 2)
        _check_matches(
            op,
            "tap_products",
            tap_products,
            (input.shape[0], _points(grid), taps),
            _accumulation_dtype(input.dtype),
            input,
            "as grid_sample_backward returns them: batch, points, taps per point",
        )
    grad_grad_output = grad_output.new_empty(grad_output.shape) if output_mask[0] else _empty(input)
    grad_input = torch.empty_like(input) if output_mask[1] else _empty(input)
    grad_grid = grid.new_empty(grid.shape) if output_mask[2] else _empty(grid)
    return grad_grad_output, grad_input, grad_grid


def _fake_channels_last_copy(input):
    torch._check(
        input.dim() in (4, 5),
        lambda: (
            "torchsample::channels_last_copy: expected a 4D or 5D feature map, got shape "
            f"{list(input.shape)}"
        ),
    )
    return torch.empty_like(input, memory_format=_CHANNELS_LAST[input.dim()])


def _fake_farthest_point_sample(points, lengths, n_samples, start_indices, initial_distances=None):
    # The kernels also check the values of lengths and start_indices, which
    # a fake cannot see; torchsample.points checks them before calling.
    op = "torchsample::farthest_point_sample"
    torch._check(
        points.dim() == 3 and points.shape[2] == 3,
        lambda: f"{op}: points must be (b, n, 3), got {list(points.shape)}",
    )
    torch._check(
        points.dtype in (torch.float32, torch.float64),
        lambda: f"{op}: points must be float32 or float64, got {points.dtype}",
    )
    torch._check(n_samples >= 1, lambda: f"{op}: n_samples must be >= 1, got {n_samples}")
    batch = points.shape[0]
    for name, t in (("lengths", lengths), ("start_indices", start_indices)):
        _check_matches(op, name, t, (batch,), torch.long, points, "int64, one per cloud")
    if initial_distances is not None:
        _check_matches(
            op,
            "initial_distances",
            initial_distances,
            points.shape[:2],
            points.dtype,
            points,
            "(b, n) in the dtype of points",
        )
    return points.new_empty((batch, n_samples), dtype=torch.long)


# Private autograd-engine queries with no public equivalent: which nodes the
# running backward pass will execute.  A torch without them gets the static
# mask, which is correct, only slower for losses on the grid gradient alone.
_AccumulateGrad = getattr(getattr(torch._C, "_functions", None), "AccumulateGrad", None)
_will_engine_execute_node = getattr(torch._C, "_will_engine_execute_node", None)


def _engine_mask(ctx, mask: list[bool]) -> list[bool]:
    """``mask`` (one entry per differentiable input, lists flattened, in the
    order of ``ctx.next_functions``) with the inputs the engine will not run off.

    ``needs_input_grad`` only says which inputs require grad; an eikonal loss
    asks for the coordinate gradient alone while the features require grad
    too, and skipping the unwanted feature gradient saves a full-size
    scatter.  The engine knows which nodes it will run (it cannot say for
    leaves during ``torch.autograd.grad``); traced graphs keep the static
    mask.  The grid-sample ops make the same test in C++
    (``csrc/grid_sample_autograd.cpp``).
    """
    if torch.compiler.is_compiling() or None in (_AccumulateGrad, _will_engine_execute_node):
        return mask
    for i, (node, _) in enumerate(ctx.next_functions[: len(mask)]):
        if mask[i] and node is not None and not isinstance(node, _AccumulateGrad):
            mask[i] = _will_engine_execute_node(node)
    return mask


def _register() -> None:
    """Attach fake implementations to the ops, once (thread-safe).

    The grid-sample ops' autograd is registered by the extension itself
    (``csrc/grid_sample_autograd.cpp``); the multires ops' in
    :mod:`.compiled_multires`.
    """
    global _registered
    if _registered:
        return
    with _register_lock:
        if _registered:
            return
        _extension.load()
        library = "torchsample::"
        torch.library.register_fake(library + "grid_sample", _fake_grid_sample)
        torch.library.register_fake(library + "grid_sample_backward", _fake_backward)
        torch.library.register_fake(library + "grid_sample_double_backward", _fake_double_backward)
        torch.library.register_fake(library + "channels_last_copy", _fake_channels_last_copy)
        torch.library.register_fake(library + "farthest_point_sample", _fake_farthest_point_sample)
        compiled_multires.register(library)
        _registered = True
