"""The one place that decides which backend serves a call: grid sampling and FPS."""

from __future__ import annotations

import os
import warnings
from typing import NamedTuple

import torch

from .. import _extension
from .._checks import check_choice, check_same_device, check_tensor, describe
from . import compiled, native, reference

#: Backends by name, in the order ``auto`` tries them.
BACKENDS = {"compiled": compiled, "native": native, "reference": reference}

MODES = ("nearest", "bilinear", "bicubic", "trilinear")
PADDING_MODES = ("zeros", "border", "reflection")
ENV_VAR = "TORCHSAMPLE_BACKEND"


class BackendChoice(NamedTuple):
    """Which backend serves a call, and why."""

    name: str
    reason: str


def _check_request(input, grid, mode, padding_mode, align_corners, smoothstep) -> str:
    """Validate a grid-sampling request; return the mode with aliases resolved."""
    check_tensor("input", input)
    check_tensor("grid", grid)
    # Every call pays for these checks: each tensor attribute is read once.
    shape, grid_shape = input.shape, grid.shape
    ndim = len(shape)
    if ndim not in (4, 5):
        raise ValueError(
            "input must be a 4D (b, c, h, w) or 5D (b, c, d, h, w) feature map, "
            f"got {describe(input)}"
        )
    dims = ndim - 2
    if len(grid_shape) != ndim or grid_shape[-1] != dims:
        expected_grid = "(b, h_out, w_out, 2)" if dims == 2 else "(b, d_out, h_out, w_out, 3)"
        raise ValueError(
            f"grid must be {expected_grid} for a {ndim}D input of shape "
            f"{tuple(shape)}, got {describe(grid)}"
        )
    if 0 in shape[2:]:
        # As F.grid_sample: there is nothing to sample or pad from, whatever
        # the backend (the compiled kernels check it too).
        raise ValueError(f"input must have non-empty spatial dimensions, got {describe(input)}")
    if grid_shape[0] != shape[0]:
        raise ValueError(
            f"grid and input must have the same batch size, got grid batch {grid_shape[0]} "
            f"and input batch {shape[0]}"
        )
    if input.device != grid.device:
        check_same_device(input=input, grid=grid)
    if not grid.is_floating_point():
        raise TypeError(f"grid must have a floating-point dtype, got {describe(grid)}")
    check_choice("mode", mode, MODES)
    check_choice("padding_mode", padding_mode, PADDING_MODES)
    if not isinstance(align_corners, bool):
        raise TypeError(f"align_corners must be a bool, got {align_corners!r}")
    if not isinstance(smoothstep, bool):
        raise TypeError(f"smoothstep must be a bool, got {smoothstep!r}")
    if mode == "trilinear":
        if dims != 3:
            raise ValueError(
                f"mode='trilinear' needs a 5D input, got {describe(input)}; use 'bilinear' in 2D"
            )
        mode = "bilinear"
    if mode == "bicubic" and dims != 2:
        raise ValueError(f"mode='bicubic' supports 4D inputs only, got {describe(input)}")
    if smoothstep and mode != "bilinear":
        raise ValueError(
            f"smoothstep=True applies to mode='bilinear' (or 'trilinear') only, got mode={mode!r}"
        )
    if input.is_floating_point():
        if input.dtype != grid.dtype:
            raise TypeError(
                f"input and grid must have the same dtype, got input {input.dtype} and grid "
                f"{grid.dtype}; cast one of them explicitly"
            )
    elif mode != "nearest":
        raise TypeError(
            f"integer and bool feature maps can only be sampled with mode='nearest', got "
            f"mode={mode!r} for input of dtype {input.dtype}"
        )
    return mode


def _requested_backend() -> str:
    # Read at every call, so that a change between calls takes effect.
    requested = os.environ.get(ENV_VAR, "auto")
    if requested != "auto" and requested not in BACKENDS:
        check_choice(f"environment variable {ENV_VAR}", requested, ("auto", *BACKENDS))
    return requested


# (backend, reason) pairs already warned about: one warning per cause.
_warned_unavailable: set[tuple[str, str]] = set()


@torch.compiler.assume_constant_result
def _unavailable_reason(name: str, device_type: str) -> str | None:
    # Availability never changes once known (a build is attempted once), so
    # torch.compile may run this at trace time instead of tracing the build.
    return BACKENDS[name].unavailable_reason(device_type)


