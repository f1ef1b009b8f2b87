"""Uniform random subsets of point clouds."""

from __future__ import annotations

import torch

from .._checks import check_positive_int
from .._nobatch import with_nobatch
from ._validate import check_cloud


@with_nobatch("points")
def random_sample(
    points: torch.Tensor, n_samples: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep ``n_samples`` points of each cloud, chosen uniformly without replacement.

    Parameters
    ----------
    points : torch.Tensor
        Point clouds, coordinates last.
    n_samples : int
        Points to keep per cloud, at most ``n``.
    generator : torch.Generator, optional
        Source of randomness, on the device of ``points``.

    Returns
    -------
    sampled : torch.Tensor
        The chosen points (differentiable with respect to ``points``).
    indices : torch.Tensor
        Their indices into ``points`` (int64), all different within a cloud.

    Shape
    -----
    - points: ``(b, n, 3)``
    - sampled: ``(b, n_samples, 3)``; indices: ``(b, n_samples)``
    - ``random_sample.nobatch``: points ``(n, 3)``.

    Examples
    --------
    >>> import torch
    >>> from torchsample.points import random_sample
    >>> generator = torch.Generator().manual_seed(0)
    >>> sampled, indices = random_sample(torch.rand(2, 100, 3), 10, generator=generator)
    >>> sampled.shape, indices.shape
    (torch.Size([2, 10, 3]), torch.Size([2, 10]))
    >>> len(set(indices[0].tolist()))
    10
    """
    points = check_cloud("points", points)
    n_samples = check_positive_int("n_samples", n_samples)
    batch, n, _ = points.shape
    if n_samples > n:
        raise ValueError(f"n_samples must be at most the number of points {n}, got {n_samples}")
    keys = torch.rand((batch, n), generator=generator, device=points.device)
    indices = keys.argsort(dim=1)[:, :n_samples]
    sampled = points.gather(1, indices[..., None].expand(-1, -1, points.shape[-1]))
    return sampled, indices
