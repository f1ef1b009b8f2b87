"""Farthest point sampling: compiled kernel, PyTorch fallback, seeded variant."""

from __future__ import annotations

import torch

from .._checks import check_positive_int, describe
from .._nobatch import with_nobatch
from ._knn import knn
from ._validate import check_cloud, check_lengths


def _compiled_op():
    """The extension's op, or None when the extension cannot be built."""
    from ..ops import compiled

    if compiled.unavailable_reason() is not None:
        return None
    return torch.ops.torchsample.farthest_point_sample.default


def _has_kernel(device: torch.device) -> bool:
    """Whether the compiled op has kernels for ``device``, as the extension's build recorded."""
    from ..ops import compiled

    return device.type in ("cpu", "cuda") and compiled.unavailable_reason(device.type) is None


def _fps_reference(points, lengths, n_samples, start_indices, initial_distances=None):
    """Brute force, one step per sample, vectorized over the batch and the points.

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


def _fps_indices(points, lengths, n_samples, start_indices, initial_distances=None):
    """Indices of farthest point sampling, by the compiled op where it exists."""
    if _has_kernel(points.device):
        return _compiled_op()(points, lengths, n_samples, start_indices, initial_distances)
    return _fps_reference(points, lengths, n_samples, start_indices, initial_distances)


def _working_precision(points: torch.Tensor) -> torch.Tensor:
    """Detached coordinates in float32 or float64, the precisions the kernels support."""
    points = points.detach()
    if points.dtype not in (torch.float32, torch.float64):
        points = points.float()
    return points.contiguous()


def _check_n_samples(n_samples: object, lengths: torch.Tensor) -> int:
    n_samples = check_positive_int("n_samples", n_samples)
    if lengths.numel() and n_samples > int(lengths.min()):
        raise ValueError(
            f"n_samples must not exceed the size of any cloud; got n_samples={n_samples} "
            f"but the smallest cloud has {int(lengths.min())} points"
        )
    return n_samples


def _start_indices(start_index: object, lengths: torch.Tensor) -> torch.Tensor:
    if isinstance(start_index, torch.Tensor):
        if start_index.dim() != 1 or start_index.shape[0] != lengths.shape[0]:
            raise ValueError(
                f"start_index must be an int or have shape ({lengths.shape[0]},), one per "
                f"cloud, got {describe(start_index)}"
            )
        starts = start_index.to(device=lengths.device, dtype=torch.long)
    elif isinstance(start_index, int) and not isinstance(start_index, bool):
        starts = torch.full_like(lengths, start_index)
    else:
        raise TypeError(
            f"start_index must be an int or a tensor of ints, got {type(start_index).__name__}"
        )
    if lengths.numel() and bool(((starts < 0) | (starts >= lengths)).any()):
        raise ValueError(
            f"start_index must lie in [0, length) of each cloud, got {starts.tolist()} "
            f"for lengths {lengths.tolist()}"
        )
    return starts


@with_nobatch("points")
def farthest_point_sample(
    points: torch.Tensor,
    n_samples: int,
    lengths: torch.Tensor | None = None,
    start_index: int | torch.Tensor = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Farthest point sampling: each new point is the one farthest from those chosen.

    Starting from ``start_index``, every step picks the point whose squared distance
    to the already chosen points is largest (the smallest index among ties), so the
    result is deterministic. A compiled kernel is used when the extension is
    available (exact tree-pruned search on CPU, one thread block per cloud on CUDA),
    a PyTorch loop otherwise; both return the same indices.

    Parameters
    ----------
    points : torch.Tensor
        Point clouds, coordinates last.
    n_samples : int
        Number of points to keep per cloud; at most the size of every cloud.
    lengths : torch.Tensor, optional
        Number of valid points of each cloud of a padded batch: cloud ``i`` is
        ``points[i, :lengths[i]]``. Default: all points are valid.
    start_index : int or torch.Tensor
        Index of the first sample, shared or one per cloud.

    Returns
    -------
    sampled : torch.Tensor
        The chosen points, in the order they were chosen (differentiable with
        respect to ``points``).
    indices : torch.Tensor
        Their indices into ``points`` (int64).

    Shape
    -----
    - points: ``(b, n, 3)``; lengths, start_index: ``(b,)``
    - sampled: ``(b, n_samples, 3)``; indices: ``(b, n_samples)``
    - ``farthest_point_sample.nobatch``: points ``(n, 3)``, results ``(n_samples, 3)``
      and ``(n_samples,)``.

    Examples
    --------
    >>> import torch
    >>> from torchsample.points import farthest_point_sample
    >>> corners = torch.tensor([[[0.0, 0, 0], [0.1, 0, 0], [1, 1, 1], [1, 0, 0]]])
    >>> sampled, indices = farthest_point_sample(corners, 3)
    >>> indices
    tensor([[0, 2, 3]])
    >>> farthest_point_sample.nobatch(corners[0], 2)[1]
    tensor([0, 2])
    """
    points = check_cloud("points", points)
    lengths = check_lengths(lengths, points)
    n_samples = _check_n_samples(n_samples, lengths)
    starts = _start_indices(start_index, lengths)
    indices = _fps_indices(_working_precision(points), lengths, n_samples, starts)
    return _gather(points, indices), indices


def _gather(points: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    return points.gather(1, indices[..., None].expand(-1, -1, points.shape[-1]))


def _fps_from_seeds(points: torch.Tensor, seeds: torch.Tensor, n_samples: int) -> torch.Tensor:
    """Farthest point sampling that continues from already chosen points.

    ``seeds`` ``(b, m)`` holds indices of chosen points (repeats allowed); returns
    ``(b, n_samples)`` indices of new points, each farthest from the seeds and the
    new points before it.
    """
    points = _working_precision(points)
    lengths = check_lengths(None, points)
    initial, _ = knn(points, _gather(points, seeds), 1)
    initial = initial[..., 0].scatter(1, seeds, -1.0)
    starts = initial.argmax(dim=1)
    return _fps_indices(points, lengths, n_samples, starts, initial.contiguous())