def _device_type(t: torch.Tensor) -> str:
    # t.device.type builds a string each time; CPU tensors, the common case
    # on the hot path, are asked more cheaply.
    return "cpu" if t.is_cpu else t.device.type


def _choose(device_type: str, unsupported: str, request: tuple, slower=None):
    """The first backend available for ``device_type`` that can serve ``request``.

    ``getattr(backend, unsupported)(*request)`` returns None when the backend
    can serve the call, or why not. ``slower`` (``auto`` only) maps backend
    names to rules: ``slower[name](*request)`` returns why that backend,
    though it can serve the call, is passed over anyway: measured to be
    slower for it than the next one.

    Returns
    -------
    name : str
        The backend.
    passed_over : list of (str, str), or None
        The backends tried before it, each with its reason; None when
        ``TORCHSAMPLE_BACKEND`` forced the backend. The reasons are strings
        already, but they are joined into a :class:`BackendChoice` only by
        :func:`_explain`, for callers that report them.
    """
    requested = _requested_backend()
    if requested != "auto":
        reason = _unavailable_reason(requested, device_type) or getattr(
            BACKENDS[requested], unsupported
        )(*request)
        if reason is not None:
            raise RuntimeError(f"{ENV_VAR}={requested} cannot serve this call: {reason}")
        return requested, None

    passed_over = []
    for name, backend in BACKENDS.items():
        reason = _unavailable_reason(name, device_type)
        if reason is not None:
            _warn_unavailable(name, device_type, reason)
        else:
            reason = getattr(backend, unsupported)(*request)
            if reason is None and slower is not None and name in slower:
                reason = slower[name](*request)
            if reason is None:
                return name, passed_over
        passed_over.append((name, reason))
    raise RuntimeError("no backend can serve this call: " + _joined(passed_over))


def _warn_unavailable(name: str, device_type: str, reason: str) -> None:
    if (name, reason) in _warned_unavailable:
        return
    _warned_unavailable.add((name, reason))
    warnings.warn(
        f"torchsample: the {name} backend is unavailable for {device_type} tensors "
        f"({reason}); falling back to the next backend",
        RuntimeWarning,
        stacklevel=6,
    )


def _joined(passed_over) -> str:
    return "; ".join(f"{name}: {reason}" for name, reason in passed_over)


def _explain(name: str, passed_over) -> BackendChoice:
    """The :class:`BackendChoice` for a result of :func:`_choose`.

    A choice of the compiled backend also says which kernels serve it:
    prebuilt in the wheel, or built just in time, and the library's path.
    """
    if passed_over is None:
        reason = f"selected by {ENV_VAR}={name}"
    else:
        reason = _joined(passed_over) or "first choice for this call"
    if name == "compiled":
        reason += f" ({_extension.kernels_description()})"
    return BackendChoice(name, reason)


# Where F.grid_sample beats the compiled CPU kernels, measured with the
# training-loop workloads (benchmarks/results/grid_sample-training-cpu.json,
# docs/performance.rst "Choosing a backend"): 2D bilinear maps with fewer
# channels than this (1, 3, 4 lost; 16 won) ...
NATIVE_2D_BELOW_CHANNELS = 16
# ... and calls with fewer point-channels than this, by map dimensions,
# where the Python around the kernels and the stencil each point builds cost
# more than F.grid_sample's sampling (benchmarks/results/grid_sample-small-cpu.json,
# docs/performance.rst "Small calls"): 16-channel 2D calls lost from 2^12 to
# 2^16 point-channels (2^18 won in the sampler-alone results), 3D calls lost
# at 2^12 and won at 2^14.
NATIVE_BELOW_POINT_CHANNELS = {2: 1 << 18, 3: 1 << 14}


def _native_faster(input, grid, mode) -> str | None:
    """Why ``auto`` passes the compiled backend over for ``F.grid_sample``, if it does."""
    if not input.is_cpu:
        return None  # no GPU measurements yet
    channels, dims = input.shape[1], grid.shape[-1]
    point_channels = grid.numel() // dims * channels
    threshold = NATIVE_BELOW_POINT_CHANNELS[dims]
    if point_channels < threshold:
        return (
            f"F.grid_sample is faster for calls this small on the CPU "
            f"({point_channels} point-channels < {threshold} in {dims}D, measured)"
        )
    if input.dim() == 4 and mode == "bilinear" and channels < NATIVE_2D_BELOW_CHANNELS:
        return (
            f"F.grid_sample is faster for 2D bilinear maps with fewer than "
            f"{NATIVE_2D_BELOW_CHANNELS} channels on the CPU (got {channels}, measured)"
        )
    return None


