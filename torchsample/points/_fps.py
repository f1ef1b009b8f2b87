"""Farthest point sampling and its seeded variant (backends in torchsample.ops)."""

from __future__ import annotations

import torch

from .._checks import check_positive_int, describe
from .._nobatch import with_nobatch
from ..ops import farthest_point_indices
from ._knn import knn
from ._validate import check_cloud, check_lengths


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


def _check_finite(name: str, points: torch.Tensor, lengths: torch.Tensor) -> None:
    """The valid points are finite: a NaN or infinite coordinate makes distances NaN,
    which compare false both ways, and the search would then pick points again."""
    valid = torch.arange(points.shape[1], device=points.device) < lengths[:, None]
    bad = ~torch.isfinite(points).all(dim=-1) & valid
    if bool(bad.any()):
        cloud, point = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{name} must be finite, got {points[cloud, point].tolist()} at point {point} "
            f"of cloud {cloud}"
        )


def _start_indices(start_index: object, lengths: torch.Tensor) -> torch.Tensor:
    if isinstance(start_index, torch.Tensor):
        if start_index.dim() != 1 or start_index.shape[0] != lengths.shape[0]:
            raise ValueError(
                f"start_index must be an int or have shape ({lengths.shape[0]},), one per "
                f"cloud, got {describe(start_index)}"
            )
        if (
            start_index.is_floating_point()
            or start_index.is_complex()
            or (start_index.dtype == torch.bool)
        ):
            # Casting would truncate 2.7 to 2 without a word.
            raise TypeError(f"start_index must have an integer dtype, got {describe(start_index)}")
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
    _check_finite("points", points, lengths)
    n_samples = _check_n_samples(n_samples, lengths)
    starts = _start_indices(start_index, lengths)
    indices = farthest_point_indices(_working_precision(points), lengths, n_samples, starts)
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
    _check_finite("points", points, lengths)
    initial, _ = knn(points, _gather(points, seeds), 1)
    initial = initial[..., 0].scatter(1, seeds, -1.0)
    starts = initial.argmax(dim=1)
    return farthest_point_indices(points, lengths, n_samples, starts, initial.contiguous())
