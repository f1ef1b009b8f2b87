"""Reference backend: grid sampling (and FPS) written with plain PyTorch operations.

It is slow and memory hungry, but every step is an ordinary differentiable
tensor operation, so autograd differentiates it to any order. It is the
oracle the faster backends are tested against, and it serves what no other
backend can (for example third derivatives, or integer feature maps where
the compiled extension is not built).

The per-point arithmetic follows PyTorch's scalar ``GridSampler`` helpers
step by step (unnormalize, pad, guard against values that do not fit an
index, then interpolate), including its choices at the edges: a clipped
coordinate has zero gradient even when it lies exactly on the border, and
non-finite coordinates never produce an out-of-range index.
"""

from __future__ import annotations

import itertools
import math

import torch

# PyTorch maps source indices that do not fit an int (and non-finite ones)
# to this value, which is out of bounds for every size.
_OUT_OF_RANGE = -100.0
_INT_MAX = 2**31 - 1
_INT_MIN = -(2**31)
_CUBIC_A = -0.75


def unavailable_reason(device_type: str = "cpu") -> str | None:
    return None


def unsupported_reason(input, grid, mode, padding_mode, align_corners, smoothstep) -> str | None:
    return None


def _unnormalize(coord: torch.Tensor, size: int, align_corners: bool) -> torch.Tensor:
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def _clip(coord: torch.Tensor, size: int) -> torch.Tensor:
    # Comparisons rather than clamp: the borders themselves count as clipped
    # (zero gradient), and NaN ends up on the upper border as in PyTorch.
    zero = torch.zeros((), dtype=coord.dtype, device=coord.device)
    upper = torch.full((), size - 1, dtype=coord.dtype, device=coord.device)
    return torch.where(coord <= 0, zero, torch.where(coord < upper, coord, upper))


def _reflect(coord: torch.Tensor, twice_low: int, twice_high: int) -> torch.Tensor:
    if twice_low == twice_high:
        return torch.zeros_like(coord)
    low = twice_low / 2
    span = (twice_high - twice_low) / 2
    distance = coord - low
    distance = torch.where(distance < 0, -distance, distance)
    extra = torch.fmod(distance, span)
    flips = torch.floor(distance / span)
    even = torch.remainder(flips, 2) == 0
    return torch.where(even, extra + low, span - extra + low)


def _pad(coord: torch.Tensor, size: int, padding_mode: str, align_corners: bool) -> torch.Tensor:
    """Map an unnormalized coordinate into the map according to the padding."""
    if padding_mode == "border":
        return _clip(coord, size)
    if padding_mode == "reflection":
        if align_corners:
            coord = _reflect(coord, 0, 2 * (size - 1))
        else:
            coord = _reflect(coord, -1, 2 * size - 1)
        return _clip(coord, size)
    return coord


def _guard(coord: torch.Tensor) -> torch.Tensor:
    fits = torch.isfinite(coord) & (coord <= _INT_MAX - 1) & (coord >= _INT_MIN)
    return torch.where(fits, coord, torch.full_like(coord, _OUT_OF_RANGE))


def _linear_weight(t: torch.Tensor, smoothstep: bool) -> torch.Tensor:
    return t * t * (3 - 2 * t) if smoothstep else t