def _compiled_slower(input, grid, mode, padding_mode, align_corners, smoothstep):
    if native.unsupported_reason(input, grid, mode, padding_mode, align_corners, smoothstep):
        return None  # nothing to route to
    return _native_faster(input, grid, mode)


_GRID_SAMPLE_SLOWER = {"compiled": _compiled_slower}


def _choose_grid_sample(request: tuple):
    return _choose(_device_type(request[0]), "unsupported_reason", request, _GRID_SAMPLE_SLOWER)


def which_backend(
    input: torch.Tensor,
    grid: torch.Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool = False,
    smoothstep: bool = False,
) -> BackendChoice:
    """Report which backend :func:`grid_sample` uses for these arguments, and why.

    Takes exactly the arguments of :func:`grid_sample` and validates them the
    same way, without sampling.

    Returns
    -------
    BackendChoice
        ``name`` is ``"compiled"``, ``"native"`` or ``"reference"``; ``reason``
        says why the backends tried before it were passed over, or that the
        environment variable ``TORCHSAMPLE_BACKEND`` selected it.

    Examples
    --------
    >>> import torch, torchsample as ts
    >>> image = torch.rand(1, 3, 8, 8)
    >>> grid = torch.rand(1, 4, 4, 2) * 2 - 1
    >>> ts.which_backend(image, grid, smoothstep=True).name in ("compiled", "reference")
    True
    >>> labels = torch.randint(0, 5, (1, 1, 8, 8))
    >>> ts.which_backend(labels, grid, mode="nearest").name in ("compiled", "reference")
    True
    """
    mode = _check_request(input, grid, mode, padding_mode, align_corners, smoothstep)
    return _explain(
        *_choose_grid_sample((input, grid, mode, padding_mode, align_corners, smoothstep))
    )


def grid_sample(
    input: torch.Tensor,
    grid: torch.Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool = False,
    smoothstep: bool = False,
) -> torch.Tensor:
    """Sample ``input`` at the normalized locations in ``grid``.

    A drop-in replacement for :func:`torch.nn.functional.grid_sample` with the
    same arguments, order and semantics, plus ``smoothstep`` weights and
    first and second derivatives with respect to both ``input`` and ``grid``.

    Parameters
    ----------
    input : Tensor
        Feature map ``(b, c, h, w)`` or ``(b, c, d, h, w)``. Integer and bool
        maps are accepted with ``mode="nearest"`` and keep their dtype.
    grid : Tensor
        Sampling locations ``(b, h_out, w_out, 2)`` or
        ``(b, d_out, h_out, w_out, 3)``, last dimension ``(x, y[, z])``
        normalized to [-1, 1]. Same dtype as a floating ``input``.
    mode : {"bilinear", "nearest", "bicubic", "trilinear"}
        Interpolation. ``"trilinear"`` is accepted as an alias of
        ``"bilinear"`` for 5D inputs; ``"bicubic"`` is 2D only.
    padding_mode : {"zeros", "border", "reflection"}
        Values used outside the map.
    align_corners : bool
        If True, -1 and 1 are the centers of the corner pixels; if False,
        they are the outer edges of the corner pixels.
    smoothstep : bool
        Replace each linear weight ``t`` by ``t * t * (3 - 2 * t)``
        (Instant-NGP), which makes the gradient with respect to ``grid``
        continuous across pixel boundaries. Bilinear/trilinear only.

    Returns
    -------
    Tensor
        ``(b, c, h_out, w_out)`` or ``(b, c, d_out, h_out, w_out)``, the dtype
        of ``input``.

    Notes
    -----
    The call is served by one of several backends (see :func:`which_backend`):
    the compiled C++/CUDA extension when it is built, ``F.grid_sample`` when
    it can serve the request, and the pure-PyTorch reference otherwise. On
    the CPU, ``F.grid_sample`` also takes the calls where it measured faster
    than the compiled kernels: 2D bilinear maps with fewer than 16 channels,
    2D calls under 2^18 point-channels (points times channels) and 3D calls
    under 2^14 (see :doc:`/performance`). Set
    ``TORCHSAMPLE_BACKEND`` to ``compiled``, ``native`` or ``reference`` to
    force one.

    Examples
    --------
    >>> import torch, torchsample as ts
    >>> image = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])  # (b, c, h, w)
    >>> grid = torch.tensor([[[[0.0, 0.0], [-0.5, -0.5], [0.5, -0.5]]]])  # (x, y)
    >>> ts.grid_sample(image, grid)
    tensor([[[[1.5000, 0.0000, 1.0000]]]])
    >>> ts.grid_sample(image, torch.tensor([[[[0.25, 0.0]]]]), smoothstep=True)
    tensor([[[[1.8438]]]])
    """
    mode = _check_request(input, grid, mode, padding_mode, align_corners, smoothstep)
    request = (input, grid, mode, padding_mode, align_corners, smoothstep)
    name, _ = _choose_grid_sample(request)
    return BACKENDS[name].grid_sample(*request)


