"""SampleNet's matching of proposed points to input points."""

from __future__ import annotations

import torch

from .._checks import check_positive_int, check_tensor, describe
from ._fps import _fps_from_seeds, _gather
from ._validate import check_cloud


def nn_matching(
    full_cloud: torch.Tensor,
    proposal_indices: torch.Tensor,
    n_samples: int,
    complete_fps: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn nearest-neighbour matches of proposed points into a subset of the cloud.

    The matches are deduplicated (first occurrence kept, order preserved) and, with
    ``complete_fps``, topped up to ``n_samples`` by farthest point sampling that
    starts from the matched points, so every cloud yields ``n_samples`` distinct
    points. Without it the first ``n_samples`` matches are taken as they are,
    repeats included. Everything runs in torch on the cloud's device.

    Parameters
    ----------
    full_cloud : torch.Tensor
        The input clouds.
    proposal_indices : torch.Tensor
        For each proposed point, the index of its nearest point of ``full_cloud``
        (e.g. from :func:`knn` with ``k=1``).
    n_samples : int
        Points to return per cloud.
    complete_fps : bool
        Deduplicate and complete with farthest point sampling.

    Returns
    -------
    matched : torch.Tensor
        The selected points of ``full_cloud``.
    indices : torch.Tensor
        Their indices (int64).

    Shape
    -----
    - full_cloud: ``(b, n, 3)``; proposal_indices: ``(b, m)``
    - matched: ``(b, n_samples, 3)``; indices: ``(b, n_samples)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.points import nn_matching
    >>> cloud = torch.tensor([[[0.0, 0, 0], [0.1, 0, 0], [1, 0, 0], [2, 0, 0]]])
    >>> matched, indices = nn_matching(cloud, torch.tensor([[1, 1, 1]]), 3)
    >>> indices
    tensor([[1, 3, 2]])
    """
    full_cloud = check_cloud("full_cloud", full_cloud)
    proposal_indices = check_tensor("proposal_indices", proposal_indices)
    n_samples = check_positive_int("n_samples", n_samples)
    batch, n, _ = full_cloud.shape
    if (
        proposal_indices.dim() != 2
        or proposal_indices.shape[0] != batch
        or proposal_indices.is_floating_point()
    ):
        raise ValueError(
            f"proposal_indices must be integer indices of shape ({batch}, m), got "
            f"{describe(proposal_indices)}"
        )
    proposal_indices = proposal_indices.to(device=full_cloud.device, dtype=torch.long)
    m = proposal_indices.shape[1]
    if m and bool(((proposal_indices < 0) | (proposal_indices >= n)).any()):
        raise ValueError(f"proposal_indices must lie in [0, {n}), the points of full_cloud")
    if not complete_fps:
        if n_samples > m:
            raise ValueError(
                f"n_samples must be at most the number of proposals {m} when complete_fps "
                f"is False, got {n_samples}"
            )
        indices = proposal_indices[:, :n_samples]
        return _gather(full_cloud, indices), indices
    if n_samples > n:
        raise ValueError(
            f"n_samples must be at most the number of points {n} of full_cloud, got {n_samples}"
        )
    if m == 0:
        raise ValueError("proposal_indices must hold at least one proposal per cloud")

    unique, n_unique = _first_occurrences(proposal_indices, n)
    n_missing = n_samples - n_unique.clamp(max=n_samples)
    completion = _fps_from_seeds(full_cloud, unique, int(n_missing.max()))
    # Position t of the result takes the t-th unique match while there are any, then
    # the completion in order.
    candidates = torch.cat([unique, completion], dim=1)
    position = torch.arange(n_samples, device=full_cloud.device).expand(batch, -1)
    kept = n_samples - n_missing[:, None]
    source = torch.where(position < kept, position, m + position - kept)
    indices = candidates.gather(1, source)
    return _gather(full_cloud, indices), indices


def _first_occurrences(indices: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct values of each row in order of first occurrence, and how many.

    Returns ``(b, m)`` where each row starts with its distinct values; the rest of the
    row repeats its first value (harmless as an FPS seed).
    """
    batch, m = indices.shape
    position = torch.arange(m, device=indices.device).expand(batch, -1)
    first = torch.full((batch, n), m, dtype=torch.long, device=indices.device)
    first = first.scatter_reduce(1, indices, position, reduce="amin")
    is_first = first.gather(1, indices) == position
    # A stable sort on "not first" moves the first occurrences to the front in order.
    order = torch.sort((~is_first).to(torch.uint8), dim=1, stable=True).indices
    compact = indices.gather(1, order)
    n_unique = is_first.sum(dim=1)
    compact = torch.where(position < n_unique[:, None], compact, compact[:, :1])
    return compact, n_unique