def _cubic_weights(t: torch.Tensor) -> list[torch.Tensor]:
    """Keys' cubic convolution weights of the four taps at offsets -1, 0, 1, 2."""

    def near(x):  # |x| <= 1
        return ((_CUBIC_A + 2) * x - (_CUBIC_A + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((_CUBIC_A * x - 5 * _CUBIC_A) * x + 8 * _CUBIC_A) * x - 4 * _CUBIC_A

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _taps(coord, size, mode, padding_mode, align_corners, smoothstep):
    """The (index, weight) pairs one axis contributes to each sample.

    Indices are float tensors (they may lie outside the map; the gather masks
    them); a weight of ``None`` means exactly one.
    """
    if mode == "bicubic":
        # Bicubic pads each tap, not the coordinate.
        source = _unnormalize(coord, size, align_corners)
        first = torch.floor(source)
        weights = _cubic_weights(source - first)
        return [
            (_guard(_pad(first + offset, size, padding_mode, align_corners)), weight)
            for offset, weight in zip((-1, 0, 1, 2), weights)
        ]
    source = _guard(
        _pad(_unnormalize(coord, size, align_corners), size, padding_mode, align_corners)
    )
    if mode == "nearest":
        # torch.round rounds half to even, like nearbyint in PyTorch's kernels.
        return [(torch.round(source), None)]
    first = torch.floor(source)
    upper = _linear_weight(source - first, smoothstep)
    return [(first, 1 - upper), (first + 1, upper)]


def _gather(flat_input: torch.Tensor, spatial: tuple[int, ...], indices: list[torch.Tensor]):
    """Values at integer positions ``indices`` (one per axis, x first), zero outside."""
    n, c, _ = flat_input.shape
    inside = None
    linear = None
    # Axes in memory order: the last coordinate (z or y) is the slowest.
    for index, size in zip(reversed(indices), spatial):
        ok = (index >= 0) & (index < size)
        inside = ok if inside is None else inside & ok
        clamped = torch.where(ok, index, torch.zeros_like(index)).long()
        linear = clamped if linear is None else linear * size + clamped
    values = flat_input.gather(2, linear.unsqueeze(1).expand(n, c, -1))
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    return torch.where(inside.unsqueeze(1), values, zero)


def grid_sample(input, grid, mode, padding_mode, align_corners, smoothstep):
    """Sample ``input`` at ``grid`` with plain tensor operations.

    Arguments are those of :func:`torchsample.grid_sample`, already checked.
    """
    n, c, *spatial = input.shape
    points_shape = grid.shape[1:-1]
    dims = grid.shape[-1]
    # Explicit sizes: -1 is ambiguous when the batch is empty.
    coords = grid.reshape(n, math.prod(points_shape), dims)
    flat_input = input.reshape(n, c, math.prod(spatial))
    # Coordinates are (x, y[, z]); spatial sizes are (d,) h, w.
    sizes = list(reversed(spatial))
    per_axis = [
        _taps(coords[..., axis], sizes[axis], mode, padding_mode, align_corners, smoothstep)
        for axis in range(dims)
    ]

    out = None
    for combination in itertools.product(*per_axis):
        values = _gather(flat_input, tuple(spatial), [index for index, _ in combination])
        weights = [weight for _, weight in combination if weight is not None]
        if weights:
            weight = weights[0]
            for w in weights[1:]:
                weight = weight * w
            values = values * weight.unsqueeze(1)
        out = values if out is None else out + values

    if mode == "nearest" and input.is_floating_point() and grid.requires_grad:
        # Nearest sampling is piecewise constant: its gradient w.r.t. the grid
        # is zero, not undefined (as in F.grid_sample). The product with zero
        # connects the grid to the graph; nan_to_num keeps inf/NaN coordinates
        # from turning that zero into NaN.
        zero = torch.nan_to_num(coords * 0, nan=0.0).sum(-1)
        out = out + zero.unsqueeze(1)
    return out.reshape(n, c, *points_shape)


def unsupported_fps_reason(points) -> str | None:
    return None


def farthest_point_sample(points, lengths, n_samples, start_indices, initial_distances=None):
    """Farthest point sampling by brute force: one step per sample, vectorized over the batch
    and the points (arguments already checked).

    The same definition as the kernels: running distances start at
    ``initial_distances`` (or +inf) and take the minimum with the squared distance to
    each new sample; a sampled point's distance becomes -1 so it is never picked
    again; the next sample is the first point of largest distance.
    """
    batch, n, _ = points.shape
    arange = torch.arange(batch, device=points.device)
    if initial_distances is None:
        distance = torch.full((batch, n), torch.inf, dtype=points.dtype, device=points.device)
    else:
        distance = initial_distances.clone()
    padding = torch.arange(n, device=points.device) >= lengths[:, None]
    distance[padding] = -torch.inf
    # Padding may hold anything, NaN included; zeros keep its distances at -inf.
    points = points.masked_fill(padding[..., None], 0)
    indices = torch.empty((batch, n_samples), dtype=torch.long, device=points.device)
    indices[:, 0] = start_indices
    x, y, z = points.unbind(-1)
    for k in range(1, n_samples):
        sample = points[arange, indices[:, k - 1]]
        distance[arange, indices[:, k - 1]] = -1
        dx = x - sample[:, 0:1]
        dy = y - sample[:, 1:2]
        dz = z - sample[:, 2:3]
        # Same operation order as the kernels, so the distances agree bit for bit.
        torch.minimum(distance, dx * dx + dy * dy + dz * dz, out=distance)
        indices[:, k] = distance.argmax(dim=1)
    return indices


# --- multi-resolution grid encoding -------------------------------------------------

# Instant-NGP's per-axis hash primes; the first is 1 so that consecutive
# vertices along x land in consecutive slots (cache friendly on the GPU).
_HASH_PRIMES = (1, 2654435761, 805459861)


def unsupported_multires_reason(coords, tables) -> str | None:
    return None


def _spatial_hash(indices: list[torch.Tensor], table_size: int) -> torch.Tensor:
    """Hash integer vertex indices to slots in ``[0, table_size)``.

    ``indices`` holds one int64 tensor per axis, ``(i, j[, k])``; they
    broadcast against each other. The slot is the ``xor`` over axes of
    ``index * prime``, modulo the power-of-two table size. Instant-NGP computes
    this in wrapping uint32 arithmetic; int64 products wrap too and agree in
    the low 32 bits, so the slots are the same.
    """
    slot = indices[0] * _HASH_PRIMES[0]
    for index, prime in zip(indices[1:], _HASH_PRIMES[1:]):
        slot = slot ^ (index * prime)
    return slot & (table_size - 1)


def _cell_corners(
    coords: torch.Tensor, resolution: int, smoothstep: bool
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Vertex indices and interpolation weights of the cell around each point.

    Uses the convention of ``grid_sample(..., align_corners=True,
    padding_mode="border")`` so that a hashed level interpolates exactly like
    a dense one: coordinate -1 is vertex 0, +1 is vertex ``resolution - 1``,
    and points outside [-1, 1] are clamped onto the border.

    Returns, for ``coords`` ``(n, dims)``, the vertex indices of the
    ``2**dims`` corners of each point's cell, one int64 tensor ``(n,
    2**dims)`` per axis, and their weights ``(n, 2**dims)``, differentiable
    to any order in ``coords``. Corners are listed with x varying slowest.
    """
    dims = coords.shape[-1]
    position = (coords + 1) * ((resolution - 1) / 2)
    # As in grid_sample's border padding, a clamped coordinate gets no
    # gradient, even one exactly on the border.
    inside = (position > 0) & (position < resolution - 1)
    position = torch.where(inside, position, position.detach().clamp(0, resolution - 1))
    # The last vertex belongs to the last cell, so that +1 interpolates
    # within the grid rather than reading one vertex past it. NaN reads
    # vertex 0 (with a NaN weight) rather than an arbitrary index.
    cell = position.detach().nan_to_num(0.0).floor().clamp(max=resolution - 2)
    t = position - cell
    if smoothstep:
        t = t * t * (3 - 2 * t)
    # offsets[k, a] is 1 where corner k takes the upper vertex along axis a.
    offsets = torch.cartesian_prod(*[torch.arange(2, device=coords.device)] * dims)
    lower = cell.long()
    indices = [lower[:, axis, None] + offsets[:, axis] for axis in range(dims)]
    # Selecting per-axis weights (rather than broadcasting them against each
    # other) keeps the first and second backward passes free of reductions.
    axis_weights = torch.stack([1 - t, t], dim=-1)
    weights = axis_weights[:, 0].index_select(1, offsets[:, 0])
    for axis in range(1, dims):
        weights = weights * axis_weights[:, axis].index_select(1, offsets[:, axis])
    return indices, weights


def multires_encode(coords, tables, resolutions, smoothstep):
    """MultiResGrid's plain-PyTorch path: every level separately, concatenated.

    Dense levels ``(1, F, N, N[, N])`` are sampled with
    :func:`torchsample.grid_sample` (``align_corners=True``,
    ``padding_mode="border"``), hashed levels ``(T, F)`` by gathering the
    hashed corner rows and weighting them with :func:`_cell_corners`.
    ``coords`` is ``(n, dims)``; the result ``(n, levels * F)``.
    """
    from ._dispatch import grid_sample  # the dispatch imports this module

    dims = coords.shape[-1]
    features = []
    for table, resolution in zip(tables, resolutions):
        if table.dim() == 2:
            indices, weights = _cell_corners(coords, resolution, smoothstep)
            corner_features = table[_spatial_hash(indices, table.shape[0])]
            features.append((weights.unsqueeze(1) @ corner_features).squeeze(1))
        else:
            # Points as a (1, 1, n) or (1, 1, 1, n) "image" of coordinates.
            grid = coords.reshape((1,) * dims + coords.shape)
            sampled = grid_sample(table, grid, "bilinear", "border", True, smoothstep)
            features.append(sampled.reshape(table.shape[1], -1).t())
    return torch.cat(features, dim=-1)