def farthest_point_indices(points, lengths, n_samples, start_indices, initial_distances=None):
    """Indices of farthest point sampling, by the first backend that serves the call.

    The arguments are those of the ``torchsample::farthest_point_sample`` op
    (see ``csrc/fps.cpp``), already checked by :mod:`torchsample.points`.
    Backends are chosen as for :func:`grid_sample`: the compiled kernels
    where they are built for the points' device, else the reference loop
    (``F`` has none); ``TORCHSAMPLE_BACKEND`` forces one.

    Examples
    --------
    >>> import torch
    >>> from torchsample.ops import farthest_point_indices
    >>> corners = torch.tensor([[[0.0, 0, 0], [0.1, 0, 0], [1, 1, 1], [1, 0, 0]]])
    >>> farthest_point_indices(corners, torch.tensor([4]), 3, torch.tensor([0]))
    tensor([[0, 2, 3]])
    """
    name, _ = _choose(_device_type(points), "unsupported_fps_reason", (points,))
    return BACKENDS[name].farthest_point_sample(
        points, lengths, n_samples, start_indices, initial_distances
    )


def multires_backend(coords: torch.Tensor, tables: list[torch.Tensor]) -> BackendChoice:
    """Which backend :func:`multires_encode` uses for these tensors, and why.

    Parameters
    ----------
    coords : torch.Tensor
        ``(n, dims)`` points, in the tables' accumulation dtype.
    tables : list of torch.Tensor
        One per level, as for :func:`multires_encode`.

    Returns
    -------
    BackendChoice
        As :func:`torchsample.which_backend`: the compiled backend where the
        extension is built for the tensors' device and can serve the tables,
        otherwise the plain-PyTorch path (``native`` or ``reference``);
        ``TORCHSAMPLE_BACKEND`` forces one. The fused op is faster than the
        plain path in every measured workload (forward, training step, SDF
        step; see :doc:`/encodings`), so ``auto`` never passes it over.
    """
    return _explain(*_choose_multires(coords, tables))


def _choose_multires(coords, tables):
    return _choose(_device_type(coords), "unsupported_multires_reason", (coords, tables))


def multires_encode(coords, tables, resolutions, smoothstep):
    """Every level of a multi-resolution grid at ``coords``, by the first backend that serves it.

    The arguments are those of the ``torchsample::multires_encode`` op (see
    ``csrc/multires.cpp``), already checked by
    :class:`torchsample.encoding.MultiResGrid`: ``coords`` ``(n, dims)`` in
    the tables' accumulation dtype, one table per level, dense
    ``(1, F, N, N[, N])`` or hashed ``(T, F)``. The compiled backend encodes
    every level in one op; the others take the plain-PyTorch path.

    Examples
    --------
    >>> import torch
    >>> from torchsample.ops import multires_encode
    >>> dense = torch.arange(8.0).reshape(1, 2, 2, 2)  # 2 features on 2 x 2 vertices
    >>> multires_encode(torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), [dense], [2], False)
    tensor([[0., 4.],
            [3., 7.]])
    """
    name, _ = _choose_multires(coords, tables)
    return BACKENDS[name].multires_encode(coords, tables, resolutions, smoothstep)
