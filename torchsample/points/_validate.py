"""Argument checks shared by the point-cloud functions."""

from __future__ import annotations

import torch

from .._checks import check_floating, check_ndim, check_tensor, describe


def check_cloud(name: str, points: object, dims: int | None = 3) -> torch.Tensor:
    """A ``(b, n, dims)`` floating-point cloud; ``dims=None`` accepts any last size."""
    points = check_tensor(name, points)
    check_ndim(name, points, (3,), "(b, n, 3): batch, points, coordinates")
    check_floating(name, points)
    if dims is not None and points.shape[-1] != dims:
        raise ValueError(
            f"{name} must have {dims} coordinates in its last dimension, got {describe(points)}"
        )
    return points


def check_lengths(lengths: object, points: torch.Tensor) -> torch.Tensor:
    """Valid-point counts ``(b,)`` as int64 on the points' device; None means all."""
    batch, n = points.shape[:2]
    if lengths is None:
        return torch.full((batch,), n, dtype=torch.long, device=points.device)
    lengths = check_tensor("lengths", lengths)
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(
            f"lengths must have shape ({batch},), one per cloud, got {describe(lengths)}"
        )
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must have an integer dtype, got {describe(lengths)}")
    lengths = lengths.to(device=points.device, dtype=torch.long)
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > n):
        raise ValueError(
            f"lengths must lie in [1, {n}] (the number of points), got {lengths.tolist()}"
        )
    return lengths
